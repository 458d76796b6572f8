import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync, gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// The API's and the workers' durable state registers itself on import (as the CLI does).
import { buildApp, RedisTokenStore, SiteRef } from '../../api/index.ts';
import '../../workers/index.ts';
import { createFixture, NOW, SITE_FILE } from '../../api/testing/fixture.ts';
import type { Fixture } from '../../api/testing/fixture.ts';
import { parseSiteYaml } from '../../core/index.ts';
import type { Site } from '../../core/index.ts';
import { InfluxV1, quoteIdent, quoteString } from '../../influx/client.ts';
import { relayLine } from '../../influx/relay.ts';
import { accountDayLine, meterCellLine, meterDayLine, shareBasisLine } from '../../influx/settlement-lines.ts';
import { RelayStore } from '../relay-store.ts';
import { WechatPay } from '../topup/index.ts';
import { deliver, WechatSim } from '../../sim/providers/index.ts';
import { closeQueues } from '../../workers/queues.ts';
import { processBalance } from '../../workers/balance.ts';
import { rollupAll, testContext } from '../../workers/testing/env.ts';
import { localMidnight } from '../../api/local-time.ts';
import { runCli } from '../../collector/test-support/site.ts';
import { privateRedis, privateRedisCluster } from '../../test/private-servers.ts';
import type { PrivateCluster, PrivateServer } from '../../test/private-servers.ts';
import { createRedis } from '../redis.ts';
import type { RedisClient } from '../redis.ts';
import { backupSite, restoreSite } from './site-backup.ts';
import { derivedKeysRegistered, globLiteral, measurementsRegistered, redisSectionsRegistered, scanKeys } from './registry.ts';

/**
 * Issue 16: `submeter backup` writes a site's durable state to one archive and
 * `submeter restore` loads it into empty servers. The API fixture's site (settled charges
 * with an adjustment, payments, readings, buckets, balances, events) gets tokens, a closed
 * month and audit entries through the API, and the state issues 10, 13 and 14 added: the
 * rollup's carried counter state (a real rollup run), the statement facts (meter_day,
 * meter_cell, share_basis, account_day), relay state and audit trail (a manager's trip,
 * the enforcement worker's and the collector's records), top-up orders (one paid through
 * the WeChat Pay simulator, one open) and a tenant's device session. After backup ->
 * restore into a fresh private Redis and a fresh InfluxDB database, the API on the
 * restored servers answers the same balances, statements, tokens, audit log, relay state
 * and top-up orders; the old tokens and the phone's session cookie still work; and every
 * registered key and measurement holds the same data as the source.
 */
const TOPUP_BLOCK = `
topup:
  providers: [wechat]
  presets: [50, 100]
  min: 10
  max: 2000
`;
let fx: Fixture;
let site: Site;
let siteText: string;
let wechat: WechatSim;
let cookie = '';
let paidOrder = '';
let openOrder = '';
let target: PrivateServer;
let targetRedis: RedisClient;
let targetInflux: InfluxV1;
let dir: string;
const servers: Server[] = [];
let manager = '';
let tenant = '';

async function serve(deps: { influx: InfluxV1; redis: RedisClient; prefix: string; workersPrefix: string }): Promise<string> {
  const app = buildApp({
    site: new SiteRef(site, join(dir, 'site.yaml')),
    influx: deps.influx,
    redis: deps.redis,
    keyPrefix: deps.prefix,
    workersKeyPrefix: deps.workersPrefix,
    now: () => NOW,
    cacheMs: 0,
    authFailures: { limit: 10_000, windowMs: 60_000 },
    topupProviders: new Map([['wechat', new WechatPay(wechat.credentials)]]),
  });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function get(base: string, path: string, token: string): Promise<{ status: number; text: string }> {
  const r = await fetch(`${base}${path}`, { headers: token.startsWith('cookie:') ? { cookie: token.slice(7) } : { authorization: `Bearer ${token}` } });
  return { status: r.status, text: await r.text() };
}

/**
 * What a manager and a tenant see: balances, statements (closed and open), payments, tokens,
 * months, audit, relays, top-ups, devices; and the tenant's phone (its session cookie).
 */
const VIEWS = () => [
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
  ['manager', '/api/v1/relay'],
  ['manager', '/api/v1/relay/audit'],
  ['manager', '/api/v1/accounts/A102/relay'],
  ['manager', '/api/v1/topups'],
  ['manager', '/api/v1/accounts/A101/sessions'],
  ['tenant', '/api/v1/accounts/A101/live'],
  ['tenant', '/api/v1/accounts/A101/bills/2026-10'],
  ['tenant', `/api/v1/accounts/A101/topups/${paidOrder}`],
  ['tenant', `/api/v1/accounts/A101/topups/${openOrder}`],
  ['phone', '/api/v1/accounts/A101/live'],
  ['phone', '/api/v1/accounts/A101/payments'],
] as const;

async function views(base: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [who, path] of VIEWS()) {
    const r = await get(base, path, who === 'manager' ? manager : who === 'tenant' ? tenant : `cookie:${cookie}`);
    expect(r.status, `${who} ${path}: ${r.text.slice(0, 200)}`).toBe(200);
    out[`${path} (${who})`] = r.text;
  }
  return out;
}

/** Every key of every registered section, relative to its prefix, with its value (and whether it expires). */
async function redisState(redis: RedisClient, prefixes: Record<string, string>): Promise<Record<string, unknown>> {
  const { redisSectionsRegistered: sections } = await import('./registry.ts');
  const out: Record<string, unknown> = {};
  for (const s of sections()) {
    const prefix = prefixes[s.prefixKind];
    for (const key of await s.keys(redis, { site: site.id, prefixes })) {
      const type = await redis.type(key);
      const value =
        type === 'hash' ? await redis.hgetall(key) : type === 'string' ? await redis.get(key) : type === 'zset' ? await redis.zrange(key, 0, -1, 'WITHSCORES') : type === 'stream' ? await redis.xrange(key, '-', '+') : type === 'set' ? (await redis.smembers(key)).sort() : await redis.lrange(key, 0, -1);
      out[`${s.id} ${key.slice(prefix.length)}`] = { type, value, expires: (await redis.pttl(key)) > 0 };
    }
  }
  return out;
}

/** Every point of the site in every registered measurement, as InfluxDB answers them. */
async function influxState(influx: InfluxV1): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const m of measurementsRegistered()) {
    out[m.measurement] = await influx.queryRaw(`SELECT * FROM ${quoteIdent(m.measurement)} WHERE ${quoteIdent('site')} = ${quoteString(site.id)} GROUP BY *`, { epoch: 'ms' });
  }
  return out;
}

/** Statement facts of 2026-10-10, as the settlement writes them (issue 10). */
function factLines(): string[] {
  const day = localMidnight('2026-10-10', site.timezone);
  return [
    meterDayLine(site.id, day, { meter: 'T101', startWh: 1_000_000, startMs: day, startEstimated: false, endWh: 1_050_000, endMs: day + 86_400_000, endEstimated: true, wh: 50_000 }),
    meterCellLine(site.id, day, { meter: 'T101', period: 'peak', wh: 30_000, gapWh: 2_000 }),
    shareBasisLine(site.id, day, { kind: 'common', pool: 'elevators', period: 'peak', wh: 3_600, basis: 'area', members: 3, weightTotal: 5_000_000 }),
    accountDayLine(site.id, day, { account: 'A101', areaWeight: 1_200_000, pools: ['elevators'] }),
  ];
}

beforeAll(async () => {
  fx = await createFixture('bk');
  siteText = readFileSync(SITE_FILE, 'utf8') + TOPUP_BLOCK;
  site = parseSiteYaml(siteText, 'site.yaml');
  wechat = await new WechatSim({ now: () => NOW }).start();
  dir = mkdtempSync(join(tmpdir(), 'submeter-backup-'));
  writeFileSync(join(dir, 'site.yaml'), siteText);
  const store = new RedisTokenStore(fx.redis, fx.prefix);
  manager = (await store.create({ site: fx.site.id, role: 'manager', label: 'ops' })).token;
  tenant = (await store.create({ site: fx.site.id, role: 'tenant', account: 'A101' })).token;
  // State made through the API: a closed month, a payment and a token (each audited).
  const base = await serve(fx);
  const post = (path: string, body?: unknown) => fetch(`${base}${path}`, { method: 'POST', headers: { authorization: `Bearer ${manager}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  expect((await post('/api/v1/months/2026-10/close')).status).toBe(200);
  expect((await post('/api/v1/accounts/A101/payments', { amount: '12.34', reference: 'BK-1', time: '2026-11-15T09:00:00+08:00' })).status).toBe(201);
  expect((await post('/api/v1/tokens', { role: 'viewer', label: 'auditor' })).status).toBe(201);
  // Prepaid enforcement: a manager's trip (override + audit), what the enforcement worker
  // decided and what the collector read back (lib/relay-store.ts), and the relay points.
  expect((await post('/api/v1/accounts/A102/relay/trip', { reason: 'meter tampering reported' })).status).toBe(200);
  const relays = new RelayStore(fx.redis, site.id, fx.workersPrefix);
  await relays.setWanted('A102', { state: 'open', version: 3, since: NOW - 600_000, reason: 'manual-trip', detail: 'manager', mode: 'dry-run', restoreFen: 0, warning: 'none', balanceFen: 12_00, decidedAt: NOW - 600_000 });
  await relays.setReadback('T102', { state: 'closed', raw: 0, text: 'relay closed', at: NOW - 60_000 });
  await relays.setWarnings({ A102: 'final' });
  await relays.audit({ time: NOW - 600_000, account: 'A102', kind: 'dry-run', reason: 'manual-trip', detail: 'nothing sent' });
  // Top-ups: one paid through the WeChat Pay simulator (credited to the ledger), one open.
  const topup = async (amount: string) => {
    const r = await fetch(`${base}/api/v1/accounts/A101/topups`, { method: 'POST', headers: { authorization: `Bearer ${tenant}`, 'content-type': 'application/json' }, body: JSON.stringify({ amount, provider: 'wechat' }) });
    expect(r.status, await r.clone().text()).toBe(201);
    return ((await r.json()) as { order: string }).order;
  };
  paidOrder = await topup('50.00');
  openOrder = await topup('100.00');
  expect((await deliver(wechat.pay(paidOrder))).status).toBe(204);
  // A tenant's phone signs in by a login link: its device session is durable state too.
  const link = (await (await post('/api/v1/accounts/A101/login-links', { label: 'phone' })).json()) as { code: string };
  const session = await fetch(`${base}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: link.code }) });
  expect(session.status).toBe(201);
  cookie = session.headers.get('set-cookie')!.split(';')[0];
  // The statement facts and relay points of issue 10 and 13, and a real rollup run (its carried counter state).
  await fx.influx.write([...factLines(), relayLine({ site: site.id, account: 'A102', time: NOW - 60_000, wanted: 'open', state: 'closed', mismatch: true, mode: 'dry-run', decision: 'manual-trip', deferred: '', restoreFen: 0, warning: 'final', pending: 0 })]);
  const ctx = testContext({ influx: fx.influx, redis: fx.redis, prefix: fx.workersPrefix, cleanup: async () => undefined }, [site], { now: NOW });
  try {
    await rollupAll(ctx, site.id);
  } finally {
    await closeQueues(ctx.queues);
  }
  target = await privateRedis();
  targetRedis = createRedis(target.url, { maxRetriesPerRequest: 3 });
  targetInflux = new InfluxV1({ url: fx.influx.url, db: `t_restored_${randomBytes(4).toString('hex')}`, timeoutMs: 20_000 });
}, 120_000);

afterAll(async () => {
  for (const s of servers) {
    await new Promise<void>((resolve) => s.close(() => resolve()));
    s.closeAllConnections();
  }
  targetRedis?.disconnect();
  await target?.destroy();
  await wechat?.stop();
  await targetInflux?.dropDatabase().catch(() => undefined);
  await fx?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('backup and restore', () => {
  it('the registry covers the API, the workers and every measurement', () => {
    expect(redisSectionsRegistered().map((s) => s.id).sort()).toEqual(
      expect.arrayContaining(['api.audit', 'api.closed-months', 'api.sessions', 'api.tokens', 'workers.alerts', 'workers.payments', 'workers.relay', 'workers.rollup', 'workers.settle-requests', 'workers.topup']),
    );
    expect(measurementsRegistered().map((m) => m.measurement)).toEqual(
      expect.arrayContaining(['reading', 'charge', 'payment', 'balance', 'site_day', 'event', 'meter_day', 'meter_cell', 'share_basis', 'account_day', 'relay']),
    );
  });

  // What the source answered and held, for the restores to compare with.
  let before: Record<string, string> = {};
  let redisBefore: Record<string, unknown> = {};
  let archive = '';

  it('restores into a fresh Redis and a fresh InfluxDB database: identical balances, statements, tokens, relay state and top-up orders', async () => {
    before = await views(await serve(fx));
    const sourcePrefixes = { api: fx.prefix, workers: fx.workersPrefix };
    redisBefore = await redisState(fx.redis, sourcePrefixes);
    const influxBefore = await influxState(fx.influx);
    archive = join(dir, 'plaza.jsonl.gz');
    const counts = await backupSite({ site: fx.site.id, siteFile: { name: 'site.yaml', text: siteText }, influx: fx.influx, redis: fx.redis, prefixes: sourcePrefixes, out: archive });
    expect(counts['redis:api.tokens']).toBe(1 + 3); // index + three tokens
    expect(counts['redis:api.audit']).toBe(1);
    expect(counts['redis:api.closed-months']).toBe(1);
    expect(counts['redis:api.sessions']).toBe(1 + 1); // index + the phone's session
    expect(counts['redis:workers.payments']).toBe(1);
    expect(counts['redis:workers.rollup']).toBeGreaterThanOrEqual(3); // state, watermarks, fingerprints
    expect(Object.keys(redisBefore).filter((k) => k.startsWith('workers.rollup ') && k.endsWith(':rollup-state'))).toHaveLength(1);
    expect(counts['redis:workers.relay']).toBe(5); // wanted, read-back, override, warnings, audit trail
    expect(counts['redis:workers.topup']).toBe(2 + 2); // orders and open indexes, two orders
    expect(counts['influx:charge']).toBeGreaterThan(700);
    expect(counts['influx:payment']).toBe(5); // three seeded, BK-1 and the paid top-up
    for (const m of ['meter_day', 'meter_cell', 'share_basis', 'account_day', 'relay']) expect(counts[`influx:${m}`], m).toBeGreaterThan(0);
    // No secret in the archive: only hashes.
    const text = gunzipSync(readFileSync(archive)).toString();
    for (const t of [manager, tenant]) expect(text).not.toContain(t.slice(4));

    // Other prefixes on the target: keys are kept relative to their prefix.
    const prefixes = { api: 'restored:api:', workers: 'restored' };
    const r = await restoreSite({ archive, influx: targetInflux, redis: targetRedis, prefixes });
    expect(r.site).toBe(fx.site.id);
    expect(r.siteFile?.text).toBe(siteText);
    const restored = await serve({ influx: targetInflux, redis: targetRedis, prefix: prefixes.api, workersPrefix: prefixes.workers });
    const after = await views(restored);
    expect(after).toEqual(before);
    expect(JSON.parse(before[`/api/v1/accounts/A101/topups/${paidOrder} (tenant)`]).state).toBe('paid');
    const relayList = JSON.parse(before['/api/v1/relay (manager)']) as { accounts: { account: string; override: unknown; power: string; wanted: string }[] };
    expect(relayList.accounts.find((a) => a.account === 'A102')).toMatchObject({ override: expect.objectContaining({ kind: 'force-trip', reason: 'meter tampering reported' }), power: 'on', wanted: 'off' });
    // Underneath the views: every registered key (relative to its prefix) and every point.
    expect(await redisState(targetRedis, prefixes)).toEqual(redisBefore);
    expect(await influxState(targetInflux)).toEqual(influxBefore);
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

  it('restores the same archive into a Redis Cluster (issue 15): the same answers and keys, no cross-slot transaction', async () => {
    expect(archive).not.toBe('');
    let cluster: PrivateCluster | undefined;
    let redis: RedisClient | undefined;
    const influx = new InfluxV1({ url: fx.influx.url, db: `t_restored_cluster_${randomBytes(4).toString('hex')}`, timeoutMs: 20_000 });
    try {
      cluster = await privateRedisCluster(3);
      redis = createRedis(cluster.url, { maxRetriesPerRequest: 3 });
      const prefixes = { api: 'submeter:api:', workers: 'submeter' };
      await restoreSite({ archive, influx, redis, prefixes });
      const restored = await serve({ influx, redis, prefix: prefixes.api, workersPrefix: prefixes.workers });
      expect(await views(restored)).toEqual(before);
      expect(await redisState(redis, prefixes)).toEqual(redisBefore);
      // No transaction of the restore spanned slots (Redis counts every error it answered).
      expect((await cluster.errorStats()).CROSSSLOT ?? 0).toBe(0);
    } finally {
      redis?.disconnect();
      await cluster?.destroy();
      await influx.dropDatabase().catch(() => undefined);
    }
  }, 120_000);

  it('refuses a truncated archive before writing anything', async () => {
    const archive = join(dir, 'whole.jsonl.gz');
    await backupSite({ site: fx.site.id, influx: fx.influx, redis: fx.redis, prefixes: { api: fx.prefix, workers: fx.workersPrefix }, out: archive });
    const lines = gunzipSync(readFileSync(archive)).toString().trimEnd().split('\n');
    const cut = join(dir, 'cut.jsonl.gz');
    writeFileSync(cut, gzipSync(lines.slice(0, -1).join('\n')));
    const empty = new InfluxV1({ url: fx.influx.url, db: `t_cut_${randomBytes(4).toString('hex')}` });
    await expect(restoreSite({ archive: cut, influx: empty, redis: targetRedis, prefixes: { api: 'cut:api:', workers: 'cut' } })).rejects.toThrow(/truncated; nothing was restored/);
    expect(await targetRedis.exists(`cut:api:{${fx.site.id}}:tokens`)).toBe(0);
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

  it("every Redis key of the site is backed up or declared derived, issue 15's live snapshot and version stamps included", async () => {
    // The keys issue 15 adds: the balance job's live snapshot, the ledger versions (the
    // fixture's payments) and the credentials version (a revocation).
    const ctx = testContext({ influx: fx.influx, redis: fx.redis, prefix: fx.workersPrefix, cleanup: async () => undefined }, [site], { now: NOW });
    try {
      await processBalance(ctx, { site: site.id });
    } finally {
      await closeQueues(ctx.queues);
    }
    const store = new RedisTokenStore(fx.redis, fx.prefix);
    const spare = await store.create({ site: site.id, role: 'viewer', label: 'spare' });
    expect(await store.revoke(site.id, spare.record.id)).toBe(true);
    const prefixes = { api: fx.prefix, workers: fx.workersPrefix };
    const c = { site: site.id, prefixes };
    const backedUp = new Set((await Promise.all(redisSectionsRegistered().map((s) => s.keys(fx.redis, c)))).flat());
    const derived = new Map<string, string>();
    for (const d of derivedKeysRegistered()) for (const p of d.patterns(c)) for (const k of await scanKeys(fx.redis, p)) derived.set(k, d.id);
    // Every key of the site (its hash tag under each prefix; the shared BullMQ queues are rebuilt at start).
    const all = [...(await scanKeys(fx.redis, `${globLiteral(`${fx.prefix}{${site.id}}`)}*`)), ...(await scanKeys(fx.redis, `${globLiteral(`${fx.workersPrefix}:{${site.id}}`)}*`))].sort();
    expect(all.length).toBeGreaterThan(10);
    expect(all.filter((k) => !backedUp.has(k) && !derived.has(k))).toEqual([]);
    expect(all.filter((k) => backedUp.has(k) && derived.has(k))).toEqual([]);
    const byId = (id: string) => [...derived].filter(([, d]) => d === id).map(([k]) => k);
    expect(byId('workers.live')).toEqual([`${fx.workersPrefix}:{${site.id}}:live`]);
    expect(byId('workers.ledger-versions').sort()).toEqual([`${fx.workersPrefix}:{${site.id}}:ledger-version`, `${fx.workersPrefix}:{${site.id}}:ledger-versions`]);
    expect(byId('api.credentials-version')).toEqual([`${fx.prefix}{${site.id}}:credentials-version`]);
  }, 60_000);
});
