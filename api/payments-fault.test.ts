import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dec, parseSiteYaml } from '../core/index.ts';
import { InfluxV1 } from '../influx/client.ts';
import { faultProxy } from '../test/fault-proxy.ts';
import { privateInflux } from '../test/private-servers.ts';
import type { PrivateServer } from '../test/private-servers.ts';
import { SITE_YAML } from '../workers/testing/env.ts';
import { buildApp } from './app.ts';
import { RedisTokenStore } from './auth/token-store.ts';
import { SiteRef } from './site-ref.ts';

/**
 * Issue 11: under faults, a payment sent without `time` whose first attempt timed out was
 * credited while a retry was told 409 refused. A client must never be told "refused" for
 * money that was credited, and a payment retried any number of times is credited once.
 * Real faults: a write held in flight past the API's InfluxDB timeout (then delivered), and
 * a private InfluxDB frozen with SIGSTOP while payments are in flight.
 */
const site = parseSiteYaml(SITE_YAML, 'site.yaml');
const redisUrl = process.env.SUBMETER_REDIS_URL ?? 'redis://127.0.0.1:6389';
let redis: Redis;
const prefix = `t-payfault-${randomBytes(4).toString('hex')}`;

beforeAll(() => {
  redis = new Redis(redisUrl, { maxRetriesPerRequest: 3 });
});
afterAll(async () => {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    if (keys.length) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
  redis.disconnect();
});

async function serve(influx: InfluxV1, tag: string): Promise<{ url: string; token: string; close: () => Promise<void> }> {
  const app = buildApp({ site: new SiteRef(site), influx, redis, keyPrefix: `${prefix}-${tag}:`, workersKeyPrefix: `${prefix}-${tag}-w`, cacheMs: 0 });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const token = (await new RedisTokenStore(redis, `${prefix}-${tag}:`).create({ site: site.id, role: 'manager' })).token;
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    token,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
    },
  };
}

/** One attempt of a payment without `time`, as a client with its own timeout sends it. */
async function attempt(api: { url: string; token: string }, account: string, amount: string, reference: string, timeoutMs: number): Promise<{ status: number; body?: any }> {
  try {
    const r = await fetch(`${api.url}/api/v1/accounts/${account}/payments`, {
      method: 'POST',
      headers: { authorization: `Bearer ${api.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ amount, reference }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    return { status: r.status, body: await r.json() };
  } catch {
    return { status: 0 }; // the client gave up
  }
}

async function ledger(influx: InfluxV1): Promise<{ reference: string; account: string; fen: number; time: number }[]> {
  const rows = await influx.query(`SELECT fen FROM payment WHERE site = '${site.id}' GROUP BY account, reference`);
  return rows.map((r) => ({ reference: String(r.reference), account: String(r.account), fen: Number(r.fen), time: Number(r.time) }));
}

describe('payments under faults (real InfluxDB, real Redis)', () => {
  it('a write still in flight when the API timed out: the retries without time are the same payment, credited once, never refused', async () => {
    const db = `t_payfault_${randomBytes(4).toString('hex')}`;
    const direct = new InfluxV1({ url: process.env.SUBMETER_INFLUX_URL ?? 'http://127.0.0.1:8096', db });
    await direct.createDatabase();
    const proxy = await faultProxy(direct.url);
    const api = await serve(new InfluxV1({ url: proxy.url, db, timeoutMs: 600 }), 'hold');
    try {
      proxy.holdWrites();
      const first = await attempt(api, 'A101', '1.30', 'R-HOLD', 5000);
      expect(first.status).toBe(503); // the API's write timed out; the point is on its way
      expect(proxy.held()).toBe(1);
      const second = await attempt(api, 'A101', '1.30', 'R-HOLD', 5000); // stamped later
      expect(second.status).toBe(503); // the same payment; its write (the first one's point) is held too
      await proxy.release(); // both writes land now
      const third = await attempt(api, 'A101', '1.30', 'R-HOLD', 5000);
      expect(third.status).toBe(200);
      expect(third.body.status).toBe('duplicate');
      const points = await ledger(direct);
      expect(points).toEqual([{ reference: 'R-HOLD', account: 'A101', fen: 130, time: points[0].time }]);
      expect(Date.parse(third.body.payment.time)).toBe(Math.floor(points[0].time / 1000) * 1000); // the first attempt's instant
      // Another account or amount under the credited reference is refused: it is taken.
      expect((await attempt(api, 'A101', '1.31', 'R-HOLD', 5000)).status).toBe(409);
      expect((await attempt(api, 'A102', '1.30', 'R-HOLD', 5000)).status).toBe(409);
      expect(await ledger(direct)).toHaveLength(1);
    } finally {
      await api.close();
      await proxy.close();
      await direct.dropDatabase();
    }
  }, 60_000);

  describe('a private InfluxDB frozen (SIGSTOP) and thawed while payments are in flight', () => {
    let influxd: PrivateServer;
    beforeAll(async () => {
      influxd = await privateInflux();
    }, 60_000);
    afterAll(async () => influxd?.destroy());

    it('every payment ends credited exactly once, and no attempt of it is ever refused', async () => {
      const influx = new InfluxV1({ url: influxd.url, db: 'soak', timeoutMs: 500 });
      await influx.createDatabase();
      const api = await serve(influx, 'soak');
      const statuses: number[] = [];
      const expected = new Map<string, number>();
      let freezing = true;
      const freezer = (async () => {
        for (let i = 0; i < 5; i++) {
          await new Promise((r) => setTimeout(r, 300 + 150 * i));
          influxd.freeze();
          await new Promise((r) => setTimeout(r, 900));
          influxd.thaw();
        }
        freezing = false;
      })();
      const client = async (k: number) => {
        for (let i = 0; freezing || i < 3; i++) {
          const reference = `SOAK-${k}-${i}`;
          const fen = 100 + k * 10 + i;
          const account = k % 2 ? 'A101' : 'A102';
          expected.set(reference, fen);
          // Retry until the API says it is recorded, as a payment terminal would.
          for (let n = 0; n < 60; n++) {
            const r = await attempt(api, account, new Dec(fen).div(100).toFixed(2), reference, 800);
            statuses.push(r.status);
            if (r.status === 200 || r.status === 201) break;
            await new Promise((res) => setTimeout(res, 100));
          }
        }
      };
      try {
        await Promise.all([freezer, client(0), client(1), client(2), client(3)]);
        expect(statuses.filter((s) => s === 409)).toEqual([]);
        expect(statuses.filter((s) => s === 500)).toEqual([]);
        // Every retry loop ended in success, and the faults were felt (timeouts or 503s).
        expect(statuses.filter((s) => s === 201 || s === 200).length).toBe(expected.size);
        expect(statuses.some((s) => s === 0 || s === 503)).toBe(true);
        const points = await ledger(influx);
        expect(points.map((p) => [p.reference, p.fen]).sort()).toEqual([...expected.entries()].sort());
      } finally {
        influxd.thaw();
        await api.close();
      }
    }, 120_000);
  });
});
