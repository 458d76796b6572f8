import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addDays, computeBillRun, zoneOf } from '../core/index.ts';
import { InfluxV1, quoteString } from '../influx/client.ts';
import { chargeLine } from '../influx/settlement-lines.ts';
import { M } from '../influx/schema.ts';
import { redisKeys } from './keys.ts';
import { READING_FIELDS } from './reading-series.ts';
import { closeQueues } from './queues.ts';
import { processSettlement, settleSiteDay, SettlementBusyError, SettlementInFlightError, SettlementLockLostError } from './settlement.ts';
import { liveBill } from './statement.ts';
import { testContext, testEnv, testSite } from './testing/env.ts';
import type { TestEnv } from './testing/env.ts';
import { readingLines, syntheticReadings } from './testing/month.ts';
import type { WorkerContext } from './context.ts';

/**
 * One settlement run of a site at a time, for as long as it runs (workers/settle-lock.ts).
 * Two runs of a day at once charged twice: InfluxDB shows a write point by point and field
 * by field, so a run reading while the other's write lands diffs against half of it
 * (workers/crash.test.ts once saw a day's elevator kWh charged twice with its fen once).
 * The lock used to be renewed only between days, so a day slower than the lock's expiry
 * let a second run in. An InfluxDB that answers slowly is the real client with a delay in
 * front of its reads (the server itself is the shared one).
 */

const site = testSite();
const zone = zoneOf(site.timezone);
const FROM = '2026-10-01';
const DAYS = 2;
const TO = addDays(FROM, DAYS);
const readings = syntheticReadings(site, FROM, DAYS, 5 * 60_000, 3);
const NOW = zone.midnight(TO) + 20 * 60_000;
// A day's reading window answers later than the lock's expiry: the old lock, renewed only
// between days, expired in every day.
const LOCK_MS = 3000;
const SLOW_MS = 3500;

/** The real client whose raw reads (the settlement's reading window) answer `delayMs` late. */
class SlowInflux extends InfluxV1 {
  delayMs = SLOW_MS;
  private reads = 0;
  private firstRead?: () => void;
  readonly reading = new Promise<void>((r) => (this.firstRead = r));
  override async queryRaw(q: string, opts?: Parameters<InfluxV1['queryRaw']>[1]): Promise<Awaited<ReturnType<InfluxV1['queryRaw']>>> {
    // The day's window of readings (with the tariff registers since billing amendment 12),
    // not the single readings at its edges (LIMIT 1).
    if (q.startsWith(`SELECT ${READING_FIELDS} FROM ${M.reading}`) && !q.includes('LIMIT')) {
      this.reads++;
      this.firstRead?.();
      await new Promise((r) => setTimeout(r, this.delayMs));
    }
    return super.queryRaw(q, opts);
  }
}

let env: TestEnv;
beforeAll(async () => {
  env = await testEnv('settlelock');
});
afterAll(async () => env?.cleanup());

async function fresh(tag: string): Promise<{ ctx: WorkerContext; slow: WorkerContext & { influx: SlowInflux }; close(): Promise<void> }> {
  // Each case on its own database and site lock.
  const influx = new InfluxV1({ url: env.influx.url, db: `${env.influx.db}_${tag}`, timeoutMs: 10_000 });
  await influx.createDatabase();
  await influx.write(readingLines(site.id, readings));
  const ctx = { ...testContext(env, [site], { now: NOW }, { settleLockMs: LOCK_MS }), influx, keyPrefix: `${env.prefix}-${tag}` };
  const slowInflux = new SlowInflux({ url: influx.url, db: influx.db, timeoutMs: 10_000 });
  return {
    ctx,
    slow: { ...ctx, influx: slowInflux },
    async close() {
      await closeQueues(ctx.queues);
      await influx.dropDatabase();
    },
  };
}

async function chargeRows(ctx: WorkerContext): Promise<{ rev: string; wh: number; fen: number }[]> {
  return (await ctx.influx.query(`SELECT wh, fen FROM charge WHERE site = ${quoteString(site.id)} GROUP BY rev`)) as never;
}

const same = (b: object) => JSON.stringify({ ...b, quality: undefined }, null, 2);

describe('the settlement lock lasts as long as the run', () => {
  it('a day slower than the lock expiry: every other run of the site is refused until it ends; settled once', async () => {
    const { ctx, slow, close } = await fresh('slow');
    try {
      const t0 = Date.now();
      const first = processSettlement(slow, { site: site.id });
      let ended = false;
      void first.finally(() => (ended = true)).catch(() => undefined);
      const refusals: string[] = [];
      // Another worker asks again and again (the job's backoff) while the slow run works.
      while (!ended) {
        const r = await processSettlement(ctx, { site: site.id }).then(
          (v) => `ran: ${JSON.stringify(v.map((d) => [d.day, d.outcome]))}`,
          (e: unknown) => (e instanceof SettlementBusyError ? 'busy' : `error: ${(e as Error).message}`),
        );
        refusals.push(r);
        if (r !== 'busy') break;
        await new Promise((res) => setTimeout(res, 200));
      }
      const results = await first;
      const took = Date.now() - t0;
      // The case proves something only if each day outlived the lock's expiry.
      expect(took).toBeGreaterThan(DAYS * SLOW_MS);
      expect(refusals.length).toBeGreaterThan(3);
      expect(new Set(refusals)).toEqual(new Set(['busy']));
      expect(results.map((d) => [d.day, d.outcome])).toEqual([
        [FROM, 'settled'],
        [addDays(FROM, 1), 'settled'],
      ]);
      expect((await chargeRows(ctx)).every((r) => r.rev === '0')).toBe(true);
      expect(same(await liveBill(ctx.influx, site, FROM, TO))).toBe(same(computeBillRun(site, readings, [], FROM, TO)));
      expect(await env.redis.exists(redisKeys(ctx.keyPrefix, site.id).settleLock)).toBe(0);
    } finally {
      await close();
    }
  }, 60_000);

  it('a run whose lock was lost (Redis forgot it, another run took it) stops before writing a charge', async () => {
    const { ctx, slow, close } = await fresh('lost');
    try {
      const key = redisKeys(ctx.keyPrefix, site.id).settleLock;
      const first = processSettlement(slow, { site: site.id });
      await slow.influx.reading;
      // While it reads its first day, the lock becomes another run's.
      await env.redis.set(key, 'another-run', 'PX', 60_000);
      await expect(first).rejects.toBeInstanceOf(SettlementLockLostError);
      expect(await chargeRows(ctx)).toEqual([]);
      // Nor the day's statement facts and buckets: its view may be older than the holder's.
      expect(await ctx.influx.query(`SELECT count(wh) FROM meter_day, tou_bucket WHERE site = ${quoteString(site.id)}`)).toEqual([]);
      expect(await env.redis.get(key)).toBe('another-run'); // not released by the run that lost it
      // Once the other run is done, the next settles every day once.
      await env.redis.del(key);
      expect((await processSettlement(ctx, { site: site.id })).map((d) => d.outcome)).toEqual(['settled', 'settled']);
      expect((await chargeRows(ctx)).every((r) => r.rev === '0')).toBe(true);
      expect(same(await liveBill(ctx.influx, site, FROM, TO))).toBe(same(computeBillRun(site, readings, [], FROM, TO)));
    } finally {
      await close();
    }
  }, 60_000);

  it('a stored charge point showing only some of its fields (a write still landing) is not diffed against', async () => {
    const { ctx, close } = await fresh('half');
    try {
      const offline = computeBillRun(site, readings, [], FROM, addDays(FROM, 1));
      const line = offline.accounts[0].lines.find((l) => l.kind === 'common')!;
      const fen = Math.round(Number(line.amount) * 100);
      // What a reader sees of a point whose fen and price have landed and whose wh has not.
      const half = chargeLine(site.id, zone.midnight(FROM), { account: offline.accounts[0].account, kind: 'common', pool: line.pool, period: line.period, rev: 0, wh: 1, fen, price: line.price }).replace(/,wh=1i /, ' ');
      expect(half).not.toMatch(/wh=/);
      await ctx.influx.write([half]);
      await expect(settleSiteDay(ctx, site, FROM)).rejects.toBeInstanceOf(SettlementInFlightError);
      // Nothing was written on that view: no adjustment charging the line's kWh again.
      expect((await chargeRows(ctx)).filter((r) => r.rev !== '0')).toEqual([]);
      expect(await chargeRows(ctx)).toHaveLength(1);
    } finally {
      await close();
    }
  }, 60_000);
});
