import { serveApp } from './testing/harness.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dec } from '../core/index.ts';
import { readLiveEntry, recordPayment } from '../workers/index.ts';
import { RedisTokenStore, hashToken } from './auth/token-store.ts';
import { buildApp } from './app.ts';
import { TenantReader } from './data/tenant-read.ts';
import { SiteRef } from './site-ref.ts';
import { createFixture, liveWithTenantTokens, NOW } from './testing/fixture.ts';
import type { Fixture } from './testing/fixture.ts';

/**
 * Issue 15, one Redis round trip per tenant request with the cache off (api/data/tenant-read.ts,
 * api/tenant-lane.ts): the credential check, the version stamps and the live entry in one
 * script. The guarantees it must keep: a payment recorded anywhere is in the very next
 * answer, a tenant sees only its own account, a revoked token is refused at once. Commands
 * are counted at the app's Redis connection (the real server answers them).
 */

describe('a tenant GET reads Redis once (cache off; real Redis and InfluxDB)', () => {
  let fx: Fixture;
  const tokens = new Map<string, string>();
  const sent: string[] = [];
  let api: Awaited<ReturnType<typeof serveApp>>;

  beforeAll(async () => {
    fx = await createFixture('oneread');
    for (const [k, v] of (await liveWithTenantTokens(fx)).tokens) tokens.set(k, v);
    // Every command the app's connection sends (MULTI and EXEC are not round trips of their own).
    const send = fx.redis.sendCommand.bind(fx.redis);
    (fx.redis as { sendCommand: unknown }).sendCommand = (c: { name: string }, ...rest: unknown[]) => {
      if (c.name !== 'multi' && c.name !== 'exec') sent.push(c.name);
      return (send as (...a: unknown[]) => unknown)(c, ...rest);
    };
    api = await serveApp(buildApp({ site: new SiteRef(fx.site), influx: fx.influx, redis: fx.redis, keyPrefix: fx.prefix, workersKeyPrefix: fx.workersPrefix, now: () => NOW + 5_000, cacheMs: 0 }));
  }, 60_000);
  afterAll(async () => {
    await api?.close();
    await fx?.cleanup();
  });

  const get = async (path: string, token: string | undefined) => {
    const r = await fetch(`${api.base}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    return { status: r.status, text: await r.text(), headers: r.headers };
  };

  it('live, bill, bill list, payments and me: one command each, once the result is stored', async () => {
    const t = tokens.get('A101')!;
    for (const path of ['/api/v1/accounts/A101/live', '/api/v1/accounts/A101/bills/2026-11', '/api/v1/accounts/A101/bills', '/api/v1/accounts/A101/payments', '/api/v1/me']) {
      expect((await get(path, t)).status, path).toBe(200); // computes and stores the statement
      sent.length = 0;
      const r = await get(path, t);
      expect(r.status, path).toBe(200);
      expect(r.headers.get('cache-control'), path).toBe('no-store');
      expect(sent, path).toEqual([expect.stringMatching(/^eval(sha)?$/)]); // the script, nothing else
    }
    const live = JSON.parse((await get('/api/v1/accounts/A101/live', t)).text) as { balance_source: string };
    expect(live.balance_source).toBe('live');
  });

  it("relay: the account's entry and its meters' read-backs, never the site's whole hashes", async () => {
    const t = tokens.get('A101')!;
    sent.length = 0;
    expect((await get('/api/v1/accounts/A101/relay', t)).status).toBe(200);
    expect(sent[0]).toMatch(/^eval(sha)?$/);
    expect(sent).toContain('hget');
    expect(sent).not.toContain('hgetall');
  });

  it('a payment recorded elsewhere is in the very next answer (the ledger stamp is read with the request)', async () => {
    const t = tokens.get('A102')!;
    const first = await get('/api/v1/accounts/A102/bills/2026-11', t);
    expect((await get('/api/v1/accounts/A102/bills/2026-11', t)).text).toBe(first.text); // stored
    const pays = await get('/api/v1/accounts/A102/payments', t);
    expect((await get('/api/v1/accounts/A102/payments', t)).text).toBe(pays.text); // stored
    expect(pays.text).not.toContain('ONEREAD-1');
    await recordPayment({ site: fx.site, influx: fx.influx, redis: fx.redis, keyPrefix: fx.workersPrefix }, { account: 'A102', fen: 1_234, reference: 'ONEREAD-1', time: Date.parse('2026-11-14T09:00:00+08:00') });
    const after = await get('/api/v1/accounts/A102/bills/2026-11', t);
    expect(JSON.parse(after.text).payments).toBe(new Dec(JSON.parse(first.text).payments).plus('12.34').toFixed(2));
    const listed = JSON.parse((await get('/api/v1/accounts/A102/payments', t)).text) as { payments: { reference: string; amount: string }[] };
    expect(listed.payments.find((p) => p.reference === 'ONEREAD-1')).toMatchObject({ amount: '12.34' });
  });

  it("refuses another account's token (404, no figure of it) and a revoked token at once", async () => {
    const mine = tokens.get('A101')!;
    for (const path of ['/api/v1/accounts/A102/live', '/api/v1/accounts/A102/bills/2026-11', '/api/v1/accounts/A102/bills', '/api/v1/accounts/A102/payments']) {
      const r = await get(path, mine);
      expect(r.status, path).toBe(404);
      expect(r.text, path).not.toMatch(/balance|total_amount|amount|reference/);
    }
    const store = new RedisTokenStore(fx.redis, fx.prefix);
    const created = await store.create({ site: fx.site.id, role: 'tenant', account: 'A103' });
    expect((await get('/api/v1/accounts/A103/live', created.token)).status).toBe(200);
    await store.revoke(fx.site.id, created.record.id);
    const r = await get('/api/v1/accounts/A103/live', created.token);
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  it("reads the live entry exactly as the workers' reader does, and the token's record by its hash", async () => {
    const reader = new TenantReader(fx.redis, fx.prefix, fx.workersPrefix);
    for (const a of fx.site.accounts) {
      const r = await reader.read({ site: fx.site.id, failuresKey: `${fx.prefix}{${fx.site.id}}:auth-failures:test`, tokenHash: hashToken(tokens.get(a.id)!), account: a.id, live: true });
      expect(r.live, a.id).toEqual(await readLiveEntry(fx.redis, fx.workersPrefix, fx.site.id, a.id));
      expect(r.live?.checked, a.id).toBe(NOW);
      expect(r.token?.account, a.id).toBe(a.id);
      expect(r.failures.count).toBeNull();
    }
  });
});
