import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleLine } from '../../influx/lines.ts';
import { F } from '../../influx/schema.ts';
import { startSimulator } from '../../sim/simulator.ts';
import type { Simulator } from '../../sim/simulator.ts';
import { testSite } from '../../sim/test-support.ts';
import { BusRegistry } from '../bus/index.ts';
import type { Sample } from '../sample.ts';
import { startPymodbusTcp } from '../test-support/pymodbus.ts';
import type { PymodbusServer } from '../test-support/pymodbus.ts';
import { testMeter } from '../test-support/meters.ts';
import { createInput } from './index.ts';
import { ModbusTcpPool } from './modbus-tcp/index.ts';
import { LIVE_PHASE_MIN_V, summarisePhases } from './phases.ts';

/**
 * Issue 16: a three-phase meter on a single-phase load (L2 and L3 at 0 V) was reported at
 * the mean of its phases (230.1, 0, 0 -> 76.7 V). Now each phase is stored and the summary
 * is taken over live phases only, for every three-phase map.
 */
const THREE_PHASE = ['sdm630', 'dtsu666', 'adw300'] as const;
const T0 = Date.UTC(2026, 6, 1, 6);

describe('summarisePhases', () => {
  it('averages the voltage and sums the current of the live phases only', () => {
    expect(summarisePhases([{ v: 230.1, a: 5 }, { v: 0, a: 0 }, { v: 0, a: 0 }])).toEqual({ v: 230.1, a: 5 });
    expect(summarisePhases([{ v: 230, a: 1 }, { v: 232, a: 2 }, { v: 3.2, a: 0.1 }])).toEqual({ v: 231, a: 3 });
    // A deep sag is still a live phase; induced volts on an open input are not.
    expect(summarisePhases([{ v: LIVE_PHASE_MIN_V, a: 1 }, { v: LIVE_PHASE_MIN_V - 1, a: 0 }])).toEqual({ v: LIVE_PHASE_MIN_V, a: 1 });
    // Nothing live (a meter powered from elsewhere, all phases off): what the phases show.
    expect(summarisePhases([{ v: 0, a: 0 }, { v: 0, a: 0 }, { v: 0, a: 0 }])).toEqual({ v: 0, a: 0 });
  });
});

describe('three-phase maps against the simulator with one phase live (phase-loss fault)', () => {
  const unit = { sdm630: 21, dtsu666: 22, adw300: 23 } as const;
  const site = testSite(THREE_PHASE.map((m) => `  - { id: P-${m}, role: tenant, account: A1, connection: { protocol: modbus-tcp, host: 127.0.0.1, port: 5020, unit: ${unit[m]}, map: ${m}, timeout_ms: 500 } }`).join('\n'));
  let sim: Simulator;
  const tcp = new ModbusTcpPool();
  const buses = new BusRegistry();
  beforeAll(async () => {
    sim = await startSimulator({ site, tcp: { port: 0 }, now: () => T0, epoch: Date.UTC(2026, 5, 30) });
  });
  afterAll(async () => {
    await tcp.close();
    await buses.closeAll();
    await sim?.stop();
  });

  for (const map of THREE_PHASE) {
    it(`${map}: per-phase fields, and v / a from L1 alone`, async () => {
      const id = `P-${map}`;
      const m = site.meters.find((x) => x.id === id)!;
      const input = createInput({ ...m, connection: { ...(m.connection as object), port: sim.tcpPort! } as never }, { tcp, buses }, () => T0);
      const all = await input.read();
      expect(all.phases).toHaveLength(3);
      for (const p of all.phases!) expect(p.v).toBeGreaterThan(200);

      sim.injectFault(id, { kind: 'phase-loss' }); // L2 and L3 lost
      const s = await input.read();
      const truth = sim.read(id);
      expect(truth.v.slice(1)).toEqual([0, 0]);
      const [l1, l2, l3] = s.phases!;
      expect(l1.v).toBeCloseTo(truth.v[0], 1);
      expect(l2).toMatchObject({ v: 0, a: 0, w: 0 });
      expect(l3).toMatchObject({ v: 0, a: 0, w: 0 });
      // The summary is L1's voltage, not a third of it; the current is L1's.
      expect(s.v).toBeCloseTo(truth.v[0], 1);
      expect(s.a).toBeCloseTo(truth.a[0], map === 'adw300' ? 1 : 2);
      // All the power is on L1 (ADW300 counts whole W).
      expect(l1.w).toBeCloseTo(truth.w, map === 'adw300' ? -1 : 0);
      const line = sampleLine('s', s);
      for (const f of [F.vPhase(1), F.vPhase(2), F.vPhase(3), F.aPhase(1), F.wPhase(1)]) expect(line).toContain(`${f}=`);
      // The load relay opened as well (issue 13): L1 keeps its voltage, no phase carries current or power.
      expect(sim.meter(id).relay.command('trip', T0).ok).toBe(true);
      const cut = await input.read();
      expect(cut.phases![0].v).toBeCloseTo(truth.v[0], 1);
      expect(cut.phases!.map((p) => [p.a, p.w])).toEqual([
        [0, 0],
        [0, 0],
        [0, 0],
      ]);
      expect([cut.v, cut.a, cut.w]).toEqual([expect.closeTo(truth.v[0], 1), 0, 0]);
      expect(sim.meter(id).relay.command('close-now', T0).ok).toBe(true);
      expect((await input.read()).a).toBeCloseTo(truth.a[0], map === 'adw300' ? 1 : 2);
      sim.clearFaults(id);
    });
  }
});

describe('three-phase maps against python3-pymodbus with one phase live', () => {
  let server: PymodbusServer;
  const tcp = new ModbusTcpPool();
  const buses = new BusRegistry();
  /** int32 / uint16 words, high word first, as the ADW300 holds them. */
  const i32 = (x: number) => [(x >>> 16) & 0xffff, x & 0xffff];
  beforeAll(async () => {
    server = await startPymodbusTcp({
      // SDM630: L1 230.1 V 5.2 A 1150.5 W; L2, L3 dead.
      31: { fc: 4, floats: { 0: 230.1, 2: 0, 4: 0, 6: 5.2, 8: 0, 10: 0, 0x0c: 1150.5, 0x0e: 0, 0x10: 0, 0x34: 1150.5, 0x3e: 0.96, 0x46: 50, 0x48: 100.5 } },
      // DTSU666 (V x0.1, A x0.001, W x0.1): the same, scaled.
      32: { fc: 3, floats: { 0x2006: 2301, 0x2008: 0, 0x200a: 0, 0x200c: 5200, 0x200e: 0, 0x2010: 0, 0x2012: 11505, 0x2014: 11505, 0x2016: 0, 0x2018: 0, 0x202a: 960, 0x2044: 5000, 0x401e: 100.5 } },
      // ADW300 integers: V x0.1 at 20..22, A x0.01 at 26..28, W int32 at 30/32/34 and 36, kWh x0.01 at 62.
      33: { fc: 3, ints: { 20: [2301, 0, 0], 26: [520, 0, 0], 30: [...i32(1150), ...i32(0), ...i32(0), ...i32(1150)], 62: i32(10050) } },
    });
  });
  afterAll(async () => {
    await tcp.close();
    await buses.closeAll();
    await server?.stop();
  });

  for (const [map, u] of [['sdm630', 31], ['dtsu666', 32], ['adw300', 33]] as const) {
    it(`${map}: 230.1 V on L1 is reported as 230.1 V, not 76.7 V`, async () => {
      const input = createInput(testMeter(`Q-${map}`, { protocol: 'modbus-tcp', host: '127.0.0.1', port: server.port!, unit: u, map, timeout_ms: 500 }), { tcp, buses }, () => T0);
      const s: Sample = await input.read();
      expect(s.v).toBeCloseTo(230.1, 3);
      expect(s.a).toBeCloseTo(5.2, 3);
      expect(s.wh).toBe(100_500);
      expect(s.phases).toEqual([
        { v: expect.closeTo(230.1, 3), a: expect.closeTo(5.2, 3), w: expect.closeTo(map === 'adw300' ? 1150 : 1150.5, 3) },
        { v: 0, a: 0, w: 0 },
        { v: 0, a: 0, w: 0 },
      ]);
    });
  }
});
