import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync, gunzipSync } from 'node:zlib';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// The API's and the workers' durable state registers itself on import (as the CLI does).
import { buildApp, RedisTokenStore, SiteRef } from '../../api/index.ts';
import '../../workers/index.ts';
import { createFixture, NOW, SITE_FILE } from '../../api/testing/fixture.ts';
import type { Fixture } from '../../api/testing/fixture.ts';
import { InfluxV1 } from '../../influx/client.ts';
import { runCli } from '../../collector/test-support/site.ts';
import { privateRedis } from '../../test/private-servers.ts';
import type { PrivateServer } from '../../test/private-servers.ts';
import { backupSite, restoreSite } from './site-backup.ts';
import { measurementsRegistered, redisSectionsRegistered } from './registry.ts';

/**
 * Issue 16: `submeter backup` writes a site's durable state to one archive and
 * `submeter restore` loads it into empty servers. The API fixture's site (settled charges
 * with an adjustment, payments, readings, buckets, balances, events) gets tokens, a closed
 * month and audit entries through the API; after backup -> restore into a fresh private
 * Redis and a fresh InfluxDB database, the API on the restored servers answers the same
 * balances, statements, tokens and audit log, and the old tokens still work.
 */
let fx: Fixture;
let target: PrivateServer;
let targetRedis: Redis;
let targetInflux: InfluxV1;
let dir: string;
const servers: Server[] = [];
let manager = '';
let tenant = '';

async function serve(deps: { influx: InfluxV1; redis: Redis; prefix: string; workersPrefix: string }): Promise<string> {
  const app = buildApp({ site: new SiteRef(fx.site, join(dir, 'site.yaml')), influx: deps.influx, redis: deps.redis, keyPrefix: deps.prefix, workersKeyPrefix: deps.workersPrefix, now: () => NOW, cacheMs: 0, authFailures: { limit: 10_000, windowMs: 60_000 } });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function get(base: string, path: string, token: string): Promise<{ status: number; text: string }> {
  const r = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: r.status, text: await r.text() };
}

/** What a manager and a tenant see: balances, statements (closed and open), payments, tokens, months, audit. */
const VIEWS = [
  ['manager', '/api/v1/accounts'],
  ['manager', '/api/v1/accounts/A101/live'],
  ['manager', '/api/v1/accounts/A102/bills/2026-10'],
  ['manager', '/api/v1/accounts/A101/bills/2026-11'],
  ['manager', '/api/v1/accounts/A101/bills'],
  ['manager', '/api/v1/accounts/A101/payments'],
  ['manager', '/api/v1/stats/bills?from=2026-10-01&to=2026-11-15'],
  ['manager', '/api/v1/quality?from=2026-10-01&to=2026-11-16'],
  ['manager', '/api/v1/months'],
  ['manager', '/api/v1/tokens'],
  ['manager', '/api/v1/audit'],
  ['tenant', '/api/v1/accounts/A101/live'],
  ['tenant', '/api/v1/accounts/A101/bills/2026-10'],
] as const;

async function views(base: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [who, path] of VIEWS) {
    const r = await get(base, path, who === 'manager' ? manager : tenant);
    expect(r.status, `${path}: ${r.text.slice(0, 200)}`).toBe(200);
    out[path + (who === 'tenant' ? ' (tenant)' : '')] = r.text;
  }
  return out;
}

beforeAll(async () => {
  fx = await createFixture('bk');
  dir = mkdtempSync(join(tmpdir(), 'submeter-backup-'));
  copyFileSync(SITE_FILE, join(dir, 'site.yaml'));
  const store = new RedisTokenStore(fx.redis, fx.prefix);
  manager = (await store.create({ site: fx.site.id, role: 'manager', label: 'ops' })).token;
  tenant = (await store.create({ site: fx.site.id, role: 'tenant', account: 'A101' })).token;
  // State made through the API: a closed month, a payment and a token (each audited).
  const base = await serve(fx);
  const post = (path: string, body?: unknown) => fetch(`${base}${path}`, { method: 'POST', headers: { authorization: `Bearer ${manager}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  expect((await post('/api/v1/months/2026-10/close')).status).toBe(200);
  expect((await post('/api/v1/accounts/A101/payments', { amount: '12.34', reference: 'BK-1', time: '2026-11-15T09:00:00+08:00' })).status).toBe(201);
  expect((await post('/api/v1/tokens', { role: 'viewer', label: 'auditor' })).status).toBe(201);
  target = await privateRedis();
  targetRedis = new Redis(target.url, { maxRetriesPerRequest: 3 });
  targetInflux = new InfluxV1({ url: fx.influx.url, db: `t_restored_${randomBytes(4).toString('hex')}`, timeoutMs: 20_000 });
}, 120_000);

afterAll(async () => {
  for (const s of servers) {
    await new Promise<void>((resolve) => s.close(() => resolve()));
    s.closeAllConnections();
  }
  targetRedis?.disconnect();
  await target?.destroy();
  await targetInflux?.dropDatabase().catch(() => undefined);
  await fx?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('backup and restore', () => {
  it('the registry covers the API, the workers and every measurement', () => {
    expect(redisSectionsRegistered().map((s) => s.id).sort()).toEqual(expect.arrayContaining(['api.audit', 'api.closed-months', 'api.tokens', 'workers.alerts', 'workers.payments', 'workers.rollup']));
    expect(measurementsRegistered().map((m) => m.measurement)).toEqual(expect.arrayContaining(['reading', 'charge', 'payment', 'balance', 'site_day', 'event']));
  });

  it('restores into a fresh Redis and a fresh InfluxDB database: identical balances, statements, tokens', async () => {
    const before = await views(await serve(fx));
    const archive = join(dir, 'plaza.jsonl.gz');
    const counts = await backupSite({ site: fx.site.id, siteFile: { name: 'site.yaml', text: readFileSync(SITE_FILE, 'utf8') }, influx: fx.influx, redis: fx.redis, prefixes: { api: fx.prefix, workers: fx.workersPrefix }, out: archive });
    expect(counts['redis:api.tokens']).toBe(1 + 3); // index + three tokens
    expect(counts['redis:api.audit']).toBe(1);
    expect(counts['redis:api.closed-months']).toBe(1);
    expect(counts['redis:workers.payments']).toBe(1);
    expect(counts['influx:charge']).toBeGreaterThan(700);
    expect(counts['influx:payment']).toBe(4);
    // No secret in the archive: only hashes.
    const text = gunzipSync(readFileSync(archive)).toString();
    for (const t of [manager, tenant]) expect(text).not.toContain(t.slice(4));

    // Other prefixes on the target: keys are kept relative to their prefix.
    const prefixes = { api: 'restored:api:', workers: 'restored' };
    const r = await restoreSite({ archive, influx: targetInflux, redis: targetRedis, prefixes });
    expect(r.site).toBe(fx.site.id);
    expect(r.siteFile?.text).toBe(readFileSync(SITE_FILE, 'utf8'));
    const restored = await serve({ influx: targetInflux, redis: targetRedis, prefix: prefixes.api, workersPrefix: prefixes.workers });
    const after = await views(restored);
    expect(after).toEqual(before);
    // The payment index came along: the same reference is the same payment, not a second credit.
    const again = await fetch(`${restored}/api/v1/accounts/A101/payments`, {
      method: 'POST',
      headers: { authorization: `Bearer ${manager}`, 'content-type': 'application/json' },
      body: JSON.stringify({ amount: '12.34', reference: 'BK-1', time: '2026-11-15T09:00:00+08:00' }),
    });
    expect(again.status).toBe(200);

    // A second restore into the same servers is refused, naming what is there; --force overwrites.
    await expect(restoreSite({ archive, influx: targetInflux, redis: targetRedis, prefixes })).rejects.toThrow(/already holds state of site .*Redis keys .*InfluxDB/);
    await restoreSite({ archive, influx: targetInflux, redis: targetRedis, prefixes, force: true });
  }, 120_000);

  it('refuses a truncated archive before writing anything', async () => {
    const archive = join(dir, 'whole.jsonl.gz');
    await backupSite({ site: fx.site.id, influx: fx.influx, redis: fx.redis, prefixes: { api: fx.prefix, workers: fx.workersPrefix }, out: archive });
    const lines = gunzipSync(readFileSync(archive)).toString().trimEnd().split('\n');
    const cut = join(dir, 'cut.jsonl.gz');
    writeFileSync(cut, gzipSync(lines.slice(0, -1).join('\n')));
    const empty = new InfluxV1({ url: fx.influx.url, db: `t_cut_${randomBytes(4).toString('hex')}` });
    await expect(restoreSite({ archive: cut, influx: empty, redis: targetRedis, prefixes: { api: 'cut:api:', workers: 'cut' } })).rejects.toThrow(/truncated; nothing was restored/);
    expect(await targetRedis.exists(`cut:api:tokens:${fx.site.id}`)).toBe(0);
  }, 60_000);

  it('submeter backup and restore, as an operator runs them', async () => {
    const archive = join(dir, 'cli.jsonl.gz');
    const env = { SUBMETER_INFLUX_DB: fx.influx.db, SUBMETER_REDIS_URL: process.env.SUBMETER_REDIS_URL ?? 'redis://127.0.0.1:6389' };
    const b = await runCli(['backup', '--site', SITE_FILE, '--out', archive, '--redis-prefix', `api=${fx.prefix}`, `workers=${fx.workersPrefix}`], env);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout.trim()).toBe(archive);
    expect(b.stderr).toMatch(/backup: .*redis:api\.tokens 4.*influx:charge/);
    const db = `t_cli_restore_${randomBytes(4).toString('hex')}`;
    const siteOut = join(dir, 'restored-site.yaml');
    const rEnv = { SUBMETER_INFLUX_DB: db, SUBMETER_REDIS_URL: target.url };
    try {
      const r = await runCli(['restore', '--archive', archive, '--site-out', siteOut, '--redis-prefix', 'api=cli:api:', 'workers=cli'], rEnv);
      expect(r.code, r.stderr).toBe(0);
      expect(readFileSync(siteOut, 'utf8')).toBe(readFileSync(SITE_FILE, 'utf8'));
      const again = await runCli(['restore', '--archive', archive, '--redis-prefix', 'api=cli:api:', 'workers=cli'], rEnv);
      expect(again.code).toBe(3);
      expect(again.stderr).toMatch(/already holds state of site tj-plaza.*--force/);
    } finally {
      await new InfluxV1({ url: fx.influx.url, db }).dropDatabase().catch(() => undefined);
    }
    expect(existsSync(`${archive}.tmp`)).toBe(false);
  }, 120_000);
});
