import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { InfluxV1 } from '../influx/client.ts';
import { createDemoTokens, startApi } from './server.ts';
import { SITE_FILE } from './testing/fixture.ts';

const id = randomBytes(4).toString('hex');
const influxUrl = process.env.SUBMETER_INFLUX_URL ?? 'http://127.0.0.1:8096';
const redisUrl = process.env.SUBMETER_REDIS_URL ?? 'redis://127.0.0.1:6389';
const db = `t_apisrv_${id}`;
const keyPrefix = `t-apisrv-${id}:`;

afterAll(async () => {
  await new InfluxV1({ url: influxUrl, db }).dropDatabase().catch(() => undefined);
  const redis = new Redis(redisUrl);
  // SCAN, not KEYS: the shared server holds other helpers' data.
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 1000);
    if (keys.length) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
  redis.disconnect();
});

describe('startApi and createDemoTokens (what the demo calls)', () => {
  it('listens on a free port, creates its database, and answers demo tokens by role', async () => {
    const api = await startApi({ siteFile: SITE_FILE, port: 0, influxUrl, influxDb: db, redisUrl, keyPrefix });
    try {
      const tokens = await createDemoTokens({ siteFile: SITE_FILE, redisUrl, keyPrefix });
      expect(Object.keys(tokens.tenants)).toEqual(['A101', 'A102', 'A103']);
      const get = (path: string, token: string) => fetch(`${api.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
      expect(await (await get('/api/v1/me', tokens.tenants.A102)).json()).toMatchObject({ role: 'tenant', account: 'A102' });
      expect((await get('/api/v1/accounts', tokens.viewer)).status).toBe(200);
      expect((await get('/api/v1/tokens', tokens.manager)).status).toBe(200);
      // An empty database (no workers yet): figures are the site file's opening balances, not errors.
      const live = await (await get('/api/v1/accounts/A103/live', tokens.tenants.A103)).json();
      expect(live).toMatchObject({ balance: '1000.00', balance_source: 'computed', today_kwh: '0.000' });
      expect((await fetch(`${api.url}/`)).headers.get('content-type')).toMatch(/^text\/html/);
    } finally {
      await api.close();
    }
  });
});
