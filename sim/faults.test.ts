import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeReading, MODBUS_REGISTER_MAPS } from '../collector/inputs/modbus/maps.ts';
import type { RegisterBlock } from '../collector/inputs/modbus/maps.ts';
import { parseFault } from './faults.ts';
import { startSimulator } from './simulator.ts';
import type { Simulator } from './simulator.ts';
import { mbpoll, openPtyPair, testSite } from './test-support.ts';
import type { PtyPair } from './test-support.ts';

// SDM120s: one on TCP (unit 1), one on the RTU bus (unit 11). A 5000 kWh modulus keeps the
// float32 register exact to the Wh near the top, so the rollover is seen to the Wh.
const site = testSite(`  - { id: TCP1, role: tenant, account: A1, register_modulus_kwh: 5000, connection: { protocol: modbus-tcp, host: 127.0.0.1, port: 5020, unit: 1, map: sdm120 } }
  - { id: TCP2, role: tenant, account: A1, connection: { protocol: modbus-tcp, host: 127.0.0.1, port: 5020, unit: 2, map: sdm120 } }
  - { id: RTU1, role: tenant, account: A1, connection: { protocol: modbus-rtu, port: /dev/ttyUSB0, baud: 9600, unit: 11, map: sdm120 } }`);
let t = Date.UTC(2026, 6, 1, 6); // 14:00 local: load on

let pty: PtyPair;
let sim: Simulator;
let port: string;
beforeAll(async () => {
  pty = await openPtyPair();
  sim = await startSimulator({ site, tcp: { port: 0 }, serial: pty.b, now: () => t, epoch: Date.UTC(2026, 5, 30), faults: { TCP2: parseFault('exception:6x1') } });
  port = String(sim.tcpPort);
});
afterAll(async () => {
  await sim?.stop();
  await pty?.close();
});

// Generous timeouts for reads that must succeed (a loaded CI machine); short ones only where silence is the point.
const tcp = (unit: number, extra: string[], timeout = '2') => mbpoll(['-m', 'tcp', '-p', port, '-a', String(unit), '-0', '-o', timeout, ...extra, '127.0.0.1']);
const rtu = (unit: number, extra: string[], timeout = '2') => mbpoll(['-m', 'rtu', '-b', '9600', '-P', 'none', '-a', String(unit), '-0', '-o', timeout, ...extra, pty.a]);

/** Energy register over TCP, read and decoded as a client would. */
async function energyWh(unit = 1): Promise<number> {
  const blocks: RegisterBlock[] = [];
  for (const b of MODBUS_REGISTER_MAPS.sdm120.plan) {
    const r = await tcp(unit, ['-r', String(b.start), '-c', String(b.count), '-t', '3:hex']);
    expect(r.stderr).toBe('');
    blocks.push({ start: b.start, registers: Array.from({ length: b.count }, (_, i) => parseInt(r.values.get(b.start + i) ?? 'NaN', 16)) });
  }
  return decodeReading('sdm120', blocks).wh;
}

describe('fault injection, observed on the wire', () => {
  it('exception: a start-up fault answers 06 (busy) once, then the meter answers', async () => {
    expect((await tcp(2, ['-r', '0', '-c', '2', '-t', '3'])).stderr).toMatch(/busy/i);
    expect((await tcp(2, ['-r', '0', '-c', '2', '-t', '3'])).stderr).toBe('');
    sim.injectFault('TCP2', { kind: 'exception' });
    expect((await tcp(2, ['-r', '0', '-c', '2', '-t', '3'])).stderr).toMatch(/Slave device or server failure/);
    sim.clearFaults('TCP2');
    expect((await tcp(2, ['-r', '0', '-c', '2', '-t', '3'])).stderr).toBe('');
  });

  it('no-answer: silence over TCP and RTU for `count` requests, then answers', async () => {
    sim.injectFault('TCP1', { kind: 'no-answer', count: 1 });
    expect((await tcp(1, ['-r', '0', '-c', '2', '-t', '3'], '0.3')).stderr).toMatch(/timed out/i);
    expect((await tcp(1, ['-r', '0', '-c', '2', '-t', '3'])).stderr).toBe('');
    sim.injectFault('RTU1', { kind: 'no-answer', count: 1 });
    expect((await rtu(11, ['-r', '0', '-c', '2', '-t', '3'], '0.3')).stderr).toMatch(/timed out/i);
    expect((await rtu(11, ['-r', '0', '-c', '2', '-t', '3'])).stderr).toBe('');
  });

  it('crc: the RTU reply arrives with a bad CRC', async () => {
    sim.injectFault('RTU1', { kind: 'crc', count: 1 });
    expect((await rtu(11, ['-r', '0', '-c', '2', '-t', '3'])).stderr).toMatch(/Invalid CRC/i);
    expect((await rtu(11, ['-r', '0', '-c', '2', '-t', '3'])).stderr).toBe('');
    expect(sim.meter('RTU1').requests).toBeGreaterThanOrEqual(4);
  });

  it('spike: the next energy read jumps by the spike, then the true value returns', async () => {
    const before = await energyWh();
    sim.injectFault('TCP1', { kind: 'spike', wh: 500_000 });
    // A read that does not cover the energy register leaves the spike pending.
    expect((await tcp(1, ['-r', '0', '-c', '2', '-t', '3'])).stderr).toBe('');
    expect(await energyWh()).toBe(before + 500_000);
    expect(await energyWh()).toBe(before);
  });

  it('rollover: the register jumps near the modulus, then wraps through zero as energy accrues', async () => {
    sim.injectFault('TCP1', { kind: 'rollover', marginWh: 100 });
    expect(await energyWh()).toBe(5_000_000 - 100);
    const w = sim.read('TCP1').w;
    expect(w).toBeGreaterThan(600); // enough to cross 100 Wh in 10 model minutes
    t += 10 * 60_000;
    const after = await energyWh();
    expect(after).toBeLessThan(5_000);
    expect(after).toBe(sim.read('TCP1').wh);
  });

  it('reset: the register restarts from zero and counts on', async () => {
    sim.injectFault('TCP1', { kind: 'reset' });
    expect(await energyWh()).toBe(0);
    t += 5 * 60_000;
    const after = await energyWh();
    expect(after).toBeGreaterThan(0);
    expect(after).toBeLessThan(sim.read('TCP1').w); // about w/12 Wh in 5 minutes
  });

  it('rejects bad faults with clear errors', () => {
    expect(() => parseFault('explode')).toThrow(/bad fault 'explode'/);
    expect(parseFault('spike:500x3')).toEqual({ kind: 'spike', wh: 500, count: 3 });
    expect(() => sim.injectFault('TCP1', { kind: 'no-answer', count: 0 })).toThrow(/count must be a positive integer/);
    expect(() => sim.injectFault('NOPE', { kind: 'reset' })).toThrow(/no meter 'NOPE'/);
  });
});
