import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addDays, computeBillRun, zoneOf } from '../core/index.ts';
import type { BillRun } from '../core/index.ts';
import { quoteString } from '../influx/client.ts';
import type { WorkerContext } from './context.ts';
import { redisKeys } from './keys.ts';
import { closeQueues } from './queues.ts';
import { completeSettlement, pendingSettlements, requestResettlement, requestResettlements } from './settle-requests.ts';
import { processSettlement } from './settlement.ts';
import { startWorkers } from './start.ts';
import { liveBill } from './statement.ts';
import { testContext, testEnv, testSite } from './testing/env.ts';
import type { TestEnv } from './testing/env.ts';
import { readingLines, syntheticReadings } from './testing/month.ts';

/**
 * Catch-up at the speed of the work (issue 15): a month of readings imported for a site
 * whose days were settled without them asks for every day to be settled again. Before,
 * that was a job per day, and the jobs of the site fought over its lock inside the
 * workers, failing and backing off exponentially (a 6-meter month took ~14 minutes).
 * Now the days are recorded for the site and its one settlement job settles them in day
 * order: one pass, no failed attempt, every day adjusted, the month equal to the offline
 * bill.
 */
const site = testSite();
const zone = zoneOf(site.timezone);
const FROM = '2026-10-01';
const DAYS = 30;
const TO = addDays(FROM, DAYS);
const all = syntheticReadings(site, FROM, DAYS, 15 * 60_000);
const late = all.filter((r) => r.meter === 'T101');
const first = all.filter((r) => r.meter !== 'T101');
const NOW = zone.midnight(TO) + 20 * 60_000;
const same = (b: BillRun) => JSON.stringify({ ...b, quality: undefined }, null, 2);

describe('catch-up of an imported month (real BullMQ workers, Redis, InfluxDB)', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await testEnv('catchup');
    await env.influx.write(readingLines(site.id, first));
  });
  afterAll(async () => {
    await env.cleanup();
  });

  it('settles every requested day in one pass, in day order, with no failed job and no lock fight', async () => {
    const running = await startWorkers({ sites: [site], influx: env.influx, queuePrefix: env.prefix, keyPrefix: env.prefix, queues: ['settlement'], schedulers: false, concurrency: 2, now: () => NOW });
    const failures: string[] = [];
    const settledInOrder: string[] = [];
    for (const w of running.workers) w.on('failed', (job, err) => failures.push(`${job?.name} ${job?.id}: ${err.message}`));
    try {
      // The month without T101 is settled first (the workers were running all along).
      await requestResettlements(running.ctx, site.id, [FROM], 'start');
      // Until its job has ended, not just its last day's points landed: the job reports that
      // day's progress after writing it, and a listener added in between saw 10-30 first.
      const idle = async () => Object.values(await running.queues.settlement.getJobCounts('active', 'waiting', 'delayed', 'prioritized')).every((n) => n === 0);
      await until(async () => (await settledCount()) === DAYS && (await idle()), 60_000, 'first settlement of the month');
      running.workers[0].on('progress', (_job, p) => settledInOrder.push((p as { day: string }).day));

      // `submeter import` of T101's month: its rows are written, then every affected day is asked for.
      await env.influx.write(readingLines(site.id, late));
      const days = Array.from({ length: DAYS }, (_, i) => addDays(FROM, i));
      await requestResettlements(running.ctx, site.id, days, 'import of t101-october.csv');
      // More requests while it runs (late data found by the rollup): recorded, not lost, no second job in parallel.
      await requestResettlement(running.ctx, site.id, addDays(FROM, 3), 'late or corrected readings of T101');
      await until(async () => (await pendingSettlements(running.ctx, site.id)).length === 0 && (await running.queues.settlement.getActiveCount()) === 0, 120_000, 'catch-up');

      expect(failures).toEqual([]);
      expect(settledInOrder.slice(0, DAYS)).toEqual(days);
      // Every day of the month carries T101's energy now, as adjustment lines with the reason.
      const rev1 = await env.influx.query(`SELECT count(fen) FROM charge WHERE site = ${quoteString(site.id)} AND rev = '1' AND account = 'A101' GROUP BY time(1d) fill(none) tz('Asia/Shanghai')`);
      expect(rev1).toHaveLength(DAYS);
      const reasons = await env.influx.query(`SELECT last(reason) FROM charge WHERE site = ${quoteString(site.id)} AND rev = '1'`);
      expect(String(reasons[0].last)).toMatch(/import of t101-october\.csv/);
      expect(same(await liveBill(env.influx, site, FROM, TO))).toBe(same(computeBillRun(site, all, [], FROM, TO)));
    } finally {
      await running.close();
    }
  }, 240_000);

  async function settledCount(): Promise<number> {
    const rows = await env.influx.query(`SELECT count(master_wh) FROM site_day WHERE site = ${quoteString(site.id)} AND period = 'valley'`).catch(() => []);
    return (rows[0]?.count as number) ?? 0;
  }
});

describe('settle requests (real Redis and InfluxDB)', () => {
  let env: TestEnv;
  let ctx: WorkerContext;
  beforeAll(async () => {
    env = await testEnv('settlereq');
    ctx = testContext(env, [site], { now: zone.midnight('2026-10-03') + 20 * 60_000 });
    await env.influx.write(readingLines(site.id, syntheticReadings(site, FROM, 3, 15 * 60_000)));
  });
  afterAll(async () => {
    await closeQueues(ctx.queues);
    await env.cleanup();
  });

  it('keeps a request made again while its day was being settled, and joins distinct reasons', async () => {
    await requestResettlement(ctx, site.id, FROM, 'first');
    const [seen] = await pendingSettlements(ctx, site.id);
    await requestResettlement(ctx, site.id, FROM, 'second');
    expect(await completeSettlement(ctx, site.id, seen)).toBe(false);
    const [again] = await pendingSettlements(ctx, site.id);
    expect(again.reason).toBe('first; second');
    expect(await completeSettlement(ctx, site.id, again)).toBe(true);
    expect(await pendingSettlements(ctx, site.id)).toEqual([]);
  });

  it('leaves a requested day that is not due yet for later, and asks for one job however many requests', async () => {
    await requestResettlements(ctx, site.id, ['2026-10-02', '2026-10-03'], 'import of x.csv');
    await requestResettlement(ctx, site.id, '2026-10-01', 'late');
    expect(await ctx.queues.settlement.getJobs(['waiting', 'prioritized', 'delayed'])).toHaveLength(1);
    const r = await processSettlement(ctx, { site: site.id });
    // 10-01 and 10-02 are due (settled for the first time); 10-03 is today: still asked for.
    expect(r.map((x) => x.day)).toEqual(['2026-10-01', '2026-10-02']);
    expect((await pendingSettlements(ctx, site.id)).map((x) => x.day)).toEqual(['2026-10-03']);
    expect(await env.redis.exists(redisKeys(ctx.keyPrefix, site.id).settleLock)).toBe(0);
  });
});

async function until(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`${what}: not done within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
