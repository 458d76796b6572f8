import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeReading, energyStepWh, MODBUS_REGISTER_MAPS } from '../collector/inputs/modbus/maps.ts';
import type { RegisterBlock } from '../collector/inputs/modbus/maps.ts';
import type { ModbusMapName } from '../core/index.ts';
import { startSimulator } from './simulator.ts';
import type { Simulator } from './simulator.ts';
import { mbpoll, testSite } from './test-support.ts';

// One meter per register map, all on one Modbus TCP port, told apart by unit id.
const UNITS: Record<ModbusMapName, number> = { sdm630: 1, sdm120: 2, dtsu666: 3, ddsu666: 4, adw300: 5, dds238: 6 };
const site = testSite(
  Object.entries(UNITS)
    .map(([map, unit]) => `  - { id: T-${map}, role: tenant, account: A1, connection: { protocol: modbus-tcp, host: 127.0.0.1, port: 5020, unit: ${unit}, map: ${map} } }`)
    .join('\n'),
);
// Wed 2026-07-01 14:00 local: shops open, HVAC on.
let t = Date.UTC(2026, 6, 1, 6);

let sim: Simulator;
let port: string;
beforeAll(async () => {
  sim = await startSimulator({ site, tcp: { port: 0 }, now: () => t, epoch: Date.UTC(2026, 5, 30) });
  port = String(sim.tcpPort);
});
afterAll(async () => {
  await sim?.stop();
});

/** Reads a map's planned blocks with mbpoll (hex registers), as an independent client would. */
async function readWithMbpoll(map: ModbusMapName): Promise<RegisterBlock[]> {
  const blocks: RegisterBlock[] = [];
  for (const b of MODBUS_REGISTER_MAPS[map].plan) {
    // -t 3 input registers (function 04), -t 4 holding registers (function 03); -0: PDU addresses.
    const type = b.functionCode === 4 ? '3:hex' : '4:hex';
    const r = await mbpoll(['-m', 'tcp', '-p', port, '-a', String(UNITS[map]), '-r', String(b.start), '-0', '-c', String(b.count), '-t', type, '-o', '2', '127.0.0.1']);
    expect(r.stderr, `mbpoll ${map} block ${b.start}`).toBe('');
    blocks.push({ start: b.start, registers: Array.from({ length: b.count }, (_, i) => parseInt(r.values.get(b.start + i) ?? 'NaN', 16)) });
  }
  return blocks;
}

describe('simulator over Modbus TCP, read by mbpoll', () => {
  for (const map of Object.keys(UNITS) as ModbusMapName[]) {
    it(`serves ${map} (unit ${UNITS[map]}) with its function code, word order and scaling`, async () => {
      const truth = sim.read(`T-${map}`);
      const r = decodeReading(map, await readWithMbpoll(map));
      expect(r.wh).toBe(Math.floor(truth.wh / energyStepWh(map)) * energyStepWh(map));
      expect(r.w).toBeCloseTo(truth.w, 0);
      expect(truth.w).toBeGreaterThan(0);
      const vMean = truth.v.reduce((s, x) => s + x, 0) / truth.v.length;
      expect(Math.abs(r.v - vMean)).toBeLessThan(0.06);
      const aSum = truth.a.reduce((s, x) => s + x, 0);
      expect(Math.abs(r.a - aSum)).toBeLessThan(0.02);
    });
  }

  it('gives mbpoll the float energy in kWh, high word first, on the SDM630 input register 0x0048', async () => {
    const r = await mbpoll(['-m', 'tcp', '-p', port, '-a', '1', '-r', '72', '-0', '-c', '1', '-t', '3:float', '-B', '127.0.0.1']);
    expect(r.stderr).toBe('');
    const kwh = Number(r.values.get(72));
    expect(Math.abs(kwh - sim.read('T-sdm630').wh / 1000)).toBeLessThan(0.1); // mbpoll prints 6 significant digits
  });

  it('answers like the real meters when asked wrongly: exceptions 01, 02, 03 and 0B', async () => {
    const base = ['-m', 'tcp', '-p', port, '-0', '-o', '2', '127.0.0.1'];
    // SDM630 has no holding registers at 0x0000 (function 03 -> illegal function).
    expect((await mbpoll(['-a', '1', '-r', '0', '-c', '2', '-t', '4', ...base])).stderr).toMatch(/Illegal function/);
    // A register the meter does not have -> illegal data address.
    expect((await mbpoll(['-a', '1', '-r', '768', '-c', '2', '-t', '3', ...base])).stderr).toMatch(/Illegal data address/);
    // More than the meter's 40-register limit -> illegal data value.
    expect((await mbpoll(['-a', '1', '-r', '0', '-c', '60', '-t', '3', ...base])).stderr).toMatch(/Illegal data value/);
    // A unit id no meter has -> the gateway's "target device failed to respond".
    expect((await mbpoll(['-a', '99', '-r', '0', '-c', '2', '-t', '3', ...base])).stderr).toMatch(/Target device failed to respond/);
  });

  it('serves DTSU666 import energy at 0x401E and the firmware alias 0x101E', async () => {
    const a = await mbpoll(['-m', 'tcp', '-p', port, '-a', '3', '-r', '16414', '-0', '-c', '2', '-t', '4:hex', '127.0.0.1']);
    const b = await mbpoll(['-m', 'tcp', '-p', port, '-a', '3', '-r', '4126', '-0', '-c', '2', '-t', '4:hex', '127.0.0.1']);
    expect([a.values.get(16414), a.values.get(16415)]).toEqual([b.values.get(4126), b.values.get(4127)]);
  });

  it('advances energy with simulated time, consistent with the model', async () => {
    const before = decodeReading('sdm120', await readWithMbpoll('sdm120')).wh;
    const w = sim.read('T-sdm120').w;
    t += 60_000; // one model slot at constant power
    const after = decodeReading('sdm120', await readWithMbpoll('sdm120')).wh;
    expect(after - before).toBeGreaterThanOrEqual(Math.floor(w / 60) - 1);
    expect(after - before).toBeLessThanOrEqual(Math.ceil(w / 60) + 1);
  });
});
