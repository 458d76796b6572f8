import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisTokenStore } from './auth/token-store.ts';
import { createFixture } from './testing/fixture.ts';
import type { Fixture } from './testing/fixture.ts';
import { startHarness } from './testing/harness.ts';
import type { Harness } from './testing/harness.ts';

/**
 * Issue 11: bad input never gets a 500, a storage engine's text or a server path; a clear
 * 4xx JSON error with the reason. Every answer to a documented route is checked against
 * the OpenAPI document by the harness.
 */
let fx: Fixture;
let h: Harness;
const tok = { manager: '', A101: '' };

beforeAll(async () => {
  fx = await createFixture('bad');
  h = await startHarness(fx);
  const store = new RedisTokenStore(fx.redis, fx.prefix);
  tok.manager = (await store.create({ site: fx.site.id, role: 'manager' })).token;
  tok.A101 = (await store.create({ site: fx.site.id, role: 'tenant', account: 'A101' })).token;
});

afterAll(async () => {
  await h?.close();
  await fx?.cleanup();
});

describe('one supported date range (2000-01-01 to 2199-12-31) at every API edge', () => {
  it('dates in years 0-99 and 9999 are 400 with the range named, never a 500', async () => {
    const cases: [string, string, string][] = [
      ['GET', '/api/v1/accounts/A101/advice?from=0001-01-01&to=0001-01-02', tok.A101],
      ['GET', '/api/v1/accounts/A101/usage?from=0099-12-30&to=0099-12-31', tok.A101],
      ['GET', '/api/v1/accounts/A101/bills/0001-01', tok.A101],
      ['POST', '/api/v1/months/0001-01/close', tok.manager],
      ['POST', '/api/v1/months/0099-12/close', tok.manager],
      ['POST', '/api/v1/months/9999-12/close', tok.manager],
      ['GET', '/api/v1/stats/bills?from=1999-12-31&to=2000-01-02', tok.manager],
      ['GET', '/api/v1/master?from=2026-01-01&to=2200-01-01', tok.manager],
      ['GET', '/api/v1/quality?from=9999-01-01&to=9999-01-02', tok.manager],
    ];
    for (const [method, path, token] of cases) {
      const r = await h.req(method, path, { token });
      expect(r.status, `${method} ${path}: ${r.text}`).toBe(400);
      expect(r.body.message, path).toMatch(/from 2000-0?1(-01)? to 2199-12(-31)?/);
    }
  });

  it('the edges of the range are served', async () => {
    expect((await h.req('GET', '/api/v1/accounts/A101/usage?from=2000-01-01&to=2000-01-02', { token: tok.A101 })).status).toBe(200);
    expect((await h.req('GET', '/api/v1/accounts/A101/advice?from=2199-12-30&to=2199-12-31', { token: tok.A101 })).status).toBe(200);
    const last = await h.req('GET', '/api/v1/accounts/A101/bills/2199-12', { token: tok.A101 });
    expect(last.status).toBe(200);
    expect(last.body).toMatchObject({ from: '2199-12-01', to: '2200-01-01' });
    const first = await h.req('GET', '/api/v1/accounts/A101/bills/2000-01', { token: tok.A101 });
    expect(first.body).toMatchObject({ from: '2000-01-01', to: '2000-02-01' });
    const close = await h.req('POST', '/api/v1/months/2199-12/close', { token: tok.manager });
    expect(close.status).toBe(409);
    expect(close.body.message).toContain('2199-12 is not over yet');
  });
});

describe('payments at the API', () => {
  it('the same payment sent twice without a time is 201 then 200 duplicate, answered with the first time', async () => {
    const body = { amount: '12.30', reference: 'NO-TIME-1' };
    const first = await h.req('POST', '/api/v1/accounts/A102/payments', { token: tok.manager, body });
    expect(first.status).toBe(201);
    const again = await h.req('POST', '/api/v1/accounts/A102/payments', { token: tok.manager, body });
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ status: 'duplicate', payment: first.body.payment });
    const other = await h.req('POST', '/api/v1/accounts/A102/payments', { token: tok.manager, body: { ...body, amount: '12.31' } });
    expect(other.status).toBe(409);
  });

  it('a payment dated in the future, before the site began or outside the supported dates is a 400 naming time', async () => {
    for (const [time, reason] of [
      ['2100-01-01T00:00:00+08:00', /is in the future/],
      ['1970-01-01T00:00:00Z', /outside the supported dates 2000-01-01 to 2199-12-31/],
      ['2025-06-01T00:00:00+08:00', /before the site's first day 2026-01-01/],
    ] as const) {
      const r = await h.req('POST', '/api/v1/accounts/A101/payments', { token: tok.manager, body: { amount: '1.00', reference: `DATED-${time.slice(0, 4)}`, time } });
      expect(r.status, time).toBe(400);
      expect(r.body.message).toMatch(reason);
      expect(r.body.path).toMatch(/#time$/);
    }
    const list = await h.req('GET', '/api/v1/accounts/A101/payments', { token: tok.manager });
    expect(list.body.payments.map((p: { reference: string }) => p.reference)).not.toContain('DATED-2100');
  });
});

describe('HTTP details', () => {
  it('413 and 415 say so in their code; 431 answers the JSON error shape', async () => {
    const big = await h.req('POST', '/api/v1/accounts/A101/payments', { token: tok.manager, rawBody: JSON.stringify({ amount: '1.00', reference: 'BIG', pad: 'x'.repeat(20_000) }), headers: { 'content-type': 'application/json' } });
    expect(big.status).toBe(413);
    expect(big.body.error).toBe('payload_too_large');
    const text = await h.req('POST', '/api/v1/accounts/A101/payments', { token: tok.manager, rawBody: 'amount=1.00&reference=X', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(text.status).toBe(415);
    expect(text.body.error).toBe('unsupported_media_type');
    const latin = await h.req('POST', '/api/v1/accounts/A101/payments', { token: tok.manager, rawBody: '{"amount":"1.00","reference":"L"}', headers: { 'content-type': 'application/json; charset=latin1' } });
    expect(latin.status).toBe(415);
    const huge = await fetch(`${h.base}/api/v1/me`, { headers: { authorization: `Bearer ${tok.A101}`, 'x-pad': 'x'.repeat(40_000) } });
    expect(huge.status).toBe(431);
    expect(huge.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await huge.json()).toEqual({ error: 'headers_too_large', message: 'the request headers are too large', path: '' });
  });

  it('an unknown method on a known path is 405 with Allow, not 404', async () => {
    const del = await h.req('DELETE', '/api/v1/accounts/A101/payments', { token: tok.manager });
    expect(del.status).toBe(405);
    expect(del.headers.get('allow')).toBe('GET, POST, HEAD');
    expect(del.body).toMatchObject({ error: 'method_not_allowed', path: '/api/v1/accounts/A101/payments' });
    const put = await h.req('PUT', '/api/v1/me', { token: tok.A101 });
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, HEAD');
    expect((await h.req('GET', '/api/v1/nothing-here', { token: tok.A101 })).status).toBe(404);
  });

  it('the bearer scheme is case-insensitive (RFC 7235 section 2.1)', async () => {
    for (const scheme of ['bearer', 'BEARER', 'Bearer', 'bEaReR']) {
      const r = await fetch(`${h.base}/api/v1/me`, { headers: { authorization: `${scheme} ${tok.A101}` } });
      expect(r.status, scheme).toBe(200);
    }
    expect((await fetch(`${h.base}/api/v1/me`, { headers: { authorization: `Basic ${tok.A101}` } })).status).toBe(401);
  });

  it('no error answer carries a server file path or a storage engine text', async () => {
    const repo = new URL('../', import.meta.url).pathname;
    const probes = [
      await fetch(`${h.base}/${'a'.repeat(5000)}`),
      await fetch(`${h.base}/%E0%A4%A`),
      await fetch(`${h.base}/api/v1/accounts/%E0%A4%A/live`, { headers: { authorization: `Bearer ${tok.A101}` } }),
      await fetch(`${h.base}/..%2f..%2fpackage.json`),
      await fetch(`${h.base}/api/v1/accounts/A101/payments`, { method: 'POST', headers: { authorization: `Bearer ${tok.manager}`, 'content-type': 'application/json' }, body: '{"amount": ' }),
      await fetch(`${h.base}/api/v1/accounts/A101/payments`, { method: 'POST', headers: { authorization: `Bearer ${tok.manager}`, 'content-type': 'application/json', 'content-encoding': 'br' }, body: '{}' }),
    ];
    for (const r of probes) {
      const text = await r.text();
      expect(r.status, text).toBeLessThan(500);
      expect(text).not.toContain(repo);
      expect(text).not.toMatch(/\/work\/|node_modules|at .*\.ts:\d+|influx|ENAMETOOLONG|ENOENT/i);
    }
  });
});

describe('the failed-authentication limit, counted in Redis', () => {
  it('a parallel burst of bad tokens gets no more than the limit of 401s; the count holds across API processes', async () => {
    const key = `${fx.prefix}{${fx.site.id}}:auth-failures:127.0.0.1`;
    await fx.redis.del(key);
    const limit = { limit: 5, windowMs: 60_000 };
    const [a, b] = [await startHarness(fx, { authFailures: limit }), await startHarness(fx, { authFailures: limit })];
    try {
      const burst = await Promise.all(Array.from({ length: 40 }, (_, i) => fetch(`${(i % 2 ? a : b).base}/api/v1/me`, { headers: { authorization: `Bearer smt_guess${String(i).padStart(40, '0')}` } }).then((r) => r.status)));
      expect(burst.filter((s) => s === 401)).toHaveLength(5);
      expect(burst.filter((s) => s === 429)).toHaveLength(35);
      // Both processes refuse the address now, even with a valid token.
      for (const api of [a, b]) expect((await fetch(`${api.base}/api/v1/me`, { headers: { authorization: `Bearer ${tok.A101}` } })).status).toBe(429);
      // Successes are never counted: with the window cleared, 60 valid requests in parallel pass.
      await fx.redis.del(key);
      const ok = await Promise.all(Array.from({ length: 60 }, () => fetch(`${a.base}/api/v1/me`, { headers: { authorization: `Bearer ${tok.A101}` } }).then((r) => r.status)));
      expect(ok.filter((s) => s === 200)).toHaveLength(60);
      expect(await fx.redis.get(key)).toBeNull();
    } finally {
      await a.close();
      await b.close();
      await fx.redis.del(key);
    }
  });
});
