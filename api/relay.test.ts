import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSiteYaml } from '../core/site/index.ts';
import { RelayStore } from '../lib/relay-store.ts';
import { processEnforcement } from '../workers/enforcement.ts';
import { closeRelayQueues } from '../workers/enforcement.ts';
import { closeQueues } from '../workers/queues.ts';
import { testContext, testEnv } from '../workers/testing/env.ts';
import type { TestEnv } from '../workers/testing/env.ts';
import { buildApp } from './app.ts';
import { RedisTokenStore } from './auth/token-store.ts';
import { openapiDocument, operations } from './openapi.ts';
import { SiteRef } from './site-ref.ts';
import { SITE_FILE } from './testing/fixture.ts';
import { OpenApiValidator } from './validate.ts';

/**
 * The relay routes (issue 13): what a tenant sees of its power supply, what managers see
 * and do, every response checked against the OpenAPI document, and a manager's forced
 * trip carried into a relay job by the enforcement worker.
 */

const NOW = Date.parse('2026-11-18T10:30:00+08:00'); // a Wednesday morning
const SITE = parseSiteYaml(
  readFileSync(SITE_FILE, 'utf8') +
    `
enforcement:
  mode: on
  accounts:
    A103: { protected: true }
`,
);
// A103 gets a relay too (DDS238 over TCP) so the protected case is reachable.
const site = { ...SITE, meters: SITE.meters.map((m) => (m.id === 'T103' ? { ...m, relay: 'plain' as const, connection: { protocol: 'modbus-tcp' as const, host: '127.0.0.1', port: 5020, unit: 13, map: 'dds238' as const } } : m)) };

const doc = openapiDocument();
const validator = new OpenApiValidator(doc);
const op = (id: string) => operations().find((o) => o.operationId === id)!;

let env: TestEnv;
let server: Server;
let base: string;
let store: RelayStore;
const tok: Record<string, string> = {};

async function call(id: string, params: Record<string, string>, token: string, opts: { query?: Record<string, string>; body?: unknown } = {}) {
  const o = op(id);
  const path = o.path.replace(/\{(\w+)\}/g, (_, k: string) => params[k]);
  const qs = opts.query ? `?${new URLSearchParams(opts.query)}` : '';
  const r = await fetch(`${base}${path}${qs}`, { method: o.method.toUpperCase(), headers: { authorization: `Bearer ${token}`, ...(opts.body ? { 'content-type': 'application/json' } : {}) }, body: opts.body ? JSON.stringify(opts.body) : undefined });
  const text = await r.text();
  const body = JSON.parse(text);
  expect(validator.response(o.path, o.method, r.status, r.headers.get('content-type') ?? '', body), `${id} ${r.status} ${text.slice(0, 300)}`).toEqual([]);
  return { status: r.status, body, text };
}

beforeAll(async () => {
  env = await testEnv('apirelay');
  store = new RelayStore(env.redis, site.id, env.prefix);
  const app = buildApp({ site: new SiteRef(site), influx: env.influx, redis: env.redis, keyPrefix: `${env.prefix}:api:`, workersKeyPrefix: env.prefix, now: () => NOW, cacheMs: 0 });
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const tokens = new RedisTokenStore(env.redis, `${env.prefix}:api:`);
  tok.manager = (await tokens.create({ site: site.id, role: 'manager' })).token;
  tok.viewer = (await tokens.create({ site: site.id, role: 'viewer' })).token;
  for (const a of ['A101', 'A102', 'A103']) tok[a] = (await tokens.create({ site: site.id, role: 'tenant', account: a })).token;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server?.close(() => resolve()));
  server?.closeAllConnections();
  await env?.cleanup();
});

describe('tenant: my power supply', () => {
  it('power off: why, since when and how much to pay to get it back, in zh and en; no other account in it', async () => {
    const since = NOW - 3_600_000;
    await store.setWanted('A102', { state: 'open', version: 2, since, reason: 'below-reconnect', detail: 'x', mode: 'on', restoreFen: 1235, warning: 'none', balanceFen: -1234, decidedAt: NOW });
    await store.setReadback('T102', { state: 'open', raw: 0x50, commandTrip: true, text: 'relay open', at: NOW - 60_000 });
    const zh = await call('getRelay', { account: 'A102' }, tok.A102);
    expect(zh.status).toBe(200);
    expect(zh.body).toEqual({
      account: 'A102',
      relay: true,
      mode: 'on',
      power: 'off',
      wanted: 'off',
      since: '2026-11-18T09:30:00+08:00',
      reason: 'below-reconnect',
      why: '预付费余额不足，已断电。缴清欠费后自动恢复供电。需缴纳至少 ¥12.35 恢复供电。',
      restore_amount: '12.35',
      cut_at: null,
      warning: 'none',
      read_at: '2026-11-18T10:29:00+08:00',
    });
    const en = await call('getRelay', { account: 'A102' }, tok.A102, { query: { lang: 'en' } });
    expect(en.body.why).toBe('Your prepaid balance is used up; power is off until the debt is paid, then it comes back by itself. Pay at least ¥12.35 to get power back.');
    for (const other of ['A101', 'A103', 'T101', 'T103']) expect(zh.text).not.toContain(other);
    // Another tenant's relay: the same 404 as a missing account.
    expect((await call('getRelay', { account: 'A102' }, tok.A101)).status).toBe(404);
  });

  it('a cut waiting for the night to end says when it comes', async () => {
    const until = Date.parse('2026-11-19T08:00:00+08:00');
    await store.setWanted('A102', { state: 'closed', version: 3, since: NOW, reason: 'balance-exhausted', detail: 'x', mode: 'on', restoreFen: 0, deferred: { reason: 'protected-window', until, detail: 'nights' }, warning: 'final', balanceFen: -50, decidedAt: NOW });
    await store.setReadback('T102', { state: 'closed', raw: 0, text: 'relay closed', at: NOW });
    const r = await call('getRelay', { account: 'A102' }, tok.A102);
    expect(r.body).toMatchObject({ power: 'on', wanted: 'on', cut_at: '2026-11-19T08:00:00+08:00', warning: 'final' });
    // In words and the site's local time, never an RFC 3339 stamp.
    expect(r.body.why).toBe('余额已用完。为避免夜间或节假日断电，将于 11月19日 08:00 断电，请在此之前缴费。');
    const en = await call('getRelay', { account: 'A102' }, tok.A102, { query: { lang: 'en' } });
    expect(en.body.why).toBe('Your balance is used up. Power is not cut at night or on holidays; it will be cut at 19 Nov 08:00 unless you pay before then.');
  });

  it('an account without a relay, and a site in dry-run, never read as cut', async () => {
    const none = await call('getRelay', { account: 'A101' }, tok.A101, { query: { lang: 'en' } });
    expect(none.body).toMatchObject({ relay: false, power: 'unknown', wanted: 'on', reason: 'no-relay', why: 'Your meter has no remote switch.' });
    await store.setWanted('A102', { state: 'open', version: 4, since: NOW, reason: 'balance-exhausted', detail: 'x', mode: 'dry-run', restoreFen: 100, warning: 'none', decidedAt: NOW });
    const dry = await call('getRelay', { account: 'A102' }, tok.A102, { query: { lang: 'en' } });
    expect(dry.body).toMatchObject({ mode: 'dry-run', wanted: 'on', reason: 'debt', restore_amount: null, since: null });
  });
});

describe('manager: every relay, overrides with a reason, the audit trail', () => {
  it('hold, release, force trip and force close; protected accounts are never forced off; tenants and viewers may not', async () => {
    const hold = await call('holdRelay', { account: 'A102' }, tok.manager, { body: { reason: 'night shift at the cafe', until: '2026-11-19T08:00:00+08:00' } });
    expect(hold.status).toBe(200);
    expect(hold.body).toMatchObject({ account: 'A102', override: { kind: 'hold', reason: 'night shift at the cafe', until: '2026-11-19T08:00:00+08:00' }, mode: 'on' });
    expect((await call('releaseRelay', { account: 'A102' }, tok.manager, { body: { reason: 'done' } })).status).toBe(200);
    expect((await call('releaseRelay', { account: 'A102' }, tok.manager, { body: { reason: 'again' } })).status).toBe(409);
    const prot = await call('tripRelay', { account: 'A103' }, tok.manager, { body: { reason: 'test' } });
    expect(prot.status).toBe(409);
    expect(prot.body.message).toMatch(/protected \(保电\)/);
    expect((await call('tripRelay', { account: 'A101' }, tok.manager, { body: { reason: 'test' } })).status).toBe(409);
    expect((await call('tripRelay', { account: 'A102' }, tok.viewer, { body: { reason: 'test' } })).status).toBe(403);
    expect((await call('tripRelay', { account: 'A102' }, tok.A102, { body: { reason: 'test' } })).status).toBe(403);
    expect((await call('holdRelay', { account: 'A102' }, tok.manager, { body: { reason: 'x' } })).status).toBe(400);
    expect((await call('holdRelay', { account: 'A102' }, tok.manager, { body: { reason: 'past', until: '2026-11-01T00:00:00+08:00' } })).status).toBe(409);
    const trip = await call('tripRelay', { account: 'A102' }, tok.manager, { body: { reason: 'safety inspection of the cafe wiring' } });
    expect(trip.body.override).toMatchObject({ kind: 'force-trip', until: null });
  });

  it("the manager's forced trip becomes one relay job at the next enforcement cycle, by that manager", async () => {
    const ctx = testContext(env, [site], { now: NOW });
    const r = await processEnforcement(ctx, { site: site.id });
    expect(r.decisions.A102).toMatchObject({ wanted: 'open', reason: 'force-trip' });
    expect(r.enqueued).toHaveLength(1);
    const cmd = (await store.commands()).get(r.enqueued[0])!;
    expect(cmd.by).toMatch(/^manager:[0-9a-f]{16}$/);
    await closeRelayQueues(ctx);
    await closeQueues(ctx.queues);
  });

  it('lists every relay with pending and failed commands, and the audit trail; viewers read, tenants may not', async () => {
    await store.putCommand({ id: 'relay|x|A103|open|9', account: 'A103', target: 'open', version: 9, reason: 'balance-exhausted', by: 'policy', status: 'refused', meters: { T103: { status: 'refused', replyText: 'password wrong', sends: 1 } }, createdAt: NOW - 1000, updatedAt: NOW - 500 });
    const list = await call('listRelays', {}, tok.viewer);
    expect(list.status).toBe(200);
    expect(list.body.accounts.map((a: { account: string }) => a.account)).toEqual(['A102', 'A103']);
    expect(list.body.accounts[0]).toMatchObject({ account: 'A102', override: { kind: 'force-trip' }, mode: 'on' });
    expect(list.body.accounts[1]).toMatchObject({ account: 'A103', protected: true, meters: [{ meter: 'T103', control: 'plain', state: 'unknown' }] });
    expect(list.body.pending).toHaveLength(1);
    expect(list.body.failed).toEqual([expect.objectContaining({ id: 'relay|x|A103|open|9', status: 'refused', meters: [{ meter: 'T103', status: 'refused', reply: 'password wrong', sends: 1 }] })]);
    expect((await call('listRelays', {}, tok.A102)).status).toBe(403);
    const audit = await call('getRelayAudit', {}, tok.manager, { query: { account: 'A102', limit: '50' } });
    expect(audit.body.entries.map((e: { kind: string }) => e.kind)).toEqual(expect.arrayContaining(['override', 'release', 'command']));
    expect(audit.body.entries.find((e: { kind: string }) => e.kind === 'override').by).toMatch(/^manager:/);
    expect((await call('getRelayAudit', {}, tok.viewer)).status).toBe(403);
    // ... and the API's own audit log has the manager actions too.
    const log = await call('getAudit', {}, tok.manager);
    expect(log.body.entries.map((e: { action: string }) => e.action)).toEqual(expect.arrayContaining(['relay.hold', 'relay.release', 'relay.force-trip']));
  });
});
