import { describe, expect, it } from 'vitest';
import type { MeterHealth } from '../influx/lines.ts';
import type { MeterInput } from './input.ts';
import { MeterReadError } from './input.ts';
import { MeterPoller } from './poller.ts';
import type { Sample } from './sample.ts';
import { testMeter } from './test-support/meters.ts';

function input(id: string, behave: () => Sample | MeterReadError): MeterInput & { reads: number } {
  const i = {
    meter: testMeter(id),
    reads: 0,
    async read() {
      i.reads++;
      const r = behave();
      if (r instanceof MeterReadError) throw r;
      return r;
    },
    async close() {},
  };
  return i;
}

const sink = (samples: Sample[], health: MeterHealth[]) => ({ sample: async (s: Sample) => void samples.push(s), health: async (h: MeterHealth) => void health.push(h) });

describe('MeterPoller', () => {
  it('keeps bad samples out and flags them as value errors', async () => {
    const samples: Sample[] = [];
    const health: MeterHealth[] = [];
    const p = new MeterPoller({ input: input('m', () => ({ meter: 'm', time: 5, wh: Number.NaN })), intervalMs: 1000, sink: sink(samples, health), now: () => 9 });
    const r = await p.pollOnce();
    expect(r).toBeInstanceOf(MeterReadError);
    expect((r as MeterReadError).kind).toBe('value');
    expect(samples).toEqual([]);
    expect(health[0]).toMatchObject({ meter: 'm', ok: false, errors: 1, time: 9 });
    expect(health[0].lastError).toMatch(/^value: .*wh NaN/);
  });

  it('backs a failing meter off while a good one keeps its interval', async () => {
    const samples: Sample[] = [];
    const health: MeterHealth[] = [];
    let t = 1;
    const bad = input('bad', () => new MeterReadError('bad', 'timeout', 'no reply'));
    const good = input('good', () => ({ meter: 'good', time: t++, wh: 1 }));
    const pb = new MeterPoller({ input: bad, intervalMs: 20, sink: sink(samples, health), now: () => 0, backoffMaxMs: 10_000 });
    const pg = new MeterPoller({ input: good, intervalMs: 20, sink: sink(samples, health), now: () => 0 });
    const t0 = Date.now();
    pb.start();
    pg.start();
    // Until the good meter has read 30 times (>= 580 ms at its 20 ms interval), however
    // late a loaded machine fires the timers: a fixed 600 ms wait let a late stop give the
    // bad meter one more try than the bound below assumed.
    for (let i = 0; i < 1000 && good.reads < 30; i++) await new Promise((r) => setTimeout(r, 10));
    await Promise.all([pb.stop(), pg.stop()]);
    const elapsed = Date.now() - t0;
    expect(good.reads).toBeGreaterThanOrEqual(30);
    // Bad: tries at 0, 20, then +40, +80, +160, ... ms (try n at 20 x (2^n - 1) ms at the
    // earliest; late timers only push them later): at most 1 + log2(elapsed / 20 + 1).
    expect(bad.reads).toBeLessThanOrEqual(1 + Math.floor(Math.log2(elapsed / 20 + 1)));
    expect(bad.reads).toBeGreaterThanOrEqual(3);
    expect(pb.health()).toMatchObject({ ok: false, consecutiveErrors: bad.reads });
  });

  it('stops polling a meter whose configuration can never work', async () => {
    const cfg = input('c', () => new MeterReadError('c', 'config', 'unknown map', false));
    const p = new MeterPoller({ input: cfg, intervalMs: 5, sink: sink([], []), now: () => 0 });
    p.start();
    await new Promise((r) => setTimeout(r, 100));
    await p.stop();
    expect(cfg.reads).toBe(1);
  });
});
