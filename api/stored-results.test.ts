import { serveApp } from './testing/harness.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dec } from '../core/index.ts';
import { InfluxV1 } from '../influx/client.ts';
import { recordPayment } from '../workers/index.ts';
import { RedisTokenStore } from './auth/token-store.ts';
import { buildApp } from './app.ts';
import { SiteRef } from './site-ref.ts';
import { createFixture, liveWithTenantTokens, NOW } from './testing/fixture.ts';
import type { Fixture } from './testing/fixture.ts';

/**
 * Issue 15, the API at tenant scale: tenant routes served from stored results. Live figures
 * come from the balance job's last results (no InfluxDB query while they are fresh; the
 * figures computed by the API when they are not); a statement is computed once per version
 * of what it depends on and served as stored until a payment, a settlement or a month close
 * changes it; a revoked token stops working in every API process within a second. The
 * production cache settings (1 s); InfluxDB queries counted at the adapter.
 */

class CountingInflux extends InfluxV1 {
  queries = 0;
  override async queryRaw(...args: Parameters<InfluxV1['queryRaw']>): ReturnType<InfluxV1['queryRaw']> {
    this.queries++;
    return super.queryRaw(...args);
  }
}

describe('tenant routes from stored results (real Redis and InfluxDB)', () => {
  let fx: Fixture;
  let influx: CountingInflux;
  const clock = { now: NOW };
  const balances = new Map<string, number>();
  const tokens = new Map<string, string>();
  let api: Awaited<ReturnType<typeof serveApp>>;

  beforeAll(async () => {
    fx = await createFixture('stored');
    influx = new CountingInflux({ url: process.env.SUBMETER_INFLUX_URL ?? 'http://127.0.0.1:8096', db: fx.influx.db, timeoutMs: 10_000 });
    // The balance job's run at NOW: its points and the site's last results in Redis.
    const live = await liveWithTenantTokens(fx);
    for (const [k, v] of live.balances) balances.set(k, v);
    for (const [k, v] of live.tokens) tokens.set(k, v);
    api = await serveApp(buildApp({ site: new SiteRef(fx.site), influx, redis: fx.redis, keyPrefix: fx.prefix, workersKeyPrefix: fx.workersPrefix, now: () => clock.now }));
  }, 60_000);
  afterAll(async () => {
    await api?.close();
    await fx?.cleanup();
  });

  const get = async (account: string, path: string, base = api.base) => {
    const r = await fetch(`${base}/api/v1/accounts/${account}${path}`, { headers: { authorization: `Bearer ${tokens.get(account)}` } });
    return { status: r.status, text: await r.text() };
  };

  it("live: the balance job's figures, for every account, without one InfluxDB query", async () => {
    clock.now = NOW + 5_000;
    await get('A101', '/live'); // the site's results read once
    const before = influx.queries;
    for (let i = 0; i < 30; i++) {
      for (const a of fx.site.accounts) {
        const r = await get(a.id, '/live');
        expect(r.status).toBe(200);
        const body = JSON.parse(r.text) as { balance: string; balance_source: string; today_kwh: string };
        expect(body.balance_source, a.id).toBe('live');
        expect(Math.round(Number(body.balance) * 100), a.id).toBe(balances.get(a.id)); // test-side parse of a 2-decimal text
      }
    }
    expect(influx.queries - before).toBe(0);
  });

  it('live: results older than a minute are not shown; the API computes the figures (same balance: nothing changed)', async () => {
    clock.now = NOW + 61_000;
    const before = influx.queries;
    const body = JSON.parse((await get('A102', '/live')).text) as { balance: string; balance_source: string };
    expect(body.balance_source).toBe('computed');
    expect(Math.round(Number(body.balance) * 100)).toBe(balances.get('A102'));
    expect(influx.queries - before).toBeGreaterThan(0);
    clock.now = NOW + 5_000;
  });

  it("bill: computed once, then served as stored; a payment recorded elsewhere shows within a second", async () => {
    const first = await get('A102', '/bills/2026-11');
    expect(first.status).toBe(200);
    const other = await get('A101', '/bills/2026-11');
    const before = influx.queries;
    for (let i = 0; i < 20; i++) expect((await get('A102', '/bills/2026-11')).text).toBe(first.text);
    expect(influx.queries - before).toBe(0);
    // Another process (the cashier's `submeter pay`) records a payment of A102.
    await recordPayment({ site: fx.site, influx: fx.influx, redis: fx.redis, keyPrefix: fx.workersPrefix }, { account: 'A102', fen: 4_200, reference: 'STORED-1', time: Date.parse('2026-11-14T10:00:00+08:00') });
    await new Promise((r) => setTimeout(r, 1100));
    const after = await get('A102', '/bills/2026-11');
    expect(after.text).not.toBe(first.text);
    expect(JSON.parse(after.text).payments).toBe(new Dec(JSON.parse(first.text).payments).plus(42).toFixed(2));
    // Another account's stored statement was kept (its ledger did not change).
    const q = influx.queries;
    expect((await get('A101', '/bills/2026-11')).text).toBe(other.text);
    expect(influx.queries - q).toBe(0);
  });

  it('a token revoked through one API process stops working there at once and in another within a second', async () => {
    const other = await serveApp(buildApp({ site: new SiteRef(fx.site), influx, redis: fx.redis, keyPrefix: fx.prefix, workersKeyPrefix: fx.workersPrefix, now: () => clock.now }));
    try {
      const store = new RedisTokenStore(fx.redis, fx.prefix);
      const created = await store.create({ site: fx.site.id, role: 'tenant', account: 'A103' });
      tokens.set('A103', created.token);
      expect((await get('A103', '/live')).status).toBe(200);
      expect((await get('A103', '/live', other.base)).status).toBe(200);
      const manager = (await store.create({ site: fx.site.id, role: 'manager' })).token;
      const r = await fetch(`${api.base}/api/v1/tokens/${created.record.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${manager}` } });
      expect(r.status).toBe(204);
      expect((await get('A103', '/live')).status).toBe(401);
      await new Promise((res) => setTimeout(res, 1100));
      expect((await get('A103', '/live', other.base)).status).toBe(401);
    } finally {
      await other.close();
    }
  });
});
