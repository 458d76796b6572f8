import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector } from '../collector/collector.ts';
import { startPymodbusTcp } from '../collector/test-support/pymodbus.ts';
import type { PymodbusServer } from '../collector/test-support/pymodbus.ts';
import { siteYaml, writeSite } from '../collector/test-support/site.ts';
import { tempDir } from '../collector/test-support/socat.ts';
import { quoteString } from '../influx/client.ts';
import { announceNewData, newDataChannel } from '../lib/new-data-channel.ts';
import { recordPayment } from './payments.ts';
import { startWorkers } from './start.ts';
import type { RunningWorkers } from './start.ts';
import { REDIS_URL, testEnv, testSite } from './testing/env.ts';
import type { TestEnv } from './testing/env.ts';
import { readingLines } from './testing/month.ts';

/**
 * Issue 15: the rollup runs on new data, not by polling InfluxDB every 3 s per site and
 * meter batch. The collector announces each acknowledged batch of readings on the workers'
 * new-data channel; the workers then roll the site up (and the balance follows), and a
 * payment runs the balance; a slow safety tick covers the rest. Real Redis, InfluxDB,
 * BullMQ workers, and a Modbus TCP peer (python3-pymodbus) for the collector.
 */

async function until(what: string, ok: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  let done = await ok();
  while (!done && Date.now() <= end) {
    await new Promise((r) => setTimeout(r, 50));
    done = await ok();
  }
  // An assertion (vitest's requireAssertions): the wait is what the test checks.
  expect(done, `waiting for ${what}`).toBe(true);
}

describe('the workers run on announced data (real Redis, InfluxDB and BullMQ)', () => {
  const site = testSite();
  let env: TestEnv;
  let running: RunningWorkers;
  const buckets = async () => Number((await env.influx.query(`SELECT count(wh) FROM tou_bucket WHERE site = ${quoteString(site.id)}`))[0]?.count ?? 0);
  const points = async (account: string) => Number((await env.influx.query(`SELECT count(balance_fen) FROM balance WHERE site = ${quoteString(site.id)} AND account = ${quoteString(account)}`))[0]?.count ?? 0);

  beforeAll(async () => {
    env = await testEnv('newdata');
    // Ticks ten minutes apart: within this test only announcements can make the workers run.
    running = await startWorkers({ sites: [site], influx: env.influx, queuePrefix: env.prefix, keyPrefix: env.prefix, queues: ['rollup', 'balance'], schedule: { rollupEveryMs: 600_000, balanceEveryMs: 600_000, rollupCoalesceMs: 200 } });
    // The schedulers' first ticks (at start) have run on an empty database.
    await new Promise((r) => setTimeout(r, 1500));
  }, 60_000);
  afterAll(async () => {
    await running?.close();
    await env?.cleanup();
  });

  it('readings written without an announcement wait for the tick; announced, they reach the buckets and the balance in seconds', async () => {
    const t0 = Date.now() - 30 * 60_000;
    const rows = site.meters.flatMap((m, i) => Array.from({ length: 30 }, (_, k) => ({ time: t0 + k * 60_000, meter: m.id, wh: 1_000_000 + i * 1000 + k * 50 })));
    await env.influx.write(readingLines(site.id, rows));
    await new Promise((r) => setTimeout(r, 2000));
    expect(await buckets()).toBe(0);
    const t = Date.now();
    await announceNewData(env.redis, env.prefix, site.id, 'readings');
    await until('buckets of the announced readings', async () => (await buckets()) > 0);
    await until('balance points after the rollup', async () => (await points('A101')) > 0);
    expect(Date.now() - t).toBeLessThan(10_000);
  });

  it('a payment runs the balance: a point for the paid account at once', async () => {
    const before = await points('A102');
    await recordPayment({ site, influx: env.influx, redis: env.redis, keyPrefix: env.prefix }, { account: 'A102', fen: 5_000, reference: `R-${randomBytes(3).toString('hex')}`, time: Date.now() - 1000 });
    await until('a new point for A102', async () => (await points('A102')) > before);
  });

  it("a balance job keeps a summary as its return value, not every account's figures (Redis holds it in the job and the events stream)", async () => {
    const done = (await running.queues.balance.getCompleted()).filter((j) => j.name !== 'balance-tick');
    expect(done.length).toBeGreaterThan(0);
    for (const j of done) expect(j.returnvalue).toEqual({ accounts: site.accounts.length, written: expect.any(Number) });
  });
});

describe('the collector announces what InfluxDB acknowledged', () => {
  let server: PymodbusServer;
  beforeAll(async () => {
    server = await startPymodbusTcp({ 13: { fc: 4, floats: { 0: 230, 2: 230, 4: 230, 0x34: 1000, 0x48: 12345.67 } } });
  });
  afterAll(async () => server?.stop());

  it("one 'readings' message per forwarded batch with readings, on the workers' channel", async () => {
    const env = await testEnv('announce');
    const sub = new Redis(REDIS_URL);
    const heard: string[] = [];
    try {
      const id = `an${randomBytes(3).toString('hex')}`;
      const { site } = writeSite(tempDir('site'), siteYaml(id, [`{ id: M1, role: master, poll_interval: 1s, connection: { protocol: modbus-tcp, host: 127.0.0.1, port: ${server.port}, unit: 13, map: sdm630, timeout_ms: 500 } }`]));
      sub.on('message', (_c, m: string) => heard.push(m));
      await sub.subscribe(newDataChannel(env.prefix));
      const collector = await startCollector({ site, spoolDir: join(tempDir('spool'), 's'), influx: env.influx, pollIntervalMs: 100, stateIntervalMs: 60_000, reloadChannel: { redisUrl: REDIS_URL, keyPrefix: env.prefix }, forwarder: { idleMs: 20 } });
      try {
        await until('an announcement', async () => heard.length > 0);
      } finally {
        await collector.stop();
      }
      // Naming the meters of the batch (the workers roll up only those).
      expect(new Set(heard)).toEqual(new Set([`${id}|readings|M1`]));
      const written = Number((await env.influx.query(`SELECT count(wh) FROM reading WHERE site = ${quoteString(id)}`))[0]?.count ?? 0);
      expect(written).toBeGreaterThan(0);
    } finally {
      sub.disconnect();
      await env.cleanup();
    }
  });
});
