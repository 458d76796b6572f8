import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { privateInflux, privateRedis } from '../test/private-servers.ts';
import type { PrivateServer } from '../test/private-servers.ts';
import { RedisTokenStore } from './auth/token-store.ts';
import { SITE_FILE } from './testing/fixture.ts';

/**
 * Issue 11: the API could not start while InfluxDB was down (the start-up CREATE DATABASE
 * exited the process, so a restart during an outage crash-looped), and its Redis client
 * had no error listener. `submeter api` runs here as its own process against a private
 * InfluxDB that is stopped, then started, then stopped and started again, and a private
 * Redis that goes away and comes back.
 */
const repo = fileURLToPath(new URL('../', import.meta.url));
let influxd: PrivateServer;
let redisd: PrivateServer;
let api: ChildProcess;
let url = '';
let stderr = '';
let token = '';

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms\n${stderr.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const get = (path: string) => fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(15_000) });

beforeAll(async () => {
  [influxd, redisd] = await Promise.all([privateInflux({ started: false }), privateRedis()]);
  const redis = new Redis(redisd.url);
  token = (await new RedisTokenStore(redis).create({ site: 'tj-plaza', role: 'tenant', account: 'A101' })).token;
  redis.disconnect();
  api = spawn(process.execPath, [join(repo, 'bin/submeter.js'), 'api', '--site', SITE_FILE, '--port', '0'], {
    env: { ...process.env, SUBMETER_INFLUX_URL: influxd.url, SUBMETER_INFLUX_DB: 'down', SUBMETER_REDIS_URL: redisd.url, SUBMETER_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  api.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  url = await until('the API listens', async () => /submeter api: (http:\/\/\S+) /.exec(stderr)?.[1]);
}, 90_000);

afterAll(async () => {
  api?.kill('SIGTERM');
  await Promise.all([influxd?.destroy(), redisd?.destroy()]);
});

describe('the API while its stores come and go (its own process, private servers)', () => {
  it('starts with InfluxDB down; serves the page, the document and who-am-I; 503 with Retry-After for figures', async () => {
    expect(api.exitCode).toBeNull();
    expect((await fetch(`${url}/`)).status).toBe(200);
    expect((await fetch(`${url}/openapi.json`)).status).toBe(200);
    expect(await (await get('/api/v1/me')).json()).toMatchObject({ role: 'tenant', account: 'A101' });
    const live = await get('/api/v1/accounts/A101/live');
    expect(live.status).toBe(503);
    expect(live.headers.get('retry-after')).toBe('5');
    const text = await live.text();
    expect(JSON.parse(text)).toMatchObject({ error: 'unavailable' });
    expect(text).not.toMatch(/influx|fetch failed|ECONNREFUSED|127\.0\.0\.1/i);
  });

  it('recovers by itself when InfluxDB starts: the database is created and figures are served', async () => {
    await influxd.start();
    const body = await until('live status served', async () => {
      const r = await get('/api/v1/accounts/A101/live');
      return r.status === 200 ? ((await r.json()) as { balance: string }) : undefined;
    });
    expect(body.balance).toBe('500.00');
    await influxd.stop();
    await new Promise((r) => setTimeout(r, 1100)); // past the 1 s statement cache
    expect((await get('/api/v1/accounts/A101/live')).status).toBe(503);
    await influxd.start();
    await until('served again', async () => ((await get('/api/v1/accounts/A101/live')).status === 200 ? true : undefined));
  }, 90_000);

  it('Redis going away is a 503 and a logged warning, never an unhandled error or a crash; it reconnects', async () => {
    await redisd.stop('SIGKILL');
    const r = await get('/api/v1/me');
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBe('5');
    await new Promise((res) => setTimeout(res, 1500)); // several reconnect attempts fail meanwhile
    expect(api.exitCode).toBeNull();
    await redisd.start();
    await until('who-am-I served again', async () => ((await get('/api/v1/me')).status === 200 ? true : undefined));
    expect(stderr).toContain('Redis unavailable');
    expect(stderr).not.toContain('Unhandled error event');
  }, 60_000);
});
