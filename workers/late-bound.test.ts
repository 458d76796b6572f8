import { afterEach, describe, expect, it } from 'vitest';
import { addDays, zoneOf } from '../core/index.ts';
import type { WorkerContext } from './context.ts';
import { redisKeys } from './keys.ts';
import { closeQueues } from './queues.ts';
import { rollupAll, testContext, testEnv, testSite } from './testing/env.ts';
import type { TestEnv } from './testing/env.ts';
import { readingLines } from './testing/month.ts';

/**
 * Late readings are found by comparing per-day fingerprints up to a bound every meter's
 * rollup has passed. The bound was the lowest watermark of the batch, with the window's
 * start for a meter without one: one meter silent for days, or one that never answered, held
 * it at or before the window's start, and no late reading of any meter of the batch (the
 * whole site, at one batch of up to 2,000 meters) was found again. Such a meter has no
 * reading in the window at or before its position, so it is left out of the bound.
 */

const zone = zoneOf('Asia/Shanghai');
const DAY = '2026-10-05';
const site = testSite();
const live = ['M0', 'T101', 'T102', 'T103'];

describe('late readings are found while a meter of the batch is silent (real Redis and InfluxDB)', () => {
  let env: TestEnv | undefined;
  let ctx: WorkerContext | undefined;
  afterEach(async () => {
    if (ctx) await closeQueues(ctx.queues);
    await env?.cleanup();
  });

  it.each([
    ['silent for six days', true],
    ['never read', false],
  ])('C-ELEV %s: a late reading of T101 yesterday resets T101 to yesterday', async (_, dead) => {
    env = await testEnv('latebound');
    const clock = { now: zone.midnight(DAY) + 12 * 3_600_000 };
    ctx = testContext(env, [site], clock, { lateCheckEveryMs: 60_000, lateWindowDays: 3 });
    const start = zone.midnight(addDays(DAY, -2));
    const rows = live.flatMap((meter, i) => Array.from({ length: (2 * 24 + 12) * 4 }, (_, k) => ({ meter, time: start + k * 900_000, wh: 1_000_000 + i * 100_000 + k * 250 })));
    if (dead) rows.push(...Array.from({ length: 4 }, (_, k) => ({ meter: 'C-ELEV', time: zone.midnight(addDays(DAY, -6)) + k * 900_000, wh: 5_000 + k * 10 })));
    await env.influx.write(readingLines(site.id, rows));
    // Rolled up; the first check stores the fingerprints, the second compares (nothing late yet).
    await rollupAll(ctx, site.id);
    clock.now += 2 * 60_000;
    expect((await rollupAll(ctx, site.id)).lateDays).toBe(0);

    // A reading between two T101 has (yesterday 10:00 and 10:15), written after both were rolled up.
    const yesterday = addDays(DAY, -1);
    const at = zone.midnight(yesterday) + 10 * 3_600_000 + 7 * 60_000;
    const k = Math.floor((at - start) / 900_000);
    await env.influx.write(readingLines(site.id, [{ meter: 'T101', time: at, wh: 1_100_000 + k * 250 + 200 }]));
    clock.now += 2 * 60_000;
    const r = await rollupAll(ctx, site.id);
    expect(r.lateDays).toBe(1);
    const state = JSON.parse((await env.redis.hget(redisKeys(env.prefix, site.id).rollupState, 'T101'))!) as { seed?: boolean; from?: number };
    expect(state).toMatchObject({ seed: true, from: zone.midnight(yesterday) });
  });
});
