import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Point } from '@influxdata/influxdb-client';
import { createRedis, deleteMatching } from '../../lib/redis.ts';
import type { RedisClient } from '../../lib/redis.ts';
import { parseSiteYaml } from '../../core/site/index.ts';
import type { Site } from '../../core/site/index.ts';
import { chargeFen, priceMicro } from '../../core/units.ts';
import { InfluxV1 } from '../../influx/client.ts';
import { F, M, T } from '../../influx/schema.ts';
import { recordPayment } from '../../workers/payments.ts';
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
  const p = new Point(M.charge).tag(T.site, site).tag(T.account, account).tag(T.kind, kind).tag(T.period, period).tag(T.rev, String(rev));
  if (pool) p.tag(T.pool, pool);
  p.intField(F.wh, wh).intField(F.fen, chargeFen(wh, priceMicro(PRICES[period]))).stringField(F.price, PRICES[period]);
  if (reason) p.stringField(F.reason, reason);
  return p.timestamp(time).toLineProtocol()!;
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
    lines.push(
      new Point(M.siteDay).tag(T.site, site.id).tag(T.period, 'peak').intField(F.masterWh, master).intField(F.tenantWh, 150_000).intField(F.commonWh, 40_000).intField(F.lossWh, master - 190_000).intField(F.lossAllocatedWh, Math.min(master - 190_000, Math.floor(master * 0.03))).intField(F.lossAbnormalWh, Math.max(0, master - 190_000 - Math.floor(master * 0.03))).floatField(F.lossNormalRate, 0.03).timestamp(t).toLineProtocol()!,
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
    lines.push(new Point(M.touBucket).tag(T.site, site.id).tag(T.meter, 'T101').tag(T.period, period).tag(T.role, 'tenant').tag(T.account, 'A101').intField(F.wh, h < 7 ? 250 : 900).timestamp(t).toLineProtocol()!);
  }
  // Yesterday too, for usage charts and advice.
  for (let t = today - 86_400_000; t < today; t += 15 * 60_000) {
    const h = (t - today + 86_400_000) / 3_600_000;
    const period = h < 7 || h >= 23 ? 'valley' : h < 8 || (h >= 11 && h < 18) ? 'flat' : 'peak';
    lines.push(new Point(M.touBucket).tag(T.site, site.id).tag(T.meter, 'T101').tag(T.period, period).tag(T.role, 'tenant').tag(T.account, 'A101').intField(F.wh, period === 'valley' ? 250 : 800).timestamp(t).toLineProtocol()!);
  }
  // Power now: T101 draws 3.6 kW.
  lines.push(new Point(M.reading).tag(T.site, site.id).tag(T.meter, 'T101').intField(F.wh, 12_345_678).floatField(F.w, 3600).timestamp(now - 60_000).toLineProtocol()!);
  lines.push(new Point(M.reading).tag(T.site, site.id).tag(T.meter, 'T103').intField(F.wh, 5_000_000).floatField(F.w, 12000).timestamp(now - 120_000).toLineProtocol()!);
  lines.push(new Point(M.reading).tag(T.site, site.id).tag(T.meter, 'M0').intField(F.wh, 99_345_678).floatField(F.w, 52000).timestamp(now - 60_000).toLineProtocol()!);
  // Live balance for A101 from the balance worker; A102 and A103 have none (settled fallback).
  lines.push(new Point(M.balance).tag(T.site, site.id).tag(T.account, 'A101').intField(F.balanceFen, 41_235).intField(F.costRateFenH, 379).floatField(F.w, 3600).floatField(F.price, 1.0532).stringField(F.periodNow, 'peak').floatField(F.hoursLeft, 52.25).intField(F.lowBalanceFen, 10_000).timestamp(now - 30_000).toLineProtocol()!);
  // Events: an alert for A102, a quality flag on T103.
  lines.push(new Point(M.event).tag(T.site, site.id).tag(T.kind, 'low_balance').tag(T.account, 'A102').stringField(F.detail, 'balance 12.00 below 50.00').floatField(F.value, 12).timestamp(now - 3_600_000).toLineProtocol()!);
  lines.push(new Point(M.event).tag(T.site, site.id).tag(T.kind, 'spike').tag(T.meter, 'T103').stringField(F.detail, 'implied 450 kW > max_kw 300').floatField(F.value, 450).timestamp(localMidnight('2026-10-20', tz) + 3_600_000).toLineProtocol()!);
  lines.push(new Point(M.meterHealth).tag(T.site, site.id).tag(T.meter, 'T101').booleanField(F.ok, true).intField(F.errors, 0).intField(F.consecutiveErrors, 0).floatField(F.latencyMs, 42).stringField(F.lastError, '').timestamp(now - 60_000).toLineProtocol()!);
  lines.push(new Point(M.meterHealth).tag(T.site, site.id).tag(T.meter, 'T102').booleanField(F.ok, false).intField(F.errors, 12).intField(F.consecutiveErrors, 5).floatField(F.latencyMs, 2000).stringField(F.lastError, 'timeout').timestamp(now - 60_000).toLineProtocol()!);
  await influx.write(lines);

  const pay = { site, influx, redis, keyPrefix: workersPrefix };
  await recordPayment(pay, { account: 'A101', fen: 200_000, reference: 'BANK-0001', time: Date.parse('2026-10-02T09:00:00+08:00') });
  await recordPayment(pay, { account: 'A101', fen: 50_000, reference: 'BANK-0002', time: Date.parse('2026-11-03T09:00:00+08:00') });
  await recordPayment(pay, { account: 'A102', fen: 30_000, reference: 'BANK-0003', time: Date.parse('2026-10-15T12:00:00+08:00') });
}
