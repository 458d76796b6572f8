import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { InfluxV1 } from '../influx/client.ts';
import { readEnv } from '../lib/env.ts';
import { startApi } from './server.ts';
import { SITE_FILE } from './testing/fixture.ts';

/**
 * Issue 16: behind compose.yaml's reverse proxy every request comes from the proxy, so the
 * failed-login limit (20 per address and window) would lock out every client at once.
 * SUBMETER_TRUST_PROXY lets the API take the client address from X-Forwarded-For.
 */
const influxUrl = process.env.SUBMETER_INFLUX_URL ?? 'http://127.0.0.1:8096';
const db = `t_trustproxy_${randomBytes(4).toString('hex')}`;
const keyPrefix = `t-trustproxy-${randomBytes(4).toString('hex')}:`;

afterAll(async () => {
  await new InfluxV1({ url: influxUrl, db }).dropDatabase().catch(() => undefined);
});

async function failedLogins(url: string, from: string, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await fetch(`${url}/api/v1/me`, { headers: { authorization: 'Bearer smt_not-a-real-token-000000', 'x-forwarded-for': from } })).status);
  return out;
}

describe('SUBMETER_TRUST_PROXY', () => {
  it('is parsed once at start: true, hop counts, address lists; anything else is refused', () => {
    expect(readEnv({ SUBMETER_TRUST_PROXY: '1' }).SUBMETER_TRUST_PROXY).toBe(1);
    expect(readEnv({ SUBMETER_TRUST_PROXY: 'true' }).SUBMETER_TRUST_PROXY).toBe(true);
    expect(readEnv({ SUBMETER_TRUST_PROXY: 'false' }).SUBMETER_TRUST_PROXY).toBeUndefined();
    expect(readEnv({}).SUBMETER_TRUST_PROXY).toBeUndefined();
    expect(readEnv({ SUBMETER_TRUST_PROXY: 'loopback, uniquelocal' }).SUBMETER_TRUST_PROXY).toBe('loopback, uniquelocal');
    expect(() => readEnv({ SUBMETER_TRUST_PROXY: 'yes please!' })).toThrow(/SUBMETER_TRUST_PROXY: must be true, false/);
  });

  for (const [setting, separate] of [[undefined, false], ['1', true]] as const) {
    it(`${setting ? 'set' : 'unset'}: the failed-login limit counts ${separate ? 'each client' : 'the proxy'}`, async () => {
      const before = process.env.SUBMETER_TRUST_PROXY;
      if (setting) process.env.SUBMETER_TRUST_PROXY = setting;
      else delete process.env.SUBMETER_TRUST_PROXY;
      const api = await startApi({ siteFile: SITE_FILE, port: 0, influxUrl, influxDb: db, keyPrefix });
      try {
        const a = await failedLogins(api.url, '203.0.113.7', 21);
        expect(a.slice(0, 20).every((s) => s === 401)).toBe(true);
        expect(a[20]).toBe(429);
        // Another client behind the same proxy.
        expect(await failedLogins(api.url, '198.51.100.9', 1)).toEqual([separate ? 401 : 429]);
      } finally {
        await api.close();
        if (before === undefined) delete process.env.SUBMETER_TRUST_PROXY;
        else process.env.SUBMETER_TRUST_PROXY = before;
      }
    });
  }
});
