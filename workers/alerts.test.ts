import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addDays, zoneOf } from '../core/index.ts';
import { quoteString } from '../influx/client.ts';
import { processAlerts } from './alerts.ts';
import { processBalance } from './balance.ts';
import type { WorkerContext } from './context.ts';
import { recordPayment } from './payments.ts';
import { redisKeys } from './keys.ts';
import { closeQueues } from './queues.ts';
import { processSettlement } from './settlement.ts';
import { startWorkers } from './start.ts';
import type { RunningWorkers } from './start.ts';
import { rollupAll, SITE_YAML, testContext, testEnv, testSite } from './testing/env.ts';
import type { TestEnv } from './testing/env.ts';
import { readingLines, syntheticReadings } from './testing/month.ts';

interface Mail {
  to: string;
  body: string;
}

/** A real SMTP server (smtp-server) on a free port that keeps what it receives. */
async function smtpSink(): Promise<{ port: number; mails: Mail[]; close(): Promise<void> }> {
  const mails: Mail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address).join(','), body: Buffer.concat(chunks).toString('utf8') });
        cb();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return { port, mails, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('alerts and tenant notifications (real SMTP server, webhook, Redis, InfluxDB)', () => {
  let env: TestEnv;
  let ctx: WorkerContext;
  let running: RunningWorkers;
  let smtp: Awaited<ReturnType<typeof smtpSink>>;
  const hooks: unknown[] = [];
  const http = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      hooks.push(JSON.parse(body));
      res.writeHead(204).end();
    });
  });
  let site: ReturnType<typeof testSite>;
  const FROM = '2026-10-01';
  const clock = { now: 0 };

  beforeAll(async () => {
    smtp = await smtpSink();
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const hookUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}/hook`;
    // A101 starts just above its threshold and has both contacts.
    site = testSite(
      SITE_YAML.replace(
        'opening_balance: "500.00", low_balance: "100.00", contact: { email: a101@example.test }',
        `opening_balance: "400.00", low_balance: "100.00", low_balance_hours: 48, contact: { email: a101@example.test, webhook: "${hookUrl}" }`,
      ),
    );
    expect(site.accounts[0].contact?.webhook).toBe(hookUrl);
    env = await testEnv('alert');
    const zone = zoneOf(site.timezone);
    clock.now = zone.midnight(addDays(FROM, 3)) + 20 * 60_000;
    ctx = testContext(env, [site], clock);
    await env.influx.write(readingLines(site.id, syntheticReadings(site, FROM, 3)));
    running = await startWorkers({
      sites: [site],
      influx: env.influx,
      redisUrl: process.env.SUBMETER_REDIS_URL,
      queuePrefix: env.prefix,
      keyPrefix: env.prefix,
      queues: ['notify'],
      schedulers: false,
      notifier: { smtp: { host: '127.0.0.1', port: smtp.port, from: 'submeter@example.test' } },
    });
  });
  afterAll(async () => {
    await running?.close();
    await closeQueues(ctx.queues);
    await smtp.close();
    http.close();
    await env.cleanup();
  });

  it('low balance: one email and one webhook per crossing, re-armed by a payment', async () => {
    await processSettlement(ctx, { site: site.id });
    const b1 = await processBalance(ctx, { site: site.id });
    const a101 = b1.find((b) => b.account === 'A101')!;
    expect(a101.balanceFen).toBeLessThan(100_00);
    expect(a101.fired).toBe(true);
    await until(() => smtp.mails.length >= 1 && hooks.length >= 1);
    // Still below: no second alert, however often the balance runs.
    for (let i = 0; i < 3; i++) {
      clock.now += 3000;
      expect((await processBalance(ctx, { site: site.id })).find((b) => b.account === 'A101')!.fired).toBe(false);
    }
    // A payment lifts it above the threshold (re-arm), a correction drops it again: a new crossing.
    const deps = { site, influx: env.influx, redis: env.redis, keyPrefix: env.prefix };
    await recordPayment(deps, { account: 'A101', fen: 500_00, reference: 'TOPUP', time: clock.now });
    clock.now += 3000;
    expect((await processBalance(ctx, { site: site.id })).find((b) => b.account === 'A101')!.fired).toBe(false);
    await recordPayment(deps, { account: 'A101', fen: -500_00, reference: 'CORR', time: clock.now });
    clock.now += 3000;
    expect((await processBalance(ctx, { site: site.id })).find((b) => b.account === 'A101')!.fired).toBe(true);
    await until(() => smtp.mails.length >= 2 && hooks.length >= 2);
    await new Promise((r) => setTimeout(r, 300));
    expect(smtp.mails).toHaveLength(2);
    expect(hooks).toHaveLength(2);
    expect(smtp.mails[0].to).toBe('a101@example.test');
    expect(smtp.mails[0].body).toMatch(/Subject: Low balance: Plaza A101/);
    expect(smtp.mails[0].body).toMatch(/prepaid electricity balance is \d+\.\d\d CNY/);
    expect(hooks[0]).toMatchObject({ site: site.id, account: 'A101', kind: 'low_balance' });
    const ev = await env.influx.query(`SELECT detail FROM event WHERE site = ${quoteString(site.id)} AND kind = 'low_balance' AND account = 'A101'`);
    expect(ev).toHaveLength(2);
    // Grafana's hours-left rule compares hours_left with each account's own setting.
    const hoursSetting = await env.influx.query(`SELECT last(low_balance_hours) FROM balance WHERE site = ${quoteString(site.id)} GROUP BY account`);
    expect(hoursSetting.map((r) => [r.account, r.last])).toEqual([['A101', 48]]);
  });

  it('a lost alert state is re-derived from the events: no repeat after a Redis loss', async () => {
    const key = redisKeys(env.prefix, site.id).alertState;
    expect(await env.redis.hexists(key, 'A101')).toBe(1);
    await env.redis.del(key);
    clock.now += 3000;
    expect((await processBalance(ctx, { site: site.id })).find((b) => b.account === 'A101')!.fired).toBe(false);
    // The re-derived states are kept: the next runs do not ask InfluxDB again.
    expect(Object.keys(await env.redis.hgetall(key)).sort()).toEqual(site.accounts.map((a) => a.id).sort());
  });

  it('meter offline and abnormal loss become events', async () => {
    const r = await processAlerts(ctx, { site: site.id });
    expect(r.offline).toEqual([]);
    // With the rollup's watermarks (it has read every meter's last reading): the same answer
    // without asking InfluxDB; a watermark after now (a reading stamped ahead) is asked.
    await rollupAll(ctx, site.id);
    const marks = redisKeys(env.prefix, site.id).watermarks;
    expect(Object.keys(await env.redis.hgetall(marks)).sort()).toEqual(site.meters.map((m) => m.id).sort());
    expect((await processAlerts(ctx, { site: site.id })).offline).toEqual([]);
    const lastT101 = Number(await env.redis.hget(marks, 'T101'));
    await env.redis.hset(marks, 'T101', String(clock.now + 3_600_000));
    expect((await processAlerts(ctx, { site: site.id })).offline).toEqual([]);
    await env.redis.hset(marks, 'T101', String(lastT101));
    clock.now += 2 * 3_600_000; // past every meter's max_gap (1 h)
    const r2 = await processAlerts(ctx, { site: site.id });
    expect(r2.offline.sort()).toEqual(site.meters.map((m) => m.id).sort());
    // The outage's start is the last reading InfluxDB holds, not the watermark.
    const [off] = await env.influx.query(`SELECT detail FROM event WHERE site = ${quoteString(site.id)} AND kind = 'meter_offline' AND meter = 'T101' ORDER BY time DESC LIMIT 1`);
    expect(off.time).toBe(lastT101 + site.meters.find((m) => m.id === 'T101')!.maxGapMs);
    expect(r2.abnormalDays).toBeGreaterThan(0);
    const ev = await env.influx.query(`SELECT count(detail) FROM event WHERE site = ${quoteString(site.id)} GROUP BY kind`);
    expect(ev.map((e) => e.kind).sort()).toEqual(expect.arrayContaining(['abnormal_loss', 'low_balance', 'meter_offline']));
    const health = await env.influx.query(`SELECT last(waiting) FROM worker WHERE site = ${quoteString(site.id)} GROUP BY queue`);
    expect(health.map((h) => h.queue).sort()).toEqual(['alerts', 'balance', 'enforcement', 'notify', 'rollup', 'settlement', 'topup']);
  });
});
