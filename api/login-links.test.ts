import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken, RedisTokenStore } from './auth/token-store.ts';
import { createFixture } from './testing/fixture.ts';
import type { Fixture } from './testing/fixture.ts';
import { startHarness } from './testing/harness.ts';
import type { Harness } from './testing/harness.ts';

/** Issue 11: login links are short-lived and single-use; the device cookie is Secure behind TLS. */
let fx: Fixture;
let h: Harness;
let manager = '';

beforeAll(async () => {
  fx = await createFixture('links');
  // Behind a TLS-terminating proxy: req.secure comes from X-Forwarded-Proto.
  h = await startHarness(fx, { trustProxy: true });
  manager = (await new RedisTokenStore(fx.redis, fx.prefix).create({ site: fx.site.id, role: 'manager' })).token;
});
afterAll(async () => {
  await h?.close();
  await fx?.cleanup();
});

const link = async (body: object = {}) => (await h.req('POST', '/api/v1/accounts/A101/login-links', { token: manager, body })).body as { code: string; url: string; expires: string };
const redeem = (code: string, headers: Record<string, string> = {}) => h.req('POST', '/api/v1/session', { body: { code }, headers });

describe('login links', () => {
  it('live as long as asked (30 minutes by default, at most a day) and not a moment longer', async () => {
    const key = (code: string) => `${fx.prefix}{${fx.site.id}}:login-link:${hashToken(code)}`;
    const def = await link();
    expect(await fx.redis.pttl(key(def.code))).toBeGreaterThan(29 * 60_000);
    expect(await fx.redis.pttl(key(def.code))).toBeLessThanOrEqual(30 * 60_000);
    const short = await link({ minutes: 1 });
    expect(await fx.redis.pttl(key(short.code))).toBeLessThanOrEqual(60_000);
    expect((await h.req('POST', '/api/v1/accounts/A101/login-links', { token: manager, body: { minutes: 1441 } })).status).toBe(400);
    await fx.redis.pexpire(key(short.code), 1); // time passes
    await new Promise((r) => setTimeout(r, 20));
    const late = await redeem(short.code);
    expect(late.status).toBe(401);
    expect(late.body.message).toContain('unknown, already used or expired');
  });

  it('two devices opening the same link at once: one is signed in, the other refused', async () => {
    const l = await link();
    const both = await Promise.all([redeem(l.code), redeem(l.code), redeem(l.code)]);
    expect(both.map((r) => r.status).sort()).toEqual([201, 401, 401]);
  });

  it('the session cookie is Secure when the request came over TLS, and never readable by script', async () => {
    const tls = await redeem((await link()).code, { 'x-forwarded-proto': 'https' });
    expect(tls.headers.get('set-cookie')).toMatch(/; HttpOnly; Secure; SameSite=Strict$/);
    const plain = await redeem((await link()).code);
    expect(plain.headers.get('set-cookie')).not.toContain('Secure');
  });
});
