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
