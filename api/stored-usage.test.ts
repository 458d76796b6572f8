import { serveApp } from './testing/harness.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processBalance } from '../workers/balance.ts';
import { restartRollup } from '../workers/rollup.ts';
import { closeQueues } from '../workers/queues.ts';
import { rollupAll, testContext } from '../workers/testing/env.ts';
import type { WorkerContext } from '../workers/context.ts';
import { PaymentRejectedError, recordPayment } from '../workers/index.ts';
import { sampleLine } from '../influx/lines.ts';
import { RedisTokenStore } from './auth/token-store.ts';
import { buildApp } from './app.ts';
import { localMidnight } from './local-time.ts';
import { SiteRef } from './site-ref.ts';
import { createFixture, NOW } from './testing/fixture.ts';
import type { Fixture } from './testing/fixture.ts';

/**
 * Issue 15: usage, alerts and advice served as stored results (computed once per change of
 * what they depend on, never stale). Every write goes through the workers' real writers
 * (the rollup, a rollup restart, the balance job, recordPayment), which stamp what they
 * wrote (workers/api-stamps.ts); the next GET with the cache off must show it, another
 * account's stored answer must not move, and an unchanged answer costs one Redis command.
 */
describe('usage, alerts and advice as stored results (cache off; real Redis and InfluxDB)', () => {
  let fx: Fixture;
  let ctx: WorkerContext;
  const clock = { now: NOW };
  const tokens = new Map<string, string>();
  const sent: string[] = [];
  /** InfluxDB statements the app sent (a stored answer sends none). */
  const queried: string[] = [];
  let api: Awaited<ReturnType<typeof serveApp>>;

  beforeAll(async () => {
    fx = await createFixture('storedusage');
    ctx = testContext({ influx: fx.influx, redis: fx.redis, prefix: fx.workersPrefix, cleanup: async () => undefined }, [fx.site], clock);
    const store = new RedisTokenStore(fx.redis, fx.prefix);
    for (const a of fx.site.accounts) tokens.set(a.id, (await store.create({ site: fx.site.id, role: 'tenant', account: a.id })).token);
    tokens.set('manager', (await store.create({ site: fx.site.id, role: 'manager' })).token);
    const send = fx.redis.sendCommand.bind(fx.redis);
    (fx.redis as { sendCommand: unknown }).sendCommand = (c: { name: string }, ...rest: unknown[]) => {
      if (c.name !== 'multi' && c.name !== 'exec') sent.push(c.name);
      return (send as (...a: unknown[]) => unknown)(c, ...rest);
    };
    const q = fx.influx.queryRaw.bind(fx.influx);
    fx.influx.queryRaw = (text, opts) => {
      queried.push(text);
      return q(text, opts);
    };
    api = await serveApp(buildApp({ site: new SiteRef(fx.site), influx: fx.influx, redis: fx.redis, keyPrefix: fx.prefix, workersKeyPrefix: fx.workersPrefix, now: () => clock.now, cacheMs: 0 }));
  }, 60_000);
  afterAll(async () => {
    await api?.close();
    if (ctx) await closeQueues(ctx.queues);
    await fx?.cleanup();
  });

  const get = async (path: string, who: string) => {
    const r = await fetch(`${api.base}${path}`, { headers: { authorization: `Bearer ${tokens.get(who)!}` } });
    return { status: r.status, text: await r.text() };
  };
  /** One request, served stored (no InfluxDB statement, the one script). */
  const servedStored = async (path: string, who: string) => {
    sent.length = 0;
    queried.length = 0;
    const r = await get(path, who);
    expect(r.status, path).toBe(200);
    expect(sent, path).toEqual([expect.stringMatching(/^eval(sha)?$/)]);
    expect(queried, path).toEqual([]);
    return r.text;
  };
  /** The answer once stored: a first request computes it, the second must be served stored. */
  const stored = async (path: string, who: string) => {
    await get(path, who);
    return servedStored(path, who);
  };
  const usage = (a: string) => `/api/v1/accounts/${a}/usage?from=2026-11-15&to=2026-11-16&interval=1h`;
  const advice = (a: string, from: string, to: string) => `/api/v1/accounts/${a}/advice?from=${from}&to=${to}`;
  const kwh = (text: string) => (JSON.parse(text) as { points: { kwh: string }[] }).points.map((p) => p.kwh);

  it('usage: a rollup of new readings is in the next answer of its account only; a restart that deletes buckets too', async () => {
    const a101 = await stored(usage('A101'), 'A101');
    const a103 = await stored(usage('A103'), 'A103');
    expect(kwh(a103)).toEqual([]); // the fixture has no bucket of A103 today
    // Readings of T103 (A103's meter) through the real rollup: it writes the buckets and stamps T103.
    const today = localMidnight('2026-11-15', fx.site.timezone);
    await fx.influx.write([sampleLine(fx.site.id, { meter: 'T103', time: today + 9 * 3_600_000 + 60_000, wh: 5_002_000, w: 1000 }), sampleLine(fx.site.id, { meter: 'T103', time: today + 9 * 3_600_000 + 1_800_000, wh: 5_003_500, w: 1000 })]);
    const r = await rollupAll(ctx, fx.site.id);
    expect(r.buckets).toBeGreaterThan(0);
    const after = (await get(usage('A103'), 'A103')).text;
    expect(after).not.toBe(a103);
    expect(kwh(after).length).toBeGreaterThan(0);
    // A101's stored answer did not move (none of its meters was stamped), and it never shows A103's energy.
    expect(await servedStored(usage('A101'), 'A101')).toBe(a101);
    // A restart of T101's rollup deletes its buckets from 08:00 (a site reload's change): the next answer has fewer hours.
    await restartRollup(ctx, fx.site, ['T101'], today + 8 * 3_600_000);
    const cut = (await get(usage('A101'), 'A101')).text;
    expect(kwh(cut).length).toBeLessThan(kwh(a101).length);
    // Another tenant naming A101 still gets 404, no figure.
    const other = await get(usage('A101'), 'A103');
    expect(other.status).toBe(404);
    expect(other.text).not.toContain('kwh');
  });

  it('alerts: a low-balance event of the balance job, a payment conflict of recordPayment: in the next answer', async () => {
    const ids = fx.site.accounts.map((a) => a.id);
    const before = new Map<string, string>();
    for (const a of ids) before.set(a, await stored(`/api/v1/accounts/${a}/alerts`, a));
    const mgrBefore = await stored('/api/v1/accounts/A101/alerts', 'manager');
    // The balance job fires low balance for an account under its threshold, writing an event: A102
    // (below 50.00) is re-armed by a payment that leaves it below.
    await recordPayment({ site: fx.site, influx: fx.influx, redis: fx.redis, keyPrefix: fx.workersPrefix }, { account: 'A102', fen: 100, reference: 'CASH-A102-1', time: NOW - 120_000 });
    clock.now = NOW + 60_000;
    const fired = new Set((await processBalance(ctx, { site: fx.site.id })).filter((r) => r.fired).map((r) => r.account));
    expect(fired).toContain('A102');
    expect(fired.size).toBeLessThan(ids.length);
    for (const a of ids) {
      if (fired.has(a)) {
        const now = JSON.parse((await get(`/api/v1/accounts/${a}/alerts`, a)).text) as { alerts: unknown[] };
        expect(now.alerts.length, a).toBe((JSON.parse(before.get(a)!) as { alerts: unknown[] }).alerts.length + 1);
      } else expect(await servedStored(`/api/v1/accounts/${a}/alerts`, a), a).toBe(before.get(a)); // no event of its own: still stored
    }
    // A payment conflict (a taken reference, another amount): the manager's list of A101 shows it next time.
    await expect(recordPayment({ site: fx.site, influx: fx.influx, redis: fx.redis, keyPrefix: fx.workersPrefix }, { account: 'A101', fen: 1, reference: 'BANK-0001', time: NOW - 60_000 })).rejects.toBeInstanceOf(PaymentRejectedError);
    const mgr = (await get('/api/v1/accounts/A101/alerts', 'manager')).text;
    expect(mgr).not.toBe(mgrBefore);
    expect(mgr).toContain('payment_conflict');
    // Never to the tenant (not a tenant event kind) nor to another account.
    expect((await get('/api/v1/accounts/A101/alerts', 'A101')).text).not.toContain('payment_conflict');
    expect((await get('/api/v1/accounts/A102/alerts', 'A102')).text).not.toContain('BANK-0001');
  });

  it('advice: a closed range ignores other meters; a range with an open day moves with any bucket write', async () => {
    const closed = await stored(advice('A102', '2026-11-01', '2026-11-08'), 'A102');
    const open = await stored(advice('A102', '2026-11-14', '2026-11-16'), 'A102');
    expect((JSON.parse(open) as { days: number }).days).toBe(2); // 11-14 settled, 11-15 from the site's buckets
    // Every bucket of today deleted (T101 is A101's meter, T103 A103's): the site has no data today.
    await restartRollup(ctx, fx.site, ['T101', 'T103'], localMidnight('2026-11-15', fx.site.timezone));
    // Settled days only: A102's meters were not written, so the stored answer stands.
    expect(await servedStored(advice('A102', '2026-11-01', '2026-11-08'), 'A102')).toBe(closed);
    const again = (await get(advice('A102', '2026-11-14', '2026-11-16'), 'A102')).text;
    expect((JSON.parse(again) as { days: number }).days).toBe(1);
    expect(await stored(advice('A102', '2026-11-14', '2026-11-16'), 'A102')).toBe(again);
  });

  it('with the cache on (1 s), a rollup restart is in the answer once the process reads the stamps again', async () => {
    const on = await serveApp(buildApp({ site: new SiteRef(fx.site), influx: fx.influx, redis: fx.redis, keyPrefix: fx.prefix, workersKeyPrefix: fx.workersPrefix, now: () => clock.now }));
    try {
      const at = (path: string) => fetch(`${on.base}${path}`, { headers: { authorization: `Bearer ${tokens.get('A101')!}` } }).then((r) => r.text());
      const day = (d: string) => `/api/v1/accounts/A101/usage?from=${d}&to=2026-11-15&interval=1d`;
      const before = await at(day('2026-11-14'));
      expect(kwh(before).length).toBeGreaterThan(0); // yesterday's buckets of T101, per period
      await restartRollup(ctx, fx.site, ['T101'], localMidnight('2026-11-14', fx.site.timezone));
      await new Promise((r) => setTimeout(r, 1100));
      expect(kwh(await at(day('2026-11-14')))).toEqual([]);
    } finally {
      await on.close();
    }
  });
});
