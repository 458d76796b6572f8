import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerContext } from './context.ts';
import { redisKeys } from './keys.ts';
import { lastIntervalAt, nextLastTwo, parseLastTwo } from './last-readings.ts';
import type { LastTwo } from './last-readings.ts';
import { loadLiveFigures, loadLiveInputs } from './live-figures.ts';
import { closeQueues } from './queues.ts';
import { processBalance } from './balance.ts';
import { testContext, testEnv, testSite } from './testing/env.ts';
import type { TestEnv } from './testing/env.ts';
import { readingLines } from './testing/month.ts';
import { rollupAll } from './testing/env.ts';

/**
 * Issue 15: the balance job's last intervals (power now, cost per hour) come from the pairs
 * the rollup keeps as it reads, instead of a statement over every reading series of the
 * site (~45 ms of InfluxDB per run for 1,000 meters). They must equal what that statement
 * gives at the same instant, or be read from InfluxDB when the pair cannot tell.
 */

const series = (pts: [number, number][]) => ({ time: Float64Array.from(pts.map((p) => p[0])), wh: Float64Array.from(pts.map((p) => p[1])) });

describe('the pair the rollup keeps', () => {
  it('takes the two newest readings of the stored pair and the run, and leaves a newer pair alone', () => {
    expect(nextLastTwo(undefined, series([[1000, 5]]))).toBeUndefined();
    // A meter read once a run: the reading read before (the watermark, from the carried state) makes the pair.
    expect(nextLastTwo(undefined, series([[2000, 7]]), [1000, 5])).toEqual([1000, 5, 2000, 7]);
    expect(nextLastTwo([500, 1, 1000, 5], series([[2000, 7]]), [900, 4])).toEqual([1000, 5, 2000, 7]);
    expect(nextLastTwo(undefined, series([[1000, 5], [2000, 7], [3000, 9]]))).toEqual([2000, 7, 3000, 9]);
    const stored: LastTwo = [2000, 7, 3000, 9];
    expect(nextLastTwo(stored, series([[4000, 12]]))).toEqual([3000, 9, 4000, 12]);
    expect(nextLastTwo(stored, series([[4000, 12], [5000, 15]]))).toEqual([4000, 12, 5000, 15]);
    // A reset re-reading older history: nothing changes.
    expect(nextLastTwo(stored, series([[500, 1], [1000, 5]]))).toBeUndefined();
    expect(nextLastTwo(stored, series([[2000, 7], [3000, 9]]))).toBeUndefined();
    // A late reading between the two, read after a reset: it becomes the older one.
    expect(nextLastTwo(stored, series([[1000, 5], [2500, 8]]))).toEqual([2500, 8, 3000, 9]);
    expect(nextLastTwo(stored, series([[2500, 8], [3000, 9]]))).toEqual([2500, 8, 3000, 9]);
  });

  it('refuses malformed text, and gives the interval the statement would give, or asks', () => {
    for (const bad of [null, '', '1,2,3', '1,2,x,4', '5,1,5,2', '6,1,5,2']) expect(parseLastTwo(bad), String(bad)).toBeUndefined();
    expect(parseLastTwo('1000,5,2000,9')).toEqual([1000, 5, 2000, 9]);
    const now = 100 * 3_600_000;
    expect(lastIntervalAt([now - 120_000, 5, now - 60_000, 9], now)).toEqual({ wh: 4, ms: 60_000, at: now - 60_000 });
    // The newer reading an hour old: no power now; the older one 25 h old: the statement sees one reading.
    expect(lastIntervalAt([now - 7_200_000, 5, now - 3_600_000, 9], now)).toBeUndefined();
    expect(lastIntervalAt([now - 25 * 3_600_000, 5, now - 60_000, 9], now)).toBeUndefined();
    // A reading after now: the statement would take the two before it.
    expect(lastIntervalAt([now - 60_000, 5, now + 1, 9], now)).toBe('ask');
  });
});

describe("the balance's last intervals from the rollup's pairs = the statement's (real Redis and InfluxDB)", () => {
  const site = testSite();
  const T0 = Date.UTC(2026, 9, 10, 2, 0);
  const clock = { now: T0 + 30 * 60_000 };
  let env: TestEnv;
  let ctx: WorkerContext;
  const pairs = async () => {
    const all = await env.redis.hgetall(redisKeys(env.prefix, site.id).lastReadings);
    return new Map(Object.entries(all).map(([k, v]) => [k, parseLastTwo(v)!]));
  };
  const both = async () => {
    const fromPairs = await loadLiveInputs({ influx: env.influx, site, now: clock.now, lastReadings: pairs });
    const fromInflux = await loadLiveInputs({ influx: env.influx, site, now: clock.now });
    return { fromPairs: fromPairs.inputs.lastInterval, fromInflux: fromInflux.inputs.lastInterval };
  };

  beforeAll(async () => {
    env = await testEnv('lastread');
    ctx = testContext(env, [site], clock, { lateCheckEveryMs: 0 });
    // Every meter each minute for 20 minutes, with different power.
    await env.influx.write(readingLines(site.id, site.meters.flatMap((m, i) => Array.from({ length: 20 }, (_, k) => ({ meter: m.id, time: T0 + k * 60_000, wh: 1_000_000 + k * (10 + i * 7) })))));
    await rollupAll(ctx, site.id);
  }, 60_000);
  afterAll(async () => {
    await closeQueues(ctx.queues);
    await env.cleanup();
  });

  it('after a rollup: every meter from the pairs, equal to the statement', async () => {
    expect((await pairs()).size).toBe(site.meters.length);
    const { fromPairs, fromInflux } = await both();
    expect(fromInflux.size).toBe(site.meters.length);
    expect(fromPairs).toEqual(fromInflux);
  });

  it('a late reading between the last two, a reading after now, a silent meter: still equal', async () => {
    // T101: a late reading 30 s before its last; T102: a reading 5 minutes ahead of the clock.
    await env.influx.write(readingLines(site.id, [
      { meter: 'T101', time: T0 + 19 * 60_000 - 30_000, wh: 1_000_310 },
      { meter: 'T102', time: clock.now + 5 * 60_000, wh: 2_000_000 },
    ]));
    await rollupAll(ctx, site.id);
    // The late reading reset T101's rollup; its next runs read it again.
    await rollupAll(ctx, site.id);
    const p = await pairs();
    // T101 (the second meter) uses 17 Wh a minute: 1,000,306 at minute 18, 1,000,323 at 19.
    expect(p.get('T101')).toEqual([T0 + 19 * 60_000 - 30_000, 1_000_310, T0 + 19 * 60_000, 1_000_323]);
    expect(lastIntervalAt(p.get('T102')!, clock.now)).toBe('ask');
    let { fromPairs, fromInflux } = await both();
    expect(fromPairs).toEqual(fromInflux);
    expect(fromPairs.get('T101')).toEqual({ wh: 13, ms: 30_000, at: T0 + 19 * 60_000 });
    // Two hours on, nobody read: no meter has power now, either way.
    clock.now += 2 * 3_600_000;
    ({ fromPairs, fromInflux } = await both());
    expect(fromPairs).toEqual(new Map());
    expect(fromInflux).toEqual(new Map());
  });

  it("the balance job's cost per hour (from the pairs) equals the one from the statement", async () => {
    clock.now = T0 + 30 * 60_000;
    expect((await pairs()).size).toBe(site.meters.length);
    const job = await processBalance(ctx, { site: site.id });
    const statement = await loadLiveFigures({ influx: env.influx, site, now: clock.now });
    expect(job.map((b) => [b.account, b.costRateFenH])).toEqual(statement.accounts.map((a) => [a.account, a.costPerHourFen]));
    expect(job.some((b) => b.costRateFenH > 0)).toBe(true);
  });
});

describe('a meter read once a run gets its pair (real Redis and InfluxDB)', () => {
  it('the second run pairs its reading with the one the first run read (from the carried state)', async () => {
    const site = testSite();
    const env = await testEnv('lastread1');
    const T0 = Date.UTC(2026, 9, 10, 2, 0);
    const clock = { now: T0 + 1000 };
    const ctx = testContext(env, [site], clock, { lateCheckEveryMs: 1e12 });
    try {
      await env.influx.write(readingLines(site.id, site.meters.map((m) => ({ meter: m.id, time: T0, wh: 1_000_000 }))));
      await rollupAll(ctx, site.id);
      clock.now = T0 + 61_000;
      await env.influx.write(readingLines(site.id, site.meters.map((m) => ({ meter: m.id, time: T0 + 60_000, wh: 1_000_010 }))));
      await rollupAll(ctx, site.id);
      const all = await env.redis.hgetall(redisKeys(env.prefix, site.id).lastReadings);
      expect(Object.fromEntries(Object.entries(all).map(([k, v]) => [k, parseLastTwo(v)]))).toEqual(Object.fromEntries(site.meters.map((m) => [m.id, [T0, 1_000_000, T0 + 60_000, 1_000_010]])));
      // And the balance then asks InfluxDB for no meter: its intervals equal the statement's.
      const fromPairs = await loadLiveInputs({ influx: env.influx, site, now: clock.now, lastReadings: async () => new Map(Object.entries(all).map(([k, v]) => [k, parseLastTwo(v)!])) });
      const fromInflux = await loadLiveInputs({ influx: env.influx, site, now: clock.now });
      expect(fromPairs.inputs.lastInterval).toEqual(fromInflux.inputs.lastInterval);
      expect(fromInflux.inputs.lastInterval.size).toBe(site.meters.length);
    } finally {
      await closeQueues(ctx.queues);
      await env.cleanup();
    }
  });
});
