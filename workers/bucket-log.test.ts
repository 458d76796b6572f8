import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { occupancyPieces, zoneOf } from '../core/index.ts';
import type { Site } from '../core/index.ts';
import { rowsOf } from '../influx/client.ts';
import { quoteString } from '../influx/client.ts';
import { TrailingBucketCache } from './bucket-log.ts';
import type { WorkerContext } from './context.ts';
import { redisKeys } from './keys.ts';
import { loadLiveInputs } from './live-figures.ts';
import { closeQueues } from './queues.ts';
import { processRollup, restartRollup } from './rollup.ts';
import { markRollup } from './rollup-dirty.ts';
import { rollupAll, SITE_YAML, testContext, testEnv, testSite } from './testing/env.ts';
import { rng } from './testing/rng.ts';
import type { TestEnv } from './testing/env.ts';
import { readingLines } from './testing/month.ts';

/**
 * Issue 15: the balance's trailing-window cache (workers/bucket-log.ts) must give exactly
 * the rows of the site's statement at every instant: after rollups of some meters, a
 * reading stamped ahead of the clock, late readings that reset a meter, a restart that
 * deletes buckets, the window's slot moving, a move inside the window and a reload. A seeded
 * random walk over those, comparing the two after every step; and the named path is taken.
 */

const zone = zoneOf('Asia/Shanghai');
const DAY = '2026-10-02';
const at = (hh: number, mm = 0) => zone.midnight(DAY) + (hh * 60 + mm) * 60_000;
const MOVE_OUT = at(14, 37);
const MOVE_IN = at(18);
const yaml = SITE_YAML.replace('site: { id: wk-plaza,', 'site: { id: wk-cache, landlord_account: L,')
  .replace('  - { id: T102, role: tenant, account: A102 }', '  - { id: T102, role: tenant, accounts: [A102, A2N] }')
  .replace(
    '  - { id: A102, name: Cafe 102, area_m2: 80, tariff: commercial, opening_balance: "0.00", low_balance: "50.00" }',
    `  - { id: A102, name: Cafe 102, area_m2: 80, tariff: commercial, opening_balance: "0.00", low_balance: "50.00", move_out: "${zone.format(MOVE_OUT)}" }\n  - { id: A2N, name: Tea 102, area_m2: 90, tariff: commercial, move_in: "${zone.format(MOVE_IN)}" }\n  - { id: L, name: Landlord, area_m2: 10, tariff: commercial }`,
  );


describe('trailing-window cache = the site statement (real Redis and InfluxDB)', () => {
  let env: TestEnv;
  let ctx: WorkerContext;
  let site: Site;
  const clock = { now: at(13) };
  beforeAll(async () => {
    site = testSite(yaml);
    env = await testEnv('bucketlog');
    ctx = testContext(env, [site], clock, { lateCheckEveryMs: 0, lateWindowDays: 3 });
  });
  afterAll(async () => {
    await closeQueues(ctx.queues);
    await env.cleanup();
  });

  const statementRows = async (s: Site) => {
    const pieces = occupancyPieces(s, clock.now - 86_400_000, clock.now + 1);
    const tz = quoteString(s.timezone);
    const res = await env.influx.queryRaw(pieces.map(([a, b]) => `SELECT sum(wh) FROM tou_bucket WHERE site = ${quoteString(s.id)} AND time >= ${a}ms AND time < ${b}ms GROUP BY meter, period, time(1d) fill(none) tz(${tz})`).join(';\n'));
    return pieces.map((_, i) => sorted(rowsOf(res[i] ?? [])));
  };
  const sorted = (rows: readonly Record<string, unknown>[]) => rows.map((r) => `${r.meter}|${r.period}|${r.time}|${r.sum}`).sort();
  const cachedRows = async (cache: TrailingBucketCache, s: Site) => {
    const pieces = occupancyPieces(s, clock.now - 86_400_000, clock.now + 1).map(([a, b]) => ({ a, b }));
    return (await cache.pieces(env.influx, s, pieces)).map((series) => sorted(rowsOf(series)));
  };

  it('after every step of a random walk the cached rows are the statement rows, and most steps read only the changed meters', async () => {
    const rand = rng(20261130);
    const cache = new TrailingBucketCache(env.redis, env.prefix);
    const reg = new Map(site.meters.map((m, i) => [m.id, 1_000_000 + i * 100_000]));
    const last = new Map(site.meters.map((m) => [m.id, clock.now - 60 * 60_000]));
    // A first hour of readings for every meter.
    const first = site.meters.flatMap((m) => Array.from({ length: 12 }, (_, k) => ({ meter: m.id, time: clock.now - 55 * 60_000 + k * 5 * 60_000, wh: reg.get(m.id)! + k * 50 })));
    for (const m of site.meters) {
      reg.set(m.id, reg.get(m.id)! + 11 * 50);
      last.set(m.id, clock.now);
    }
    await env.influx.write(readingLines(site.id, first));
    await rollupAll(ctx, site.id);
    const reads: string[] = [];
    let reloaded = false;
    for (let step = 0; step < 90; step++) {
      const r = rand();
      if (r < 0.45) {
        // Readings of some meters up to now, rolled up.
        const some = site.meters.filter(() => rand() < 0.5);
        const rows = some.flatMap((m) => {
          const t = Math.min(clock.now, last.get(m.id)! + 60_000 + Math.floor(rand() * 10) * 60_000);
          if (t <= last.get(m.id)!) return [];
          last.set(m.id, t);
          reg.set(m.id, reg.get(m.id)! + 5 + Math.floor(rand() * 200));
          return [{ meter: m.id, time: t, wh: reg.get(m.id)! }];
        });
        if (rows.length) await env.influx.write(readingLines(site.id, rows));
        await rollupAll(ctx, site.id);
      } else if (r < 0.62) {
        clock.now += Math.floor(rand() * 50) * 60_000 + Math.floor(rand() * 60_000);
      } else if (r < 0.68) {
        // A reading stamped ahead of the clock (the next slot), rolled up now.
        const m = site.meters[Math.floor(rand() * site.meters.length)];
        const t = Math.max(last.get(m.id)! + 60_000, clock.now + 16 * 60_000);
        last.set(m.id, t);
        reg.set(m.id, reg.get(m.id)! + 30);
        await env.influx.write(readingLines(site.id, [{ meter: m.id, time: t, wh: reg.get(m.id)! }]));
        await rollupAll(ctx, site.id);
      } else if (r < 0.76) {
        // A late reading between two old ones: the late check resets the meter, the next runs rewrite its buckets.
        const m = site.meters[Math.floor(rand() * site.meters.length)];
        const rows = await env.influx.query(`SELECT wh FROM reading WHERE site = ${quoteString(site.id)} AND meter = ${quoteString(m.id)} AND time <= ${clock.now}ms ORDER BY time DESC LIMIT 3`);
        if (rows.length === 3 && (rows[1].time as number) - (rows[2].time as number) > 1000) {
          const t = Math.floor(((rows[1].time as number) + (rows[2].time as number)) / 2);
          await env.influx.write(readingLines(site.id, [{ meter: m.id, time: t, wh: Math.floor(((rows[1].wh as number) + (rows[2].wh as number)) / 2) }]));
          await rollupAll(ctx, site.id);
          await rollupAll(ctx, site.id);
        }
      } else if (r < 0.82) {
        // A restart of one meter from an instant in the window (deletes its buckets from then on).
        const m = site.meters[Math.floor(rand() * site.meters.length)];
        await restartRollup(ctx, site, [m.id], clock.now - Math.floor(rand() * 6) * 3_600_000);
        // Between the delete and the rewrite, too.
        expect(await cachedRows(cache, site), `step ${step}: after the delete`).toEqual(await statementRows(site));
        await rollupAll(ctx, site.id);
      } else if (r < 0.86 && !reloaded) {
        // A reload: a new site object (same file), as the workers' reload builds.
        site = testSite(yaml);
        (ctx.sites as Map<string, Site>).set(site.id, site);
        reloaded = true;
      }
      const want = await statementRows(site);
      const got = await cachedRows(cache, site);
      reads.push(cache.lastRead);
      expect(got, `step ${step} at ${zone.format(clock.now)} (read: ${cache.lastRead})`).toEqual(want);
      // The live inputs from the cache equal those from the statement.
      const a = await loadLiveInputs({ influx: env.influx, site, now: clock.now, trailingCache: cache });
      const b = await loadLiveInputs({ influx: env.influx, site, now: clock.now });
      expect(a.inputs, `step ${step}`).toEqual(b.inputs);
    }
    // The walk crossed the move-out and the move-in (pieces inside the window).
    expect(clock.now).toBeGreaterThan(MOVE_IN);
    expect(reads.filter((x) => x === 'named').length).toBeGreaterThan(5);
    expect(reads).toContain('site');
  }, 240_000);

  it('a log trimmed past a process position, or lost, reads the whole site again; an empty one is read from', async () => {
    const cache = new TrailingBucketCache(env.redis, env.prefix);
    // Empty at the first read: the process marks its position, and later entries are read by name.
    await env.redis.del(redisKeys(env.prefix, site.id).bucketLog);
    await cachedRows(cache, site);
    expect(cache.lastRead).toBe('site');
    await env.redis.xadd(redisKeys(env.prefix, site.id).bucketLog, '*', 'm', 'T101');
    expect(await cachedRows(cache, site)).toEqual(await statementRows(site));
    expect(cache.lastRead).toBe('named');
    await cachedRows(cache, site);
    expect(cache.lastRead).toBe('none');
    await env.redis.del(redisKeys(env.prefix, site.id).bucketLog);
    await env.redis.xadd(redisKeys(env.prefix, site.id).bucketLog, '*', 'm', 'T101');
    expect(await cachedRows(cache, site)).toEqual(await statementRows(site));
    expect(cache.lastRead).toBe('site');
  });
});

describe('many changed meters: names in statements of 100 (real Redis and InfluxDB)', () => {
  it('a rollup of 250 announced meters and the cache after it read them by name in three statements each, equal to the site statement', async () => {
    const tenants = Array.from({ length: 260 }, (_, i) => `T${String(i).padStart(3, '0')}`);
    const big = testSite(
      SITE_YAML.replace('site: { id: wk-plaza,', 'site: { id: wk-many,')
        .replace(/ {2}- \{ id: T10\d, role: tenant, account: A10\d \}\n/g, '')
        .replace('  - { id: C-ELEV, role: common, pool: elevators }', ['  - { id: C-ELEV, role: common, pool: elevators }', ...tenants.map((t) => `  - { id: ${t}, role: tenant, account: A101 }`)].join('\n')),
    );
    expect(big.meters.length).toBe(262);
    const env = await testEnv('bucketmany');
    const T0 = Date.UTC(2026, 9, 10, 2, 0);
    const clock = { now: T0 + 1000 };
    const ctx = testContext(env, [big], clock, { lateCheckEveryMs: 1e12 });
    try {
      await env.influx.write(readingLines(big.id, big.meters.map((m) => ({ meter: m.id, time: T0, wh: 1_000_000 }))));
      await rollupAll(ctx, big.id);
      const cache = new TrailingBucketCache(env.redis, env.prefix);
      const pieces = () => occupancyPieces(big, clock.now - 86_400_000, clock.now + 1).map(([a, b]) => ({ a, b }));
      const site = async () => {
        const tz = quoteString(big.timezone);
        const res = await env.influx.queryRaw(pieces().map((p) => `SELECT sum(wh) FROM tou_bucket WHERE site = ${quoteString(big.id)} AND time >= ${p.a}ms AND time < ${p.b}ms GROUP BY meter, period, time(1d) fill(none) tz(${tz})`).join(';\n'));
        return pieces().map((_, i) => rowsOf(res[i] ?? []).map((r) => `${r.meter}|${r.period}|${r.time}|${r.sum}`).sort());
      };
      const cached = async () => (await cache.pieces(env.influx, big, pieces())).map((s) => rowsOf(s).map((r) => `${r.meter}|${r.period}|${r.time}|${r.sum}`).sort());
      expect(await cached()).toEqual(await site());
      // 250 meters read a minute later, announced together: the rollup names them (3 statements), the cache too.
      clock.now = T0 + 61_000;
      const some = tenants.slice(0, 250);
      await env.influx.write(readingLines(big.id, some.map((id, i) => ({ meter: id, time: T0 + 60_000, wh: 1_000_000 + 10 + i }))));
      await markRollup(env.redis, env.prefix, big.id, some);
      const r = await processRollup(ctx, { site: big.id, batch: 0, batches: 1, marked: true });
      expect(r).toMatchObject({ meters: 250, readings: 250 });
      expect(await cached()).toEqual(await site());
      expect(cache.lastRead).toBe('named');
      expect((await site()).flat().length).toBe(250);
    } finally {
      await closeQueues(ctx.queues);
      await env.cleanup();
    }
  });
});
