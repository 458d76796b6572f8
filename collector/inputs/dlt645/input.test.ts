import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SerialPort } from 'serialport';
import { BusRegistry } from '../../bus/index.ts';
import { MeterReadError } from '../../input.ts';
// socat -d -d pty,raw,echo=0 pty,raw,echo=0 with the PTY paths parsed from its stderr.
import { openPtyPair } from '../../../sim/test-support.ts';
import type { PtyPair } from '../../../sim/test-support.ts';
import { Dlt645Line } from '../../../sim/dlt645/line.ts';
import { SimDlt645Meter } from '../../../sim/dlt645/meter.ts';
import type { MeterState } from '../../../sim/dlt645/meter.ts';
import { dlt645TestSite } from '../../../sim/dlt645/test-site.ts';
import { Dlt645Input } from './input.ts';
import { readMeterAddress } from './probe.ts';
import type { SerialBus } from '../../bus/index.ts';
import { createInput } from '../registry.ts';
import './index.ts';

/**
 * Protocol tier (style.md practice 7): the collector input against the simulated meter
 * over a socat PTY pair. The meter end here is a bare responder around sim/dlt645's line
 * handler; the mixed Modbus + DL/T 645 bus through the simulator's serial server is in
 * mixed-bus.test.ts. Parity none: a PTY may refuse even parity on re-open (issue 7).
 */

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 2, 1, 16, 0, 0); // 2026-03-02 00:00 Asia/Shanghai

let pty: PtyPair;
let port: SerialPort;
let now = T0;
let meter: SimDlt645Meter;
let load: MeterState = { totalWh: 5_000_000, w: 2000, v: [230.1, 229.9, 231], a: [3, 2.5, 3.25] };

const lines = new Map<SimDlt645Meter, Dlt645Line>();
const lineOf = (m: SimDlt645Meter) => {
  let l = lines.get(m);
  if (!l) lines.set(m, (l = new Dlt645Line([m])));
  return l;
};

beforeAll(async () => {
  pty = await openPtyPair();
  const site = dlt645TestSite({ port: pty.a });
  // Tariff registers from zero, so the test can state their split exactly. The meter's
  // energy is a function of time, 2000 W from T0 (a meter counts continuously: its
  // registers advance through every period change, whenever it is read), and agrees with
  // `load.totalWh` at each `now` the tests set.
  const energyAt = (ms: number) => 5_000_000 + Math.floor((2000 * Math.max(0, ms - T0)) / HOUR);
  meter = new SimDlt645Meter({ address: '000000001102', site, source: (ms) => ({ ...load, totalWh: energyAt(ms) }), now: () => now, initial: { totalWh: load.totalWh, tariffWh: [0, 0, 0, 0] } });
  const line = lineOf(meter);
  port = new SerialPort({ path: pty.b, baudRate: 2400, autoOpen: false });
  await new Promise<void>((res, rej) => port.open((e) => (e ? rej(e) : res())));
  port.on('data', (chunk: Buffer) => {
    for (const r of line.receive(chunk)) setTimeout(() => port.write(Buffer.from(r.bytes)), r.delayMs);
  });
});

afterAll(async () => {
  await new Promise<void>((r) => (port?.isOpen ? port.close(() => r()) : r()));
  await pty?.close();
});

/** Reads that must succeed get a generous timeout (the box is shared and loaded); fault tests pass a short one. */
function setup(opts: { tariffs?: string; timeoutMs?: number } = {}) {
  const site = dlt645TestSite({ port: pty.a, tariffs: opts.tariffs, timeoutMs: opts.timeoutMs ?? 2000 });
  const buses = new BusRegistry({ backoffBaseMs: 0, backoffMaxMs: 0 });
  const input = createInput(site.meters.find((m) => m.id === 'T102')!, { buses, tcp: undefined as never }, () => now);
  return { input, buses };
}

/**
 * A bus without a wire, for behaviour that would otherwise cost real timeouts: the meter
 * answers at once, and a meter that stays silent is an immediate timeout.
 */
function instantBus(line: Dlt645Line) {
  let rx = Buffer.alloc(0);
  const transport = {
    path: '/dev/instant',
    settings: { baudRate: 2400, parity: 'even', dataBits: 8, stopBits: 1 },
    flush: () => {
      rx = Buffer.alloc(0);
    },
    write: async (frame: Uint8Array) => {
      for (const r of line.receive(frame)) rx = Buffer.concat([rx, Buffer.from(r.bytes)]);
    },
    read: async (check: (b: Buffer) => number) => {
      for (;;) {
        const n = rx.length ? check(rx) : 0;
        if (n === 0) throw new MeterReadError('T102', 'timeout', 'silent');
        if (n < 0) rx = rx.subarray(-n);
        else {
          const f = rx.subarray(0, n);
          rx = rx.subarray(n);
          return f;
        }
      }
    },
  };
  const bus = { transact: (_c: string, _s: unknown, work: (t: typeof transport) => Promise<unknown>) => work(transport) };
  return { get: () => bus } as never;
}

describe('DL/T 645 input, behaviour', () => {
  it('leaves out values a meter keeps silent about, then stops asking for them', async () => {
    const site = dlt645TestSite({ port: '/dev/instant' });
    const quiet = new SimDlt645Meter({ address: '000000001102', site, source: () => ({ totalWh: 1000, w: 500, v: [230], a: [2.5] }), now: () => T0, quirks: { silentUnknown: true } });
    const input = createInput(site.meters.find((m) => m.id === 'T102')!, { buses: instantBus(new Dlt645Line([quiet])), tcp: undefined as never }, () => T0);
    const counts: number[] = [];
    for (let k = 0; k < 3; k++) {
      const before = quiet.requests;
      // Never a failed read: energy is there, the silent phases B and C are left out.
      expect(await input.read()).toEqual({ meter: 'T102', time: T0, wh: 1000, tariffWh: expect.any(Object), w: 500, v: 230, a: 2.5 });
      counts.push(quiet.requests - before);
    }
    // block, power, V A/B/C, I A/B/C; the silent four without retry, given up after 2 in a row.
    expect(counts).toEqual([8, 8, 4]);
  });
});

describe('read address', () => {
  it('finds the address of the one meter on the bus through the wildcard', async () => {
    const site = dlt645TestSite({ port: '/dev/instant' });
    const lone = new SimDlt645Meter({ address: '000012345678', site, source: () => ({ totalWh: 0 }), now: () => T0 });
    const bus = (instantBus(new Dlt645Line([lone])) as unknown as { get: () => SerialBus }).get();
    expect(await readMeterAddress(bus, { baudRate: 2400, parity: 'even', dataBits: 8, stopBits: 1 })).toBe('000012345678');
  });
  it('with two meters nobody answers the wildcard: a timeout, not a wrong address', async () => {
    const site = dlt645TestSite({ port: '/dev/instant' });
    const two = ['000000000001', '000000000002'].map((address) => new SimDlt645Meter({ address, site, source: () => ({ totalWh: 0 }), now: () => T0 }));
    const bus = (instantBus(new Dlt645Line(two)) as unknown as { get: () => SerialBus }).get();
    await expect(readMeterAddress(bus, { baudRate: 2400, parity: 'even', dataBits: 8, stopBits: 1 })).rejects.toMatchObject({ kind: 'timeout' });
  });
});

describe('DL/T 645 input over a PTY', () => {
  it('reads energy, tariff registers, power, voltage and current in one bus transaction', async () => {
    const { input, buses } = setup();
    expect(input).toBeInstanceOf(Dlt645Input);
    // Twelve hours of 2000 W: valley 7 h, flat 2 h, peak 3 h (T1 sharp, T2 peak, T3 flat, T4 valley).
    now = T0 + 12 * HOUR;
    load = { ...load, totalWh: 5_024_000 };
    const s = await input.read();
    expect(s).toEqual({ meter: 'T102', time: now, wh: 5_024_000, tariffWh: { 1: 0, 2: 6000, 3: 4000, 4: 14_000 }, w: 2000, v: 230.3, a: 8.75, phases: [{ v: 230.1, a: 3 }, { v: 229.9, a: 2.5 }, { v: 231, a: 3.25 }] });
    expect(buses.get(pty.a).stats()).toMatchObject({ transactions: 1, failures: 0 });
    await buses.closeAll();
  });

  it('asks a single-phase meter for phases B and C once, then stops asking', async () => {
    load = { ...load, v: [229.5], a: [4] };
    const { input, buses } = setup();
    const before = meter.requests;
    expect(await input.read()).toMatchObject({ v: 229.5, a: 4 });
    const first = meter.requests - before;
    expect(await input.read()).toMatchObject({ v: 229.5, a: 4 });
    const second = meter.requests - before - first;
    // block + power + 3 voltages + 3 currents, then the 4 missing phases are skipped.
    expect([first, second]).toEqual([8, 4]);
    await buses.closeAll();
  });

  it('keeps only the tariff registers the site file maps', async () => {
    const { input, buses } = setup({ tariffs: '{ peak: 1, valley: 2 }' });
    const s = await input.read();
    expect(Object.keys(s.tariffWh ?? {})).toEqual(['1', '2']);
    await buses.closeAll();
  });

  it('reads register by register from a meter that refuses the FF block, and remembers that', async () => {
    const site = dlt645TestSite({ port: pty.a });
    const old = new SimDlt645Meter({ address: '000000001102', site, source: () => load, now: () => now, quirks: { noBlock: true } });
    const line = new Dlt645Line([old]);
    port.removeAllListeners('data');
    port.on('data', (chunk: Buffer) => {
      for (const r of line.receive(chunk)) setTimeout(() => port.write(Buffer.from(r.bytes)), r.delayMs);
    });
    try {
      const { input, buses } = setup();
      now += HOUR;
      load = { ...load, totalWh: load.totalWh + 2000 };
      const s1 = await input.read();
      expect(s1.wh).toBe(load.totalWh);
      expect(Object.keys(s1.tariffWh ?? {})).toEqual(['1', '2', '3', '4']);
      const first = old.requests;
      const s2 = await input.read();
      expect(s2).toEqual(s1);
      // total + 4 tariffs + power + 1 voltage + 1 current; no second try of the block.
      expect(old.requests - first).toBe(8);
      await buses.closeAll();
    } finally {
      port.removeAllListeners('data');
      port.on('data', (chunk: Buffer) => {
        for (const r of lineOf(meter).receive(chunk)) setTimeout(() => port.write(Buffer.from(r.bytes)), r.delayMs);
      });
    }
  });

  it('skips its own request echoed back by an RS485 adapter that hears itself', async () => {
    port.removeAllListeners('data');
    port.on('data', (chunk: Buffer) => {
      port.write(chunk); // the echo arrives before the meter's reply
      for (const r of lineOf(meter).receive(chunk)) setTimeout(() => port.write(Buffer.from(r.bytes)), r.delayMs + 5);
    });
    try {
      const { input, buses } = setup();
      expect(await input.read()).toMatchObject({ meter: 'T102', wh: load.totalWh });
      await buses.closeAll();
    } finally {
      port.removeAllListeners('data');
      port.on('data', (chunk: Buffer) => {
        for (const r of lineOf(meter).receive(chunk)) setTimeout(() => port.write(Buffer.from(r.bytes)), r.delayMs);
      });
    }
  });

  it('a silent meter is a retryable timeout; a corrupt one a retryable crc error', async () => {
    const { input, buses } = setup({ timeoutMs: 150 });
    meter.faults.silent = true;
    const e1 = await input.read().catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(MeterReadError);
    expect(e1).toMatchObject({ kind: 'timeout', retryable: true });
    meter.faults.silent = false;
    meter.faults.corrupt = true;
    const e2 = await input.read().catch((e: unknown) => e);
    expect(e2).toMatchObject({ kind: 'crc', retryable: true });
    meter.faults.corrupt = false;
    meter.faults.delayMs = 800; // far beyond the 150 ms timeout and its retry (300 ms in all)
    expect(await input.read().catch((e: unknown) => e)).toMatchObject({ kind: 'timeout' });
    meter.faults.delayMs = 0;
    await buses.closeAll();
    // Late replies from the slow meter are flushed or skipped: the next read is clean.
    const fresh = setup();
    expect(await fresh.input.read()).toMatchObject({ meter: 'T102', wh: load.totalWh });
    await fresh.buses.closeAll();
  });

  it('rejects a non-DL/T 645 connection as unrecoverable config', () => {
    const site = dlt645TestSite({ port: pty.a, modbusPort: pty.a });
    const m = site.meters.find((x) => x.id === 'T101')!;
    expect(() => new Dlt645Input({ meter: m, now: Date.now, buses: new BusRegistry(), tcp: undefined as never })).toThrow(MeterReadError);
  });
});
