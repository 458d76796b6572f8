import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { addDays, computeBillRun, moneyText, zoneOf } from '../core/index.ts';
import type { BillRun, PaymentRow } from '../core/index.ts';
import type { InfluxV1 } from '../influx/client.ts';
import { InfluxError, quoteString } from '../influx/client.ts';
import { processBalance } from './balance.ts';
import { loadPayments, recordPayment } from './payments.ts';
import type { PaymentDeps } from './payments.ts';
import { JOB_OPTS, openQueues, closeQueues } from './queues.ts';
import type { Queues } from './queues.ts';
import { startWorkers } from './start.ts';
import type { RunningWorkers } from './start.ts';
import { liveBill } from './statement.ts';
import { SITE_YAML, testEnv, testSite } from './testing/env.ts';
import type { TestEnv } from './testing/env.ts';
import { readingLines, syntheticReadings } from './testing/month.ts';
import { faultProxy } from '../test/fault-proxy.ts';
import { privateInflux, privateRedis } from '../test/private-servers.ts';
import type { PrivateServer } from '../test/private-servers.ts';

/**
 * Exactly-once effect (issue 4): kill a worker mid-settlement, crash Redis, stop InfluxDB
 * for a while. Afterwards the live bill and balances equal the offline computation, no day
 * is charged twice (no adjustment revisions appear) and no acknowledged payment is lost.
 * Servers that are killed are private (.run/tmp), never the shared ones.
 */

const site = testSite();
const zone = zoneOf(site.timezone);
const FROM = '2026-10-01';
const DAYS = 14;
const TO = addDays(FROM, DAYS);
const readings = syntheticReadings(site, FROM, DAYS, 5 * 60_000, 7);
const NOW = zone.midnight(TO) + 20 * 60_000;
const payments: PaymentRow[] = Array.from({ length: 12 }, (_, i) => ({
  time: zone.midnight(addDays(FROM, i)) + 3_600_000 * (i + 1),
  account: site.accounts[i % site.accounts.length].id,
  fen: 50_00 + i * 1_01,
  reference: `PAY-${i}`,
}));
// Fast failover for the test: the BullMQ job lock and the settlement lock expire in 2 s.
const FAST = { lockDurationMs: 2000, tuning: { settleLockMs: 2000 } };

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
});

async function until<T>(f: () => Promise<T>, ok: (v: T) => boolean, ms: number, what: string, queues?: Queues): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined && ok(v)) return v;
    if (Date.now() > end) {
      const failed = queues ? (await queues.settlement.getJobs(['failed'])).map((j) => j.failedReason) : [];
      throw new Error(`timed out: ${what} (last ${JSON.stringify(v)}; failed jobs: ${JSON.stringify(failed)})`);
    }
    await new Promise((r) => setTimeout(r, 40));
  }
}

async function settledCount(influx: InfluxV1): Promise<number> {
  // Valley occurs on every day of the test site: one point per settled day.
  return (await influx.query(`SELECT master_wh FROM site_day WHERE site = ${quoteString(site.id)} AND period = 'valley'`)).length;
}

async function revisions(influx: InfluxV1): Promise<number> {
  const rows = await influx.query(`SELECT count(fen) FROM charge WHERE site = ${quoteString(site.id)} AND rev != '0'`);
  return (rows[0]?.count as number) ?? 0;
}

/** The record-until-acknowledged loop a client runs: every error is retried. */
async function payAll(deps: PaymentDeps, list: readonly PaymentRow[], between?: (i: number) => Promise<void>): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < list.length; i++) {
    await between?.(i);
    for (;;) {
      try {
        out.push((await recordPayment(deps, list[i])).status);
        break;
      } catch (err) {
        if (err instanceof InfluxError && err.status === 400) throw err; // "database not found" while influxd restarts: retry
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
  return out;
}

const same = (b: BillRun) => JSON.stringify({ ...b, quality: undefined }, null, 2);

async function expectOffline(env: { influx: InfluxV1 }): Promise<void> {
  const offline = computeBillRun(site, readings, payments, FROM, TO);
  expect(same(await liveBill(env.influx, site, FROM, TO))).toBe(same(offline));
  expect(await revisions(env.influx)).toBe(0); // nothing was charged twice and corrected
  expect(await loadPayments(env.influx, site.id)).toHaveLength(payments.length);
}

async function tick(queues: Queues, id: string): Promise<void> {
  // Fixed 1 s backoff and many attempts: a slow influxd restart must not exhaust them.
  await queues.settlement.add('settle', { site: site.id }, { ...JOB_OPTS, attempts: 200, backoff: { type: 'fixed', delay: 1000 }, jobId: id });
}

function spawnWorker(env: TestEnv, redisUrl: string, influxUrl = env.influx.url): { proc: ChildProcess; ready: Promise<void> } {
  const file = fileURLToPath(new URL('./testing/worker-proc.ts', import.meta.url));
  // node --import tsx: one process, so SIGKILL hits the worker itself (npx tsx would fork).
  const proc = spawn(process.execPath, ['--import', 'tsx', file], {
    env: {
      ...process.env,
      SUBMETER_TEST_WORKER: JSON.stringify({ siteYaml: SITE_YAML, redisUrl, influxUrl, db: env.influx.db, queuePrefix: env.prefix, keyPrefix: env.prefix, now: NOW, ...FAST }),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const ready = new Promise<void>((resolve, reject) => {
    proc.stdout!.on('data', (b: Buffer) => b.toString().includes('ready') && resolve());
    proc.once('exit', (code) => reject(new Error(`worker exited early (${code})`)));
  });
  return { proc, ready };
}

describe('exactly-once effect under crashes (real servers; killed ones private)', () => {
  it('SIGKILL a worker mid-settlement, restart it: the month equals the offline bill, no double charge', async () => {
    const env = await testEnv('crashk');
    cleanups.push(() => env.cleanup());
    await env.influx.write(readingLines(site.id, readings));
    await payAll({ site, influx: env.influx, redis: env.redis, keyPrefix: env.prefix }, payments);
    const queues = openQueues(env.redis, env.prefix);
    cleanups.push(() => closeQueues(queues));

    // The first worker reaches InfluxDB through a proxy that holds every write after its
    // first day's charges: it is stuck in its second day when it is killed, however fast
    // it runs and however late this process looks (it once could settle the whole month
    // before a starved test noticed the first day).
    const proxy = await faultProxy(env.influx.url);
    cleanups.push(() => proxy.close());
    proxy.holdWritesAfter((body) => body.includes('charge,'));
    const w1 = spawnWorker(env, process.env.SUBMETER_REDIS_URL ?? 'redis://127.0.0.1:6389', proxy.url);
    cleanups.push(async () => w1.proc.kill('SIGKILL'));
    await w1.ready;
    await tick(queues, 'tick-1');
    await until(async () => proxy.held(), (n) => n >= 1, 60_000, 'the second day held');
    const gone = new Promise((r) => w1.proc.once('exit', r));
    w1.proc.kill('SIGKILL');
    await gone;
    expect(await settledCount(env.influx)).toBe(1); // it really died mid-month
    // What it had sent lands after its death, like writes in flight when a process dies.
    await proxy.release();

    const w2 = spawnWorker(env, process.env.SUBMETER_REDIS_URL ?? 'redis://127.0.0.1:6389');
    cleanups.push(async () => w2.proc.kill('SIGKILL'));
    await w2.ready;
    // The killed job is stalled: BullMQ hands it to the new worker once its lock expires.
    await until(() => settledCount(env.influx), (n) => n === DAYS, 90_000, 'all days settled after restart', queues);
    await until(async () => (await queues.settlement.getJobCounts('active', 'waiting', 'delayed')) as Record<string, number>, (c) => c.active + c.waiting + c.delayed === 0, 60_000, 'queue drained');
    await expectOffline(env);
  }, 150_000);

  it('Redis crashes (SIGKILL, AOF everysec) during payments and settlement: no lost payment, balances = offline', async () => {
    const redis: PrivateServer = await privateRedis();
    cleanups.push(() => redis.destroy());
    const env = await testEnv('crashr', { redis: redis.url });
    cleanups.push(() => env.cleanup());
    await env.influx.write(readingLines(site.id, readings));
    const running: RunningWorkers = await startWorkers({
      sites: [site],
      redisUrl: redis.url,
      influx: env.influx,
      queuePrefix: env.prefix,
      keyPrefix: env.prefix,
      queues: ['settlement'],
      schedulers: false,
      now: () => NOW,
      ...FAST,
    });
    cleanups.push(() => running.close());
    await tick(running.queues, 'tick-1');
    const deps = { site, influx: env.influx, redis: env.redis, keyPrefix: env.prefix };
    const first = await payAll(deps, payments, async (i) => {
      if (i !== 6) return;
      await redis.stop('SIGKILL');
      setTimeout(() => void redis.start(), 1000);
    });
    expect(first.filter((s) => s === 'recorded').length).toBeGreaterThanOrEqual(payments.length - 1);
    // The catch-up tick (hourly in production) after the crash: whatever the crash lost.
    await tick(running.queues, 'tick-2');
    await until(() => settledCount(env.influx), (n) => n === DAYS, 90_000, 'all days settled', running.queues);
    // The same payments again (a client that never heard back): all duplicates.
    expect(await payAll(deps, payments)).toEqual(payments.map(() => 'duplicate'));
    await expectOffline(env);
    const ctx = running.ctx;
    const live = await processBalance(ctx, { site: site.id });
    const offline = computeBillRun(site, readings, payments, FROM, TO);
    for (const a of offline.accounts) expect(moneyText(live.find((x) => x.account === a.account)!.balanceFen)).toBe(a.closing_balance);
  }, 150_000);

  it('InfluxDB stopped for a while mid-settlement: jobs retry with backoff, payments refuse then succeed, month = offline', async () => {
    const influxd: PrivateServer = await privateInflux();
    cleanups.push(() => influxd.destroy());
    const env = await testEnv('crashi', { influx: influxd.url });
    cleanups.push(() => env.cleanup());
    await env.influx.write(readingLines(site.id, readings));
    const deps = { site, influx: env.influx, redis: env.redis, keyPrefix: env.prefix };
    await payAll(deps, payments.slice(0, 6));
    const running = await startWorkers({
      sites: [site],
      redisUrl: process.env.SUBMETER_REDIS_URL,
      influx: env.influx,
      queuePrefix: env.prefix,
      keyPrefix: env.prefix,
      queues: ['settlement'],
      schedulers: false,
      now: () => NOW,
      ...FAST,
    });
    cleanups.push(() => running.close());
    await tick(running.queues, 'tick-1');
    await until(() => settledCount(env.influx), (n) => n >= 1, 60_000, 'settlement started');
    await influxd.stop('SIGTERM');
    // While it is away a payment is not acknowledged, and nothing half-records it.
    const err = await recordPayment(deps, payments[6]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InfluxError);
    expect((err as InfluxError).retryable).toBe(true);
    await new Promise((r) => setTimeout(r, 1500));
    await influxd.start();
    await payAll(deps, payments.slice(6));
    await until(() => settledCount(env.influx), (n) => n === DAYS, 90_000, 'all days settled after InfluxDB came back', running.queues);
    await expectOffline(env);
  }, 150_000);
});
