import { randomBytes } from 'node:crypto';
import { parseSiteYaml } from '../../core/index.ts';
import type { Site } from '../../core/index.ts';
import { InfluxV1 } from '../../influx/client.ts';
import { createRedis, deleteMatching } from '../../lib/redis.ts';
import type { RedisClient } from '../../lib/redis.ts';

/** Test isolation (style.md practice 7): each test gets its own InfluxDB database and Redis/BullMQ prefix on the real servers. */
export const REDIS_URL = process.env.SUBMETER_REDIS_URL ?? 'redis://127.0.0.1:6389';
export const INFLUX_URL = process.env.SUBMETER_INFLUX_URL ?? 'http://127.0.0.1:8096';

export interface TestEnv {
  readonly influx: InfluxV1;
  readonly redis: RedisClient;
  /** Random prefix for BullMQ queues and the workers' Redis keys. */
  readonly prefix: string;
  cleanup(): Promise<void>;
}

export async function testEnv(tag: string, urls: { redis?: string; influx?: string } = {}): Promise<TestEnv> {
  const id = randomBytes(4).toString('hex');
  const influx = new InfluxV1({ url: urls.influx ?? INFLUX_URL, db: `t_${tag}_${id}`, timeoutMs: 5000 });
  await influx.createDatabase();
  // REDIS_URL may list the nodes of a Redis Cluster (workers/cluster.test.ts runs the pipeline test so).
  const redis = createRedis(urls.redis ?? REDIS_URL, { maxRetriesPerRequest: null });
  redis.on('error', () => undefined); // crash tests restart private servers; commands wait for the reconnect
  const prefix = `t-${tag}-${id}`;
  return {
    influx,
    redis,
    prefix,
    async cleanup() {
      await influx.dropDatabase().catch(() => undefined);
      // SCAN, not KEYS: the shared server holds other helpers' data.
      await deleteMatching(redis, `${prefix}:*`);
      redis.disconnect();
    },
  };
}

/** A small site in the spec's shape: one master, three tenants, two pools, flat-ish TOU. */
export const SITE_YAML = `
site: { id: wk-plaza, name: Plaza, timezone: Asia/Shanghai, currency: CNY }
meters:
  - { id: M0, role: master }
  - { id: T101, role: tenant, account: A101 }
  - { id: T102, role: tenant, account: A102 }
  - { id: T103, role: tenant, account: A103 }
  - { id: C-ELEV, role: common, pool: elevators }
accounts:
  - { id: A101, name: Shop 101, area_m2: 120, tariff: commercial, opening_balance: "500.00", low_balance: "100.00", contact: { email: a101@example.test } }
  - { id: A102, name: Cafe 102, area_m2: 80, tariff: commercial, opening_balance: "0.00", low_balance: "50.00" }
  - { id: A103, name: Gym 103, area_m2: 300, tariff: commercial, opening_balance: "1000.00", low_balance: "200.00" }
pools:
  - { id: elevators, method: area }
loss: { normal_rate: 0.03, method: consumption }
tariffs:
  - id: commercial
    versions:
      - effective_from: 2026-01-01
        prices: { peak: "1.053200", flat: "0.702100", valley: "0.351100" }
        schedule:
          - periods:
              - { from: "00:00", to: "08:00", period: valley }
              - { from: "08:00", to: "11:00", period: peak }
              - { from: "11:00", to: "18:00", period: flat }
              - { from: "18:00", to: "23:00", period: peak }
              - { from: "23:00", to: "24:00", period: valley }
`;

export function testSite(yaml = SITE_YAML): Site {
  return parseSiteYaml(yaml, 'test-site.yaml');
}

import { createLogger } from '../../lib/logger.ts';
import { DEFAULT_TUNING } from '../context.ts';
import type { Tuning, WorkerContext } from '../context.ts';
import { openQueues } from '../queues.ts';

/** A processor context on the test's database and prefix with a settable clock. */
export function testContext(env: TestEnv, sites: readonly Site[], clock: { now: number }, tuning: Partial<Tuning> = {}): WorkerContext {
  return {
    sites: new Map(sites.map((s) => [s.id, s])),
    influx: env.influx,
    redis: env.redis,
    queues: openQueues(env.redis, env.prefix),
    log: createLogger('workers-test'),
    keyPrefix: env.prefix,
    queuePrefix: env.prefix,
    now: () => clock.now,
    tuning: { ...DEFAULT_TUNING, ...tuning },
  };
}

import { processRollup } from '../rollup.ts';
import type { RollupResult } from '../rollup.ts';

/** Runs a batch's rollup until its history is worked through (what the queued follow-up runs do in production). */
export async function rollupAll(ctx: WorkerContext, site: string, batch = 0, batches = 1): Promise<RollupResult> {
  let total = { meters: 0, readings: 0, buckets: 0, lateDays: 0, more: true };
  for (let i = 0; total.more && i < 1000; i++) {
    const r = await processRollup(ctx, { site, batch, batches });
    total = { meters: Math.max(total.meters, r.meters), readings: total.readings + r.readings, buckets: total.buckets + r.buckets, lateDays: total.lateDays + r.lateDays, more: r.more };
  }
  return total;
}
