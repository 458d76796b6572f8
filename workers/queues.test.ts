import { afterEach, describe, expect, it } from 'vitest';
import { UnrecoverableError } from 'bullmq';
import { zoneOf } from '../core/index.ts';
import { quoteString } from '../influx/client.ts';
import { batchCount, batchMeters, closeQueues, openQueues, parsePayload, QUEUE, RollupJob, SettlementJob, upsertSchedulers } from './queues.ts';
import { startWorkers } from './start.ts';
import { testEnv, testSite } from './testing/env.ts';
import type { TestEnv } from './testing/env.ts';
import { readingLines, syntheticReadings } from './testing/month.ts';

const site = testSite();
let env: TestEnv | undefined;
afterEach(async () => {
  await env?.cleanup();
  env = undefined;
});

describe('queues module', () => {
  it('bad payloads are UnrecoverableError naming the field; good ones parse', () => {
    expect(() => parsePayload(SettlementJob, QUEUE.settlement, { site: 'x', day: '2026-02-30' })).toThrow(UnrecoverableError);
    expect(() => parsePayload(SettlementJob, QUEUE.settlement, { site: 'x', day: '2026-02-30' })).toThrow(/bad settlement job payload: day: must be a local date/);
    expect(() => parsePayload(RollupJob, QUEUE.rollup, { site: 'x', batch: -1, batches: 1 })).toThrow(/batch/);
    expect(parsePayload(SettlementJob, QUEUE.settlement, { site: 'x', day: '2026-10-01' })).toEqual({ site: 'x', day: '2026-10-01' });
  });

  it('partitions meters into even batches that cover each meter once', () => {
    // One job for a site of up to 2,000 meters (the benchmark site: 1,002), then even batches.
    expect(batchCount({ id: 's', timezone: 'UTC', meters: Array.from({ length: 2000 }, (_, i) => ({ id: `T${i}` })) })).toBe(1);
    const many = { id: 's', timezone: 'UTC', meters: Array.from({ length: 4500 }, (_, i) => ({ id: `T${i}` })) };
    const n = batchCount(many);
    expect(n).toBe(3);
    const all = Array.from({ length: n }, (_, b) => batchMeters(many, b, n));
    expect(all.map((b) => b.length)).toEqual([1500, 1500, 1500]);
    expect(new Set(all.flat()).size).toBe(4500);
  });

  it('upsertSchedulers is idempotent across processes (stable ids) and follows the site timezone', async () => {
    env = await testEnv('queues');
    const q1 = openQueues(env.redis, env.prefix);
    const q2 = openQueues(env.redis, env.prefix);
    await Promise.all([upsertSchedulers(q1, site), upsertSchedulers(q2, site)]);
    const settle = await q1.settlement.getJobSchedulers();
    expect(settle).toHaveLength(1);
    expect(settle[0]).toMatchObject({ key: `settlement:${site.id}`, tz: 'Asia/Shanghai', pattern: '0 15 * * * *' });
    expect(await q1.rollup.getJobSchedulers()).toHaveLength(1);
    expect(await q1.balance.getJobSchedulers()).toHaveLength(1);
    await closeQueues(q1);
    await closeQueues(q2);
  });
});

describe('startWorkers with its schedulers (real BullMQ, Redis, InfluxDB)', () => {
  it('rolls up, settles the due days and publishes balances without any job added by hand', async () => {
    env = await testEnv('e2e');
    const zone = zoneOf(site.timezone);
    const now = zone.midnight('2026-10-03') + 20 * 60_000;
    await env.influx.write(readingLines(site.id, syntheticReadings(site, '2026-10-01', 2)));
    const running = await startWorkers({
      sites: [site],
      influx: env.influx,
      queuePrefix: env.prefix,
      keyPrefix: env.prefix,
      now: () => now,
      schedule: { rollupEveryMs: 300, balanceEveryMs: 300, alertsEveryMs: 300 },
      tuning: { lateWindowDays: 5 },
    });
    try {
      const q = (s: string) => env!.influx.query(s).catch(() => []);
      const sq = quoteString(site.id);
      const end = Date.now() + 60_000;
      for (;;) {
        const [days, buckets, balances] = await Promise.all([
          q(`SELECT master_wh FROM site_day WHERE site = ${sq} AND period = 'valley'`),
          q(`SELECT count(wh) FROM tou_bucket WHERE site = ${sq}`),
          q(`SELECT count(balance_fen) FROM balance WHERE site = ${sq}`),
        ]);
        const done = { days: days.length, buckets: (buckets[0]?.count as number) ?? 0, balances: (balances[0]?.count as number) ?? 0 };
        if ((done.days === 2 && done.buckets > 0 && done.balances >= 3) || Date.now() > end) {
          expect(done.days, 'settled days').toBe(2);
          expect(done.buckets, 'rolled-up buckets').toBeGreaterThan(0);
          expect(done.balances, 'balance points').toBeGreaterThanOrEqual(3);
          break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await running.close();
    }
  }, 90_000);
});
