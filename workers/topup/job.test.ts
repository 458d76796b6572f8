import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue, QueueEvents } from 'bullmq';
import { parseSiteYaml } from '../../core/index.ts';
import { WechatPay } from '../../lib/topup/index.ts';
import { WechatSim } from '../../sim/providers/index.ts';
import { openQueues, closeQueues, queuePrefix, upsertSchedulers } from '../queues.ts';
import { startWorkers } from '../start.ts';
import type { RunningWorkers } from '../start.ts';
import { loadPayments } from '../payments.ts';
import { SITE_YAML, testEnv } from '../testing/env.ts';
import type { TestEnv } from '../testing/env.ts';
import { TopupService } from './service.ts';

// The `topup` queue: its schedulers exist only for a site with a topup block, and a
// reconcile job run by real workers credits a payment whose notification was lost.
const site = parseSiteYaml(`${SITE_YAML}\ntopup:\n  providers: [wechat]\n  reconcile_at: "10:30"\n`, 'topup-job.yaml');
const plain = parseSiteYaml(SITE_YAML, 'plain.yaml');

describe('topup queue (real Redis, InfluxDB, BullMQ)', () => {
  let env: TestEnv;
  let sim: WechatSim;
  let workers: RunningWorkers;
  beforeAll(async () => {
    env = await testEnv('topupq');
    sim = await new WechatSim().start();
  });
  afterAll(async () => {
    await workers?.close();
    await sim?.stop();
    await env?.cleanup();
  });

  it('schedules the pending poll and the daily reconciliation only for a site with top-up', async () => {
    const q = openQueues(env.redis, env.prefix);
    try {
      await upsertSchedulers(q, site);
      const keys = (await q.topup.getJobSchedulers()).map((s) => `${s.key} ${s.pattern ?? s.every}`).sort();
      expect(keys).toEqual([`topup-pending:${site.id} 60000`, `topup-reconcile:${site.id} 0 30 10 * * *`]);
      // The same site reloaded without its topup block stops both.
      await upsertSchedulers(q, plain);
      expect(await q.topup.getJobSchedulers()).toEqual([]);
    } finally {
      await closeQueues(q);
    }
  });

  it('a reconcile job credits the payment whose notification was lost', async () => {
    const providers = new Map([['wechat' as const, new WechatPay(sim.credentials)]]);
    const svc = new TopupService({ site: () => site, influx: env.influx, redis: env.redis, keyPrefix: env.prefix, providers });
    const order = await svc.createOrder({ account: 'A102', fen: 12_300, provider: 'wechat', baseUrl: 'http://127.0.0.1:1' });
    sim.pay(order.id); // the notification never arrives
    workers = await startWorkers({ sites: [site], influx: env.influx, queuePrefix: env.prefix, keyPrefix: env.prefix, queues: ['topup'], schedulers: false, concurrency: 1, topupProviders: new Map([[site.id, providers]]) });
    const day = new Date(Date.now() + 8 * 3_600_000).toISOString().slice(0, 10);
    const queue = new Queue('topup', { connection: env.redis, prefix: queuePrefix(env.prefix, 'topup') });
    const events = new QueueEvents('topup', { connection: env.redis.duplicate(), prefix: queuePrefix(env.prefix, 'topup') });
    try {
      await events.waitUntilReady();
      const job = await queue.add('reconcile', { site: site.id, kind: 'reconcile', provider: 'wechat', date: day });
      expect(await job.waitUntilFinished(events, 30_000)).toEqual([{ provider: 'wechat', date: day, credited: 1, alarms: 0 }]);
    } finally {
      await events.close();
      await queue.close();
    }
    expect((await loadPayments(env.influx, site.id)).map((p) => [p.account, p.fen, p.reference])).toEqual([['A102', 12_300, `wechat:${sim.order(order.id).transaction}`]]);
    expect((await svc.getOrder(order.id))?.creditedBy).toBe('reconciliation');
  });
});
