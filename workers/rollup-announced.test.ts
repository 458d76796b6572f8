import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readingMeters } from '../collector/collector.ts';
import { announceNewData, newDataMessage, parseNewDataMessage } from '../lib/new-data-channel.ts';
import { sampleLine } from '../influx/lines.ts';
import type { WorkerContext } from './context.ts';
import { redisKeys } from './keys.ts';
import { closeQueues } from './queues.ts';
import { processRollup } from './rollup.ts';
import { allMember, announcedMarks, markRollup, takeRollup } from './rollup-dirty.ts';
import { startWorkers } from './start.ts';
import { testContext, testEnv, testSite } from './testing/env.ts';
import type { TestEnv } from './testing/env.ts';
import { readingLines } from './testing/month.ts';

/**
 * Issue 15 item 1 at 100,000 meters: an announcement names the meters that got readings,
 * and a rollup run queries only those (one InfluxDB statement per meter of every batch was
 * ~100,000 statements a round for ~1,667 new readings). The safety tick still rolls up
 * every meter, so a lost announcement or a run killed after taking its meters costs only
 * freshness. Real Redis and InfluxDB; the processors are called with a set clock, and one
 * case runs the real BullMQ workers with their tick.
 */

const site = testSite();
const ids = site.meters.map((m) => m.id);
const T0 = Date.UTC(2026, 9, 10, 2, 0);

describe('the new-data message names meters (backward compatible)', () => {
  it('a message without meter ids is the whole site, as before; with them, those meters', () => {
    expect(newDataMessage('plaza', 'readings')).toBe('plaza|readings');
    expect(parseNewDataMessage('plaza|readings')).toEqual({ site: 'plaza', kind: 'readings' });
    expect(parseNewDataMessage('plaza|payment')).toEqual({ site: 'plaza', kind: 'payment' });
    const text = newDataMessage('plaza', 'readings', ['T-1.a:b_2', 'M0']);
    expect(text).toBe('plaza|readings|T-1.a:b_2,M0');
    expect(parseNewDataMessage(text)).toEqual({ site: 'plaza', kind: 'readings', meters: ['T-1.a:b_2', 'M0'] });
    expect(parseNewDataMessage('plaza|readings|')).toEqual({ site: 'plaza', kind: 'readings' });
    expect(parseNewDataMessage('plaza|bogus')).toBeUndefined();
    expect(parseNewDataMessage('plaza|readings|A|B')).toBeUndefined();
  });

  it("the collector names the meters of a forwarded batch's reading lines; one it cannot tell means the whole site", () => {
    const body = [sampleLine('s', { meter: 'T1', time: 1, wh: 5 }), 'meter_health,meter=T9,site=s ok=true 1', sampleLine('s', { meter: 'M0', time: 2, wh: 6 }), sampleLine('s', { meter: 'T1', time: 3, wh: 7 })].join('\n');
    expect(readingMeters(body)).toEqual(new Set(['T1', 'M0']));
    expect(readingMeters('meter_health,meter=T9,site=s ok=true 1')).toEqual(new Set());
    expect(readingMeters(sampleLine('s', { meter: 'a,b', time: 1, wh: 5 }))).toBeUndefined();
  });

  it('an announcement marks only the batches of its meters; unknown ids are dropped; no ids: every batch', () => {
    const m = announcedMarks(site, 2, ['T101', 'NOPE', 'M0']);
    // Sorted ids C-ELEV M0 T101 T102 T103, dealt round-robin into 2 batches: T101 in 0, M0 in 1.
    expect([...m.entries()]).toEqual([
      [0, ['T101']],
      [1, ['M0']],
    ]);
    expect([...announcedMarks(site, 2, ['T102', 'M0']).keys()]).toEqual([1]);
    expect([...announcedMarks(site, 2, undefined).entries()]).toEqual([
      [0, [allMember(0, 2)]],
      [1, [allMember(1, 2)]],
    ]);
  });
});

describe('a rollup run takes only the announced meters (real Redis and InfluxDB)', () => {
  let env: TestEnv;
  let ctx: WorkerContext;
  const clock = { now: T0 + 3_600_000 };
  const state = async () => {
    const all = await env.redis.hgetall(redisKeys(env.prefix, site.id).rollupState);
    return Object.fromEntries(Object.entries(all).map(([k, v]) => [k, (JSON.parse(v) as { w: number }).w]));
  };
  const write = (from: number, n: number, only = ids) =>
    env.influx.write(readingLines(site.id, only.flatMap((meter, i) => Array.from({ length: n }, (_, k) => ({ meter, time: from + k * 60_000, wh: 1_000_000 + i * 10_000 + (from - T0) / 600 + k * 100 })))));

  beforeAll(async () => {
    env = await testEnv('announced');
    ctx = testContext(env, [site], clock, { rollupMaxReadings: 5, lateCheckEveryMs: 1e12 });
    await write(T0, 4);
  }, 60_000);
  afterAll(async () => {
    await closeQueues(ctx.queues);
    await env.cleanup();
  });

  it('an announced meter is rolled up and the others are not queried; a message without meter ids rolls up the whole site', async () => {
    await markRollup(env.redis, env.prefix, site.id, ['T102']);
    const r = await processRollup(ctx, { site: site.id, batch: 0, batches: 1, marked: true });
    expect(r.meters).toBe(1);
    expect(Object.keys(await state())).toEqual(['T102']);
    // Nothing marked: a marked run asks InfluxDB nothing and moves no position.
    expect((await processRollup(ctx, { site: site.id, batch: 0, batches: 1, marked: true })).meters).toBe(0);
    expect(Object.keys(await state())).toEqual(['T102']);
    // The whole site (a message without meter ids marks every batch's "all").
    await markRollup(env.redis, env.prefix, site.id, [...announcedMarks(site, 1, undefined).values()].flat());
    const all = await processRollup(ctx, { site: site.id, batch: 0, batches: 1, marked: true });
    // T102 had nothing new.
    expect(all.meters).toBe(ids.length - 1);
    expect(await state()).toEqual(Object.fromEntries(ids.map((id) => [id, T0 + 3 * 60_000])));
  });

  it('a run that hits the per-meter limit marks those meters again and asks for the next run', async () => {
    await write(T0 + 10 * 60_000, 8, ['T101', 'T103']);
    await markRollup(env.redis, env.prefix, site.id, ['T101', 'T103']);
    const first = await processRollup(ctx, { site: site.id, batch: 0, batches: 1, marked: true });
    expect(first).toMatchObject({ meters: 2, readings: 10, more: true });
    expect((await env.redis.smembers(redisKeys(env.prefix, site.id).rollupDirty)).sort()).toEqual(['T101', 'T103']);
    const second = await processRollup(ctx, { site: site.id, batch: 0, batches: 1, marked: true });
    expect(second).toMatchObject({ meters: 2, readings: 6, more: false });
    const w = await state();
    expect([w.T101, w.T103]).toEqual([T0 + 17 * 60_000, T0 + 17 * 60_000]);
    expect(w.T102).toBe(T0 + 3 * 60_000);
  });

  it('a run killed after taking its meters loses nothing: the next run of the batch takes them again', async () => {
    await write(T0 + 30 * 60_000, 2, ['C-ELEV']);
    await markRollup(env.redis, env.prefix, site.id, ['C-ELEV']);
    // The killed run: it took the set (the take is the first thing a run does) and died.
    expect((await takeRollup(env.redis, env.prefix, site.id, 0, 1, ids)).meters).toEqual(['C-ELEV']);
    expect(await env.redis.smembers(redisKeys(env.prefix, site.id).rollupDirty)).toEqual([]);
    // The next run, with nothing newly marked (an announcement of another batch's meter, a retry).
    const r = await processRollup(ctx, { site: site.id, batch: 0, batches: 1, marked: true });
    expect(r).toMatchObject({ meters: 1, readings: 2 });
    expect((await state())['C-ELEV']).toBe(T0 + 31 * 60_000);
    // Done: the run after it takes nothing.
    expect((await processRollup(ctx, { site: site.id, batch: 0, batches: 1, marked: true })).meters).toBe(0);
  });
});

describe("a run's readings are bounded over all its meters (one batch a site)", () => {
  let env: TestEnv;
  afterAll(async () => env?.cleanup());

  it('each meter takes rollupRunReadings / meters (at least 100, at most rollupMaxReadings) and the rest follows in the next runs', async () => {
    env = await testEnv('budget');
    const clock = { now: T0 + 10 * 3_600_000 };
    // 5 meters x 250 readings; a run may take 500 in all: 100 a meter (the floor).
    const ctx = testContext(env, [site], clock, { rollupMaxReadings: 2000, rollupRunReadings: 500, lateCheckEveryMs: 1e12 });
    try {
      await env.influx.write(readingLines(site.id, ids.flatMap((meter, i) => Array.from({ length: 250 }, (_, k) => ({ meter, time: T0 + k * 60_000, wh: 1_000_000 + i * 100_000 + k * 100 })))));
      const first = await processRollup(ctx, { site: site.id, batch: 0, batches: 1 });
      expect(first).toMatchObject({ meters: 5, readings: 500, more: true });
      const second = await processRollup(ctx, { site: site.id, batch: 0, batches: 1, marked: true });
      expect(second).toMatchObject({ readings: 500, more: true });
      const third = await processRollup(ctx, { site: site.id, batch: 0, batches: 1, marked: true });
      expect(third).toMatchObject({ readings: 250, more: false });
      // rollupMaxReadings still caps a meter when the share would be larger.
      await closeQueues(ctx.queues);
      const capped = testContext(env, [site], clock, { rollupMaxReadings: 7, rollupRunReadings: 400_000, lateCheckEveryMs: 1e12 });
      await env.influx.write(readingLines(site.id, [{ meter: 'T101', time: T0 + 300 * 60_000, wh: 2_000_000 }, ...Array.from({ length: 9 }, (_, k) => ({ meter: 'T101', time: T0 + (301 + k) * 60_000, wh: 2_000_000 + k }))]));
      await markRollup(env.redis, env.prefix, site.id, ['T101']);
      expect(await processRollup(capped, { site: site.id, batch: 0, batches: 1, marked: true })).toMatchObject({ readings: 7, more: true });
      await closeQueues(capped.queues);
    } finally {
      await closeQueues(ctx.queues).catch(() => undefined);
    }
  });
});

describe('the safety tick rolls up what no announcement named (real BullMQ workers)', () => {
  let env: TestEnv;
  afterAll(async () => env?.cleanup());

  it('readings of a meter whose announcement was lost reach the buckets at the tick', async () => {
    env = await testEnv('lost');
    const running = await startWorkers({ sites: [site], influx: env.influx, queuePrefix: env.prefix, keyPrefix: env.prefix, queues: ['rollup'], schedule: { rollupEveryMs: 3000, rollupCoalesceMs: 100 } });
    try {
      // The first ticks (at start) run on an empty database.
      await new Promise((r) => setTimeout(r, 1500));
      const t = Date.now() - 10 * 60_000;
      await env.influx.write(readingLines(site.id, ids.flatMap((meter, i) => Array.from({ length: 5 }, (_, k) => ({ meter, time: t + k * 60_000, wh: 1_000_000 + i * 1000 + k * 50 })))));
      // Only T101 is announced; the others' announcement is "lost".
      await announceNewData(env.redis, env.prefix, site.id, 'readings', ['T101']);
      const key = redisKeys(env.prefix, site.id).rollupState;
      const end = Date.now() + 20_000;
      let seen: string[] = [];
      while (Date.now() < end) {
        seen = Object.keys(await env.redis.hgetall(key));
        if (seen.length === ids.length) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(seen.sort()).toEqual([...ids].sort());
    } finally {
      await running.close();
    }
  }, 40_000);
});
