import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from '../lib/redis.ts';
import type { RedisClient } from '../lib/redis.ts';
import { InfluxV1 } from '../influx/client.ts';
import { buildApp } from './app.ts';
import type { ApiDeps } from './app.ts';
import { SiteRef } from './site-ref.ts';
import { serveApp } from './testing/harness.ts';
import { createFixture, liveWithTenantTokens, NOW } from './testing/fixture.ts';
import type { Fixture } from './testing/fixture.ts';

/**
 * Issue 15: the tenant fast lane answers in front of Express's router (api/tenant-lane.ts).
 * Its answers must be the chain's, byte for byte: every request here goes to an app with
 * the lane and to the same app without it (`lane: false`, every request through Express),
 * and the two answers must have the same status, the same headers (all but Date; fetch
 * lists them by name), the same body and the same request-log line. Each lane route, zh and en, a
 * good, unknown and revoked token, another account's id, a bad query, a manager's token, a
 * blocked address, Redis down and InfluxDB down (a stored result missing), with the cache
 * off and on. With the cache off the lane must really answer (one Redis command for a good
 * request), so the comparison is not the chain against itself.
 */

interface Answer {
  status: number;
  headers: [string, string][];
  body: string;
  log: string[];
}

/** A pino logger at debug whose lines are kept (time, pid and the request's duration left out: they differ between any two requests). */
function capturingLogger(lines: string[]) {
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n').filter(Boolean)) {
        const { time: _t, pid: _p, hostname: _h, ms: _ms, err, ...rest } = JSON.parse(l) as Record<string, unknown>;
        lines.push(JSON.stringify({ ...rest, ...(err ? { err: (err as { message?: string }).message } : {}) }));
      }
      cb();
    },
  });
  return pino({ name: 'api', level: 'debug' }, sink);
}

/** One server of the app with and one without the lane, on the same stores; `ask` sends a request to both. */
async function pair(deps: Omit<ApiDeps, 'logger' | 'lane'>, laneRedis?: RedisClient) {
  const laneLog: string[] = [];
  const chainLog: string[] = [];
  const lane = await serveApp(buildApp({ ...deps, ...(laneRedis ? { redis: laneRedis } : {}), logger: capturingLogger(laneLog) }));
  const chain = await serveApp(buildApp({ ...deps, lane: false, logger: capturingLogger(chainLog) }));
  const one = async (base: string, log: string[], path: string, headers: Record<string, string>): Promise<Answer> => {
    log.length = 0;
    const r = await fetch(`${base}${path}`, { headers });
    const body = await r.text();
    // The request log is written at 'finish', which can follow the client's last byte.
    for (let i = 0; i < 50 && !log.some((l) => l.includes('"msg":"request"')); i++) await new Promise((ok) => setTimeout(ok, 10));
    return { status: r.status, headers: [...r.headers].filter(([k]) => k !== 'date'), body, log: [...log] };
  };
  return {
    async ask(path: string, headers: Record<string, string> = {}) {
      const viaLane = await one(lane.base, laneLog, path, headers);
      const viaChain = await one(chain.base, chainLog, path, headers);
      return { viaLane, viaChain };
    },
    async close() {
      await lane.close();
      await chain.close();
    },
  };
}

describe('the tenant lane answers exactly as the Express chain (real Redis and InfluxDB)', () => {
  let fx: Fixture;
  const tokens = new Map<string, string>();
  let manager = '';
  let revoked = '';

  beforeAll(async () => {
    fx = await createFixture('lane');
    const { tokens: each, store } = await liveWithTenantTokens(fx);
    for (const [k, v] of each) tokens.set(k, v);
    manager = (await store.create({ site: fx.site.id, role: 'manager' })).token;
    const gone = await store.create({ site: fx.site.id, role: 'tenant', account: 'A101' });
    await store.revoke(fx.site.id, gone.record.id);
    revoked = gone.token;
  }, 60_000);
  afterAll(async () => {
    await fx?.cleanup();
  });

  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
  /** Every GET route a tenant token may use, in both languages where it has them. */
  const routes = [
    '/api/v1/me',
    '/api/v1/accounts/A101/live',
    '/api/v1/accounts/A101/bills/2026-11',
    '/api/v1/accounts/A101/bills/2026-11?format=csv',
    '/api/v1/accounts/A101/bills/2026-11?format=html&lang=en',
    '/api/v1/accounts/A101/bills/2026-11?format=html&lang=zh',
    '/api/v1/accounts/A101/bills',
    '/api/v1/accounts/A101/payments',
    '/api/v1/accounts/A101/usage?from=2026-11-15&to=2026-11-16&interval=1h',
    '/api/v1/accounts/A101/alerts',
    '/api/v1/accounts/A101/alerts?lang=en',
    '/api/v1/accounts/A101/advice?from=2026-11-01&to=2026-11-15',
    '/api/v1/accounts/A101/relay',
    '/api/v1/accounts/A101/relay?lang=en',
    '/api/v1/topup/options',
  ];

  const same = (what: string, a: { viaLane: Answer; viaChain: Answer }) => {
    expect(a.viaLane.status, `${what}: status`).toBe(a.viaChain.status);
    expect(a.viaLane.headers, `${what}: headers`).toEqual(a.viaChain.headers);
    expect(a.viaLane.body, `${what}: body`).toBe(a.viaChain.body);
    expect(a.viaLane.log, `${what}: log lines`).toEqual(a.viaChain.log);
    expect(a.viaChain.log.filter((l) => l.includes('"msg":"request"')), `${what}: one request line`).toHaveLength(1);
  };

  for (const cacheMs of [0, 1000]) {
    it(`cache ${cacheMs ? 'on' : 'off'}: each route, good/unknown/revoked token, another account, a bad query, a manager, a blocked address`, async () => {
      // The lane app's own Redis connection, its commands counted (cache off: one per good request).
      const sent: string[] = [];
      const laneRedis = createRedis(process.env.SUBMETER_REDIS_URL ?? 'redis://127.0.0.1:6389', { maxRetriesPerRequest: 3 });
      const send = laneRedis.sendCommand.bind(laneRedis);
      (laneRedis as { sendCommand: unknown }).sendCommand = (c: { name: string }, ...rest: unknown[]) => {
        sent.push(c.name);
        return (send as (...a: unknown[]) => unknown)(c, ...rest);
      };
      const deps = { site: new SiteRef(fx.site), influx: fx.influx, redis: fx.redis, keyPrefix: fx.prefix, workersKeyPrefix: fx.workersPrefix, now: () => NOW, cacheMs, authFailures: { limit: 1000, windowMs: 60_000 } };
      const p = await pair(deps, laneRedis);
      try {
        const a101 = tokens.get('A101')!;
        for (const path of routes) {
          await p.ask(path, bearer(a101)); // computes and stores the result
          sent.length = 0;
          const a = await p.ask(path, bearer(a101));
          expect(a.viaLane.status, path).toBe(200);
          same(path, a);
          // The printable statement is computed per request and relay reads its entry after the script; the rest are one round trip.
          if (cacheMs === 0) expect(sent[0], `${path}: the lane answered`).toMatch(/^eval(sha)?$/);
          if (cacheMs === 0 && !path.includes('/relay') && !path.includes('format=html')) expect(sent, `${path}: the lane answered with one round trip`).toEqual([expect.stringMatching(/^eval(sha)?$/)]);
        }
        const others: [string, string, Record<string, string>][] = [
          ['unknown token', '/api/v1/accounts/A101/live', bearer('x'.repeat(43))],
          ['revoked token', '/api/v1/accounts/A101/bills/2026-11', bearer(revoked)],
          ["another account's id", '/api/v1/accounts/A102/live', bearer(a101)],
          ["another account's bill", '/api/v1/accounts/A102/bills/2026-11', bearer(a101)],
          ['an unknown account', '/api/v1/accounts/NOPE/payments', bearer(a101)],
          ['a bad query', '/api/v1/accounts/A101/usage?from=2026-11-15', bearer(a101)],
          ['a bad range', '/api/v1/accounts/A101/advice?from=2026-11-15&to=2026-11-01', bearer(a101)],
          ['a bad month', '/api/v1/accounts/A101/bills/2026-13', bearer(a101)],
          ['a manager on a tenant route', '/api/v1/accounts/A102/bills/2026-11', bearer(manager)],
          ['a manager route', '/api/v1/accounts', bearer(manager)],
          ['a tenant on a manager route', '/api/v1/accounts', bearer(a101)],
          ['a malformed header', '/api/v1/me', { authorization: 'Basic abc' }],
          ['no header, a stale session cookie', '/api/v1/me', { cookie: 'submeter_session=0123456789abcdef0123456789abcdef' }],
          ['a conditional request', '/api/v1/accounts/A101/payments', { ...bearer(a101), 'if-none-match': '*' }],
          ['a trailing slash', '/api/v1/accounts/A101/live/', bearer(a101)],
          ['an unknown path', '/api/v1/accounts/A101/nothing', bearer(a101)],
        ];
        for (const [what, path, headers] of others) same(what, await p.ask(path, headers));
        // A blocked address: 429 with Retry-After from both (the window is long, so the seconds agree).
        const key = `${fx.prefix}{${fx.site.id}}:auth-failures:`;
        const addresses = ['127.0.0.1', '::ffff:127.0.0.1'];
        for (const a of addresses) await fx.redis.set(`${key}${a}`, '5000', 'PX', 600_000);
        try {
          // The cache-on limiter trusts what it read for up to a second.
          if (cacheMs) await new Promise((ok) => setTimeout(ok, cacheMs + 100));
          const blocked = await p.ask('/api/v1/accounts/A101/live', bearer(a101));
          expect(blocked.viaLane.status).toBe(429);
          same('a blocked address', blocked);
        } finally {
          for (const a of addresses) await fx.redis.del(`${key}${a}`);
        }
      } finally {
        await p.close();
        laneRedis.disconnect();
      }
    }, 60_000);
  }

  it('Redis down: the same 503 with Retry-After (the token cannot be read)', async () => {
    for (const cacheMs of [0, 1000]) {
      const dead = createRedis('redis://127.0.0.1:1', { maxRetriesPerRequest: 0, enableOfflineQueue: false, lazyConnect: true });
      dead.on('error', () => undefined);
      const p = await pair({ site: new SiteRef(fx.site), influx: fx.influx, redis: dead, keyPrefix: fx.prefix, workersKeyPrefix: fx.workersPrefix, now: () => NOW, cacheMs });
      try {
        for (const path of ['/api/v1/accounts/A101/live', '/api/v1/accounts/A101/bills/2026-11', '/api/v1/me']) {
          const a = await p.ask(path, bearer(tokens.get('A101')!));
          expect(a.viaLane.status, path).toBe(503);
          expect(a.viaLane.headers.find(([k]) => k === 'retry-after')?.[1], path).toBe('5');
          same(`Redis down, cache ${cacheMs}: ${path}`, a);
        }
      } finally {
        await p.close();
        dead.disconnect();
      }
    }
  }, 60_000);

  it('InfluxDB down with no stored result yet: the same 503 with Retry-After', async () => {
    const influx = new InfluxV1({ url: 'http://127.0.0.1:1', db: 'none', timeoutMs: 2_000 });
    const p = await pair({ site: new SiteRef(fx.site), influx, redis: fx.redis, keyPrefix: fx.prefix, workersKeyPrefix: fx.workersPrefix, now: () => NOW, cacheMs: 0 });
    try {
      for (const path of ['/api/v1/accounts/A102/bills/2026-11', '/api/v1/accounts/A102/payments', '/api/v1/accounts/A102/alerts?lang=en']) {
        const a = await p.ask(path, bearer(tokens.get('A102')!));
        expect(a.viaLane.status, path).toBe(503);
        same(`InfluxDB down: ${path}`, a);
      }
    } finally {
      await p.close();
    }
  }, 60_000);
});
