import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, RedisTokenStore, SiteRef } from '../api/index.ts';
import { addDays, computeBillRun, zoneOf } from '../core/index.ts';
import type { WorkerContext } from './context.ts';
import { closeQueues } from './queues.ts';
import { requestResettlements } from './settle-requests.ts';
import { redisKeys } from './keys.ts';
import { processSettlement } from './settlement.ts';
import { rollupAll, testContext, testEnv, testSite } from './testing/env.ts';
import type { TestEnv } from './testing/env.ts';
import { readingLines, syntheticReadings } from './testing/month.ts';

/**
 * Usage for all history (issue 10): buckets existed only from 3 days before the workers
 * first started, so usage, advice and the dashboards missed the rest of the billed days.
 * Now the first rollup starts at each meter's first reading, and a day settled again after
 * an import gets its buckets from the settlement: the usage API covers every billed day,
 * with the same energy as the bill.
 */
const site = testSite();
const zone = zoneOf(site.timezone);

describe('usage covers every day with readings (real Redis and InfluxDB)', () => {
  let env: TestEnv;
  let ctx: WorkerContext;
  let server: Server;
  let usage: (from: string, to: string) => Promise<Map<string, number>>;
  const history = syntheticReadings(site, '2026-10-01', 20, 15 * 60_000);
  const imported = syntheticReadings(site, '2026-09-20', 1, 15 * 60_000, 3).map((r) => ({ ...r, wh: r.wh - 500_000 }));
  const clock = { now: zone.midnight('2026-10-21') + 30 * 60_000 };

  beforeAll(async () => {
    env = await testEnv('history');
    // Default tuning: the late-data window is 3 days, the history 20.
    ctx = testContext(env, [site], clock);
    await env.influx.write(readingLines(site.id, history));
    const app = buildApp({ site: new SiteRef(site), influx: env.influx, redis: env.redis, keyPrefix: `${env.prefix}:api:`, now: () => clock.now, cacheMs: 0 });
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    const token = (await new RedisTokenStore(env.redis, `${env.prefix}:api:`).create({ site: site.id, role: 'viewer' })).token;
    usage = async (from, to) => {
      const r = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/accounts/A101/usage?from=${from}&to=${to}&interval=1d`, { headers: { authorization: `Bearer ${token}` } });
      const body = (await r.json()) as { points: { time: string; kwh: string }[] };
      const out = new Map<string, number>();
      for (const p of body.points) out.set(p.time.slice(0, 10), (out.get(p.time.slice(0, 10)) ?? 0) + Math.round(Number(p.kwh) * 1000));
      return out;
    };
  }, 120_000);
  afterAll(async () => {
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    await closeQueues(ctx.queues);
    await env.cleanup();
  });

  /** A101's own energy per day from the offline bill, Wh. */
  const billed = (rows: typeof history, from: string, days: number) => {
    const out = new Map<string, number>();
    for (let i = 0; i < days; i++) {
      const d = addDays(from, i);
      const a = computeBillRun(site, rows, [], d, addDays(d, 1)).accounts.find((x) => x.account === 'A101')!;
      out.set(d, Math.round(Number(a.kwh.own) * 1000)); // test-side parse of a 3-decimal text
    }
    return out;
  };

  it('first start 20 days after the first reading: buckets for all 20 days, each = the billed own energy', async () => {
    await rollupAll(ctx, site.id);
    expect(await usage('2026-10-01', '2026-10-21')).toEqual(billed(history, '2026-10-01', 20));
  });

  it('an import of an older day, settled again as the import asks: its buckets come from the settlement', async () => {
    await env.influx.write(readingLines(site.id, imported));
    // What `submeter import` does for the days its rows touch (workers/settle-requests.ts), then the site's one settlement job.
    await requestResettlements(ctx, site.id, ['2026-09-19', '2026-09-20', '2026-09-21'], 'import of old.csv');
    const log = redisKeys(env.prefix, site.id).bucketLog;
    const before = (await env.redis.xrevrange(log, '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0';
    await processSettlement(ctx, { site: site.id });
    // The buckets it wrote are in the site's bucket log (the balance's cache reads those meters again).
    const logged = (await env.redis.xrange(log, `(${before}`, '+')).flatMap(([, f]) => f[f.indexOf('m') + 1].split('\n'));
    expect(logged).toContain('T101');
    const day = await usage('2026-09-20', '2026-09-21');
    expect(day).toEqual(billed(imported, '2026-09-20', 1));
    expect(day.get('2026-09-20')).toBeGreaterThan(0);
  });

  it('a settlement that died between its bucket rewrite and the bucket log: the next settlement run logs those meters', async () => {
    // What the dead run left: its note of the meters (their buckets already rewritten).
    const keys = redisKeys(env.prefix, site.id);
    await env.redis.set(keys.bucketRewritePending, 'T102\nT103');
    const before = (await env.redis.xrevrange(keys.bucketLog, '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0';
    // The re-run finds the day's buckets right: it rewrites nothing, but logs what the note names.
    await requestResettlements(ctx, site.id, ['2026-09-20'], 'retry after a crash');
    await processSettlement(ctx, { site: site.id });
    const logged = (await env.redis.xrange(keys.bucketLog, `(${before}`, '+')).flatMap(([, f]) => f[f.indexOf('m') + 1].split('\n'));
    expect(logged).toEqual(expect.arrayContaining(['T102', 'T103']));
    expect(await env.redis.exists(keys.bucketRewritePending)).toBe(0);
  });
});
