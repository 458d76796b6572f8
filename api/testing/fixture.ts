import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createRedis, deleteMatching } from '../../lib/redis.ts';
import type { RedisClient } from '../../lib/redis.ts';
import { parseSiteYaml, chargeFen, priceMicro } from '../../core/index.ts';
import type { Site } from '../../core/index.ts';
import { InfluxV1 } from '../../influx/client.ts';
import { balanceLine } from '../../influx/balance-lines.ts';
import { bucketLine } from '../../influx/bucket-lines.ts';
import { eventLine } from '../../influx/event-lines.ts';
import { healthLine, sampleLine } from '../../influx/lines.ts';
import { chargeLine, siteDayLine } from '../../influx/settlement-lines.ts';
import { recordPayment } from '../../workers/index.ts';
import { processBalance } from '../../workers/balance.ts';
import { closeQueues } from '../../workers/queues.ts';
import { testContext } from '../../workers/testing/env.ts';
import { RedisTokenStore } from '../auth/token-store.ts';
import { localMidnight } from '../local-time.ts';

/**
 * A seeded world for the API's tests, browser test and benchmark: the example site, its
 * own random InfluxDB database and Redis key prefix on the real servers, and series in
 * the shapes influx/schema.ts documents (charges with one adjustment, payments through the
 * workers' recordPayment, a live balance for A101 only, buckets, readings, events).
 */
export const SITE_FILE = fileURLToPath(new URL('../../examples/site.example.yaml', import.meta.url));
/** 2026-11-15 10:30 local (peak in the example's November schedule). */
export const NOW = Date.parse('2026-11-15T10:30:00+08:00');

export interface Fixture {
  readonly site: Site;
  readonly influx: InfluxV1;
  readonly redis: RedisClient;
  readonly prefix: string;
  readonly workersPrefix: string;
  cleanup(): Promise<void>;
}

/**
 * What the tenant routes' tests start from: the balance job's run at NOW on the fixture (its
 * points and the site's live entries in Redis, as the API reads them) and a tenant token per
 * account. Returns each account's balance from that run, the tokens and their store.
 */
export async function liveWithTenantTokens(fx: Fixture): Promise<{ balances: Map<string, number>; tokens: Map<string, string>; store: RedisTokenStore }> {
  const ctx = testContext({ influx: fx.influx, redis: fx.redis, prefix: fx.workersPrefix, cleanup: async () => undefined }, [fx.site], { now: NOW });
  const balances = new Map<string, number>();
  try {
    for (const a of await processBalance(ctx, { site: fx.site.id })) balances.set(a.account, a.balanceFen);
  } finally {
    await closeQueues(ctx.queues);
  }
  const store = new RedisTokenStore(fx.redis, fx.prefix);
  const tokens = new Map<string, string>();
  for (const a of fx.site.accounts) tokens.set(a.id, (await store.create({ site: fx.site.id, role: 'tenant', account: a.id })).token);
  return { balances, tokens, store };
}

const PRICES = { sharp: '1.263840', peak: '1.053200', flat: '0.702100', valley: '0.351100' } as const;

export async function createFixture(tag = 'api'): Promise<Fixture> {
  const id = randomBytes(4).toString('hex');
  const influx = new InfluxV1({ url: process.env.SUBMETER_INFLUX_URL ?? 'http://127.0.0.1:8096', db: `t_${tag}_${id}`, timeoutMs: 10_000 });
  await influx.createDatabase();
  const redis = createRedis(process.env.SUBMETER_REDIS_URL ?? 'redis://127.0.0.1:6389', { maxRetriesPerRequest: 3 });
  const prefix = `t-${tag}-${id}:`;
  const workersPrefix = `t-${tag}-${id}-w`;
  const site = parseSiteYaml(readFileSync(SITE_FILE, 'utf8'), SITE_FILE);
  await seed(site, influx, redis, workersPrefix);
  return {
    site,
    influx,
    redis,
    prefix,
    workersPrefix,
    async cleanup() {
      await influx.dropDatabase().catch(() => undefined);
      for (const pattern of [`${prefix}*`, `${workersPrefix}:*`]) await deleteMatching(redis, pattern);
      redis.disconnect();
    },
  };
}

function charge(site: string, account: string, kind: string, period: keyof typeof PRICES, wh: number, time: number, pool = '', rev = 0, reason?: string): string {
  return chargeLine(site, time, { account, kind, ...(pool ? { pool } : {}), period, rev, wh, fen: chargeFen(wh, priceMicro(PRICES[period])), price: PRICES[period], ...(reason ? { reason } : {}) });
}

async function seed(site: Site, influx: InfluxV1, redis: RedisClient, workersPrefix: string): Promise<void> {
  const tz = site.timezone;
  const lines: string[] = [];
  // Settled days 2026-10-01 .. 2026-11-14: per account own energy in three periods, an
  // elevator share, a loss share; A102 uses the lobby pool too.
  for (let d = 0; d < 45; d++) {
    const date = new Date(Date.UTC(2026, 9, 1 + d)).toISOString().slice(0, 10);
    const t = localMidnight(date, tz);
    const k = (d % 7) + 1;
    for (const [i, a] of ['A101', 'A102', 'A103'].entries()) {
      const base = (i + 1) * 10_000;
      lines.push(charge(site.id, a, 'own', 'peak', base + 1000 * k, t));
      lines.push(charge(site.id, a, 'own', 'flat', base + 333 * k, t));
      lines.push(charge(site.id, a, 'own', 'valley', base / 2 + 7 * k, t));
      lines.push(charge(site.id, a, 'common', 'peak', 1200 + 10 * i, t, 'elevators'));
      if (a !== 'A103') lines.push(charge(site.id, a, 'common', 'flat', 800 + i, t, 'lobby'));
      lines.push(charge(site.id, a, 'loss', 'peak', 300 + i, t));
    }
    const master = 200_000 + 5000 * k;
    const cap = Math.floor((master * 3) / 100);
    lines.push(
      siteDayLine(site.id, t, { period: 'peak', masterWh: master, tenantWh: 150_000, commonWh: 40_000, lossWh: master - 190_000, lossAllocatedWh: Math.min(master - 190_000, cap), lossAbnormalWh: Math.max(0, master - 190_000 - cap) }, '0.03'),
    );
  }
  // A correction of 2026-10-10 (late readings), as the workers write it: rev 1, a delta.
  lines.push(charge(site.id, 'A101', 'own', 'peak', 2500, localMidnight('2026-10-10', tz), '', 1, 'late readings of T101 (spool drained)'));

  const now = NOW;
  const today = localMidnight('2026-11-15', tz);
  // Today's 15-minute buckets for T101 up to now: valley 00-07, flat 07-08, peak 08-10:30.
  for (let t = today; t < now; t += 15 * 60_000) {
    const h = (t - today) / 3_600_000;
    const period = h < 7 ? 'valley' : h < 8 ? 'flat' : 'peak';
    lines.push(bucketLine(site.id, { meter: 'T101', role: 'tenant', account: 'A101', period, start: t, wh: h < 7 ? 250 : 900 }));
  }
  // Yesterday too, for usage charts and advice.
  for (let t = today - 86_400_000; t < today; t += 15 * 60_000) {
    const h = (t - today + 86_400_000) / 3_600_000;
    const period = h < 7 || h >= 23 ? 'valley' : h < 8 || (h >= 11 && h < 18) ? 'flat' : 'peak';
    lines.push(bucketLine(site.id, { meter: 'T101', role: 'tenant', account: 'A101', period, start: t, wh: period === 'valley' ? 250 : 800 }));
  }
  // Power now: T101 draws 3.6 kW.
  lines.push(sampleLine(site.id, { meter: 'T101', time: now - 60_000, wh: 12_345_678, w: 3600 }));
  lines.push(sampleLine(site.id, { meter: 'T103', time: now - 420_000, wh: 4_999_000, w: 12000 }));
  lines.push(sampleLine(site.id, { meter: 'T103', time: now - 120_000, wh: 5_000_000, w: 12000 }));
  lines.push(sampleLine(site.id, { meter: 'M0', time: now - 60_000, wh: 99_345_678, w: 52000 }));
  // Live balance for A101 from the balance worker; A102 and A103 have none (computed by the API).
  lines.push(balanceLine(site.id, { account: 'A101', time: now - 30_000, balanceFen: 41_235, costRateFenH: 379, costTodayFen: 0, w: 3600, priceMicro: 1_053_200, periodNow: 'peak', hoursLeft: 52.25, lowBalanceFen: 10_000 }));
  // Events: an alert for A102, a quality flag on T103.
  lines.push(eventLine(site.id, { kind: 'low_balance', account: 'A102', detail: 'balance 12.00 below 50.00', value: 12, time: now - 3_600_000 }));
  lines.push(eventLine(site.id, { kind: 'spike', meter: 'T103', detail: 'implied 450 kW > max_kw 300', value: 450, time: localMidnight('2026-10-20', tz) + 3_600_000 }));
  lines.push(healthLine(site.id, { meter: 'T101', time: now - 60_000, ok: true, errors: 0, consecutiveErrors: 0, latencyMs: 42, lastError: '' }));
  lines.push(healthLine(site.id, { meter: 'T102', time: now - 60_000, ok: false, errors: 12, consecutiveErrors: 5, latencyMs: 2000, lastError: 'timeout' }));
  await influx.write(lines);

  const pay = { site, influx, redis, keyPrefix: workersPrefix };
  await recordPayment(pay, { account: 'A101', fen: 200_000, reference: 'BANK-0001', time: Date.parse('2026-10-02T09:00:00+08:00') });
  await recordPayment(pay, { account: 'A101', fen: 50_000, reference: 'BANK-0002', time: Date.parse('2026-11-03T09:00:00+08:00') });
  await recordPayment(pay, { account: 'A102', fen: 30_000, reference: 'BANK-0003', time: Date.parse('2026-10-15T12:00:00+08:00') });
}
