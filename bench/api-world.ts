import { randomBytes } from 'node:crypto';
import { chargeFen, parseSiteYaml, priceMicro, zoneOf } from '../core/index.ts';
import type { Site } from '../core/index.ts';
import { InfluxV1 } from '../influx/client.ts';
import { bucketLine } from '../influx/bucket-lines.ts';
import { eventLine } from '../influx/event-lines.ts';
import { paymentLine } from '../influx/payment-lines.ts';
import { sampleLine } from '../influx/lines.ts';
import { accountDayLine, chargeLine, meterCellLine, meterDayLine, shareBasisLine, siteDayLine } from '../influx/settlement-lines.ts';
import { createRedis, deleteMatching } from '../lib/redis.ts';
import type { RedisClient } from '../lib/redis.ts';
import { processBalance } from '../workers/balance.ts';
import { closeQueues } from '../workers/queues.ts';
import { testContext } from '../workers/testing/env.ts';
import { RedisTokenStore } from '../api/auth/token-store.ts';
import { BENCH_PRICES, benchSiteYaml } from './bench-site.ts';

/**
 * The API benchmark's many-accounts world (issue 15): a site of `accounts` tenants, each
 * with a meter, two pools and the loss, settled for 2026-11-01..14 (charge lines, site
 * summaries and the statement's facts in the shapes the settlement writes), today's
 * 15-minute buckets and each meter's last two readings, a payment and a low-balance alert
 * per account, then one run of the real balance
 * job at NOW (its points and the site's last results in Redis), and a tenant token per
 * account. Its own InfluxDB database and Redis prefixes on the real servers.
 */
export const NOW = Date.parse('2026-11-15T10:30:00+08:00');
const PRICES = BENCH_PRICES;

export interface ApiWorld {
  readonly site: Site;
  readonly influx: InfluxV1;
  readonly redis: RedisClient;
  readonly apiPrefix: string;
  readonly workersPrefix: string;
  /** Account id -> tenant bearer token. */
  readonly tokens: Map<string, string>;
  cleanup(): Promise<void>;
}

export function manyAccountsSite(n: number): Site {
  return parseSiteYaml(benchSiteYaml(n, 'many', { name: 'Many Tenants', hall: true, opening: '300.00', lowBalance: '50.00' }), 'many.yaml');
}

export async function createApiWorld(accounts: number, log: (s: string) => void = () => undefined): Promise<ApiWorld> {
  const id = randomBytes(4).toString('hex');
  const site = manyAccountsSite(accounts);
  const zone = zoneOf(site.timezone);
  const influx = new InfluxV1({ url: process.env.SUBMETER_INFLUX_URL ?? 'http://127.0.0.1:8096', db: `t_apiworld_${id}`, timeoutMs: 60_000 });
  await influx.createDatabase();
  const redis = createRedis(process.env.SUBMETER_REDIS_URL ?? 'redis://127.0.0.1:6389', { maxRetriesPerRequest: 3 });
  const apiPrefix = `t-apiworld-${id}:`;
  const workersPrefix = `t-apiworld-${id}-w`;
  const tenants = site.accounts.map((a) => ({ account: a.id, meter: site.meters.find((m) => m.account === a.id)!.id }));
  const lines: string[] = [];
  const flush = async (force = false) => {
    if (lines.length >= 20_000 || (force && lines.length)) await influx.write(lines.splice(0, lines.length));
  };
  const charge = (t: number, account: string, kind: string, period: keyof typeof PRICES, wh: number, pool?: string) =>
    chargeLine(site.id, t, { account, kind, ...(pool ? { pool } : {}), period, rev: 0, wh, fen: chargeFen(wh, priceMicro(PRICES[period])), price: PRICES[period] });
  for (let d = 1; d <= 14; d++) {
    const date = `2026-11-${String(d).padStart(2, '0')}`;
    const t = zone.midnight(date);
    let tenantWh = 0;
    for (const [k, x] of tenants.entries()) {
      const own = { valley: 8_000 + (k % 13) * 300, peak: 6_000 + (k % 7) * 500, flat: 9_000 + (k % 11) * 400 };
      for (const p of ['valley', 'peak', 'flat'] as const) lines.push(charge(t, x.account, 'own', p, own[p]));
      lines.push(charge(t, x.account, 'common', 'peak', 120 + (k % 5), 'lifts'), charge(t, x.account, 'common', 'flat', 90 + (k % 3), 'hall'), charge(t, x.account, 'loss', 'peak', 300 + (k % 9)));
      const wh = own.valley + own.peak + own.flat;
      tenantWh += wh;
      lines.push(meterDayLine(site.id, t, { meter: x.meter, wh, startWh: 1_000_000 + (d - 1) * wh, startMs: t, startEstimated: false, endWh: 1_000_000 + d * wh, endMs: zone.midnight(date) + 86_400_000, endEstimated: false }));
      for (const p of ['valley', 'peak', 'flat'] as const) lines.push(meterCellLine(site.id, t, { meter: x.meter, period: p, wh: own[p], gapWh: 0 }));
      lines.push(accountDayLine(site.id, t, { account: x.account, areaWeight: 20 + (k % 50), pools: ['hall', 'lifts'] }));
      await flush();
    }
    lines.push(
      shareBasisLine(site.id, t, { kind: 'common', pool: 'lifts', period: 'peak', wh: 122 * tenants.length, basis: 'area', members: tenants.length, weightTotal: 44_500 }),
      shareBasisLine(site.id, t, { kind: 'common', pool: 'hall', period: 'flat', wh: 91 * tenants.length, basis: 'consumption', members: tenants.length, weightTotal: tenantWh }),
      shareBasisLine(site.id, t, { kind: 'loss', period: 'peak', wh: 304 * tenants.length, basis: 'consumption', members: tenants.length, weightTotal: tenantWh }),
    );
    for (const p of ['valley', 'peak', 'flat'] as const) lines.push(siteDayLine(site.id, t, { period: p, masterWh: tenantWh, tenantWh: Math.floor(tenantWh * 0.9), commonWh: Math.floor(tenantWh * 0.05), lossWh: tenantWh - Math.floor(tenantWh * 0.9) - Math.floor(tenantWh * 0.05), lossAllocatedWh: 0, lossAbnormalWh: 0 }, '0.03'));
    log(`seeded ${date}`);
  }
  // Today: every meter's buckets up to now and its last two readings (power now).
  const today = zone.midnight('2026-11-15');
  for (const m of site.meters) {
    for (let t = today; t < NOW; t += 15 * 60_000) {
      const h = (t - today) / 3_600_000;
      lines.push(bucketLine(site.id, { meter: m.id, role: m.role, ...(m.account ? { account: m.account } : {}), period: h < 8 ? 'valley' : 'peak', start: t, wh: m.role === 'master' ? 300 * accounts : 300 }));
    }
    lines.push(sampleLine(site.id, { meter: m.id, time: NOW - 90_000, wh: 2_000_000 }), sampleLine(site.id, { meter: m.id, time: NOW - 30_000, wh: 2_000_020 }));
    await flush();
  }
  // A payment and a low-balance alert per account: the payments and alerts routes have rows to answer.
  for (const x of tenants) {
    lines.push(paymentLine(site.id, { account: x.account, reference: `BENCH-${x.account}`, fen: 20_000, time: zone.midnight('2026-11-05') + 36_000_000 }));
    lines.push(eventLine(site.id, { kind: 'low_balance', time: zone.midnight('2026-11-12') + 30_000_000, account: x.account, detail: 'balance 48.00 is below 50.00, about 40 h left', value: 48 }));
  }
  await flush(true);
  // The real balance job at NOW: points, and the site's last results in Redis.
  const ctx = testContext({ influx, redis, prefix: workersPrefix, cleanup: async () => undefined }, [site], { now: NOW });
  await processBalance(ctx, { site: site.id });
  await closeQueues(ctx.queues);
  const store = new RedisTokenStore(redis, apiPrefix);
  const tokens = new Map<string, string>();
  for (const a of site.accounts) tokens.set(a.id, (await store.create({ site: site.id, role: 'tenant', account: a.id })).token);
  log(`world ready: ${accounts} accounts, tokens, balances`);
  return {
    site,
    influx,
    redis,
    apiPrefix,
    workersPrefix,
    tokens,
    async cleanup() {
      await influx.dropDatabase().catch(() => undefined);
      for (const pattern of [`${apiPrefix}*`, `${workersPrefix}:*`]) await deleteMatching(redis, pattern);
      redis.disconnect();
    },
  };
}
