import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BusRegistry } from '../../bus/index.ts';
import { openPtyPair } from '../../../sim/test-support.ts';
import type { PtyPair } from '../../../sim/test-support.ts';
import { createInput } from '../index.ts';
import { startSimulator } from '../../../sim/simulator.ts';
import type { Simulator } from '../../../sim/simulator.ts';
import { dlt645Handler } from '../../../sim/dlt645/handler.ts';
import type { Dlt645SerialHandler } from '../../../sim/dlt645/handler.ts';
import { dlt645TestSite } from '../../../sim/dlt645/test-site.ts';

/**
 * Issue 7's mixed bus: a Modbus RTU meter (9600 8N1) and a DL/T 645 meter (2400) on one
 * RS485 line, served by the simulator's serial server with the DL/T 645 handler plugged
 * in, read by the collector's inputs through the one bus scheduler. Parity none: PTYs.
 */

const T0 = Date.UTC(2026, 2, 2, 4, 0, 0); // 2026-03-02 12:00 Asia/Shanghai
let simNow = T0;
let pty: PtyPair;
let sim: Simulator;
let handler: Dlt645SerialHandler;

beforeAll(async () => {
  pty = await openPtyPair();
  // Reads that must succeed get a generous timeout (shared, loaded box); the fault test uses 300 ms.
  const site = dlt645TestSite({ port: pty.a, modbusPort: pty.a, timeoutMs: 2000 });
  handler = dlt645Handler({ site });
  // Epoch an hour before T0: the load model integrates minute by minute from its epoch.
  sim = await startSimulator({ site, now: () => simNow, epoch: T0 - 3_600_000, serial: pty.b, tcp: false, serialProtocols: [handler] });
});

afterAll(async () => {
  await sim?.stop();
  await pty?.close();
});

describe('mixed Modbus RTU + DL/T 645 bus', () => {
  it('reads both meters through one scheduler, interleaved, with values from the load model', async () => {
    const site = sim.site;
    const buses = new BusRegistry({ backoffBaseMs: 0, backoffMaxMs: 0 });
    const dlt = createInput(site.meters.find((m) => m.id === 'T102')!, { buses, tcp: undefined as never }, () => simNow);
    const rtu = createInput(site.meters.find((m) => m.id === 'T101')!, { buses, tcp: undefined as never }, () => simNow);
    try {
      let before: Partial<Record<1 | 2 | 3 | 4, number>> | undefined;
      for (let round = 0; round < 3; round++) {
        simNow = T0 + round * 15 * 60_000;
        // Both at once: the bus must serialise them.
        const [a, b] = await Promise.all([dlt.read(), rtu.read()]);
        const trueDlt = sim.read('T102');
        expect(a.meter).toBe('T102');
        // DL/T 645 shows 0.01 kWh steps: the register truncated to 10 Wh.
        expect(a.wh).toBe(Math.floor(trueDlt.wh / 10) * 10);
        expect(a.w).toBeCloseTo(trueDlt.w, 0);
        expect(a.v).toBeCloseTo(trueDlt.v.reduce((s, x) => s + x, 0) / trueDlt.v.length, 0);
        expect(b.meter).toBe('T101');
        expect(Math.abs(b.wh - sim.read('T101').wh)).toBeLessThan(100);
        // The meter's own registers add up to its total (seeded by the day's layout at start).
        const regs = a.tariffWh ?? {};
        expect(Math.abs((regs[1] ?? 0) + (regs[2] ?? 0) + (regs[3] ?? 0) + (regs[4] ?? 0) - a.wh)).toBeLessThanOrEqual(40);
        if (before) {
          // 12:00-12:45 local is flat (T3 by default): only T3 moves.
          expect(regs[3]! - before[3]!).toBeGreaterThan(0);
          expect([regs[1]! - before[1]!, regs[2]! - before[2]!, regs[4]! - before[4]!]).toEqual([0, 0, 0]);
        }
        before = regs;
      }
      const stats = buses.get(pty.a).stats();
      expect(stats).toMatchObject({ transactions: 6, failures: 0 });
      expect(sim.meter('T102').requests).toBeGreaterThanOrEqual(3 * 8);
    } finally {
      await buses.closeAll();
    }
  });

  it('simulator faults reach the DL/T 645 meter: no answer, bad checksum, error reply, slow', async () => {
    // The same meter (same address, same bus) with a 300 ms reply timeout.
    const short = dlt645TestSite({ port: pty.a, modbusPort: pty.a, timeoutMs: 300 });
    const buses = new BusRegistry({ backoffBaseMs: 0, backoffMaxMs: 0 });
    const dlt = createInput(short.meters.find((m) => m.id === 'T102')!, { buses, tcp: undefined as never }, () => simNow);
    try {
      sim.injectFault('T102', { kind: 'no-answer', count: 2 });
      await expect(dlt.read()).rejects.toMatchObject({ kind: 'timeout', retryable: true });
      sim.injectFault('T102', { kind: 'crc', count: 2 });
      await expect(dlt.read()).rejects.toMatchObject({ kind: 'crc', retryable: true });
      sim.injectFault('T102', { kind: 'exception', count: 1 });
      await expect(dlt.read()).rejects.toMatchObject({ kind: 'exception' });
      // Far beyond the 300 ms timeout and its one retry (600 ms in all), so the late first
      // reply cannot land inside the retry's window.
      handler.meter('T102')!.faults.delayMs = 1200;
      await expect(dlt.read()).rejects.toMatchObject({ kind: 'timeout' });
      handler.meter('T102')!.faults.delayMs = 0;
      // The simulator answers one request at a time: let the two slow replies go out.
      await new Promise((r) => setTimeout(r, 2000));
      // Recovered: late replies of the slow meter are flushed or skipped.
      const patient = createInput(sim.site.meters.find((m) => m.id === 'T102')!, { buses, tcp: undefined as never }, () => simNow);
      expect((await patient.read()).meter).toBe('T102');
    } finally {
      await buses.closeAll();
    }
  });
});
