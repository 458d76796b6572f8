import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Point } from '@influxdata/influxdb-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { F, M, T } from '../influx/schema.ts';
import { scanKeys } from '../lib/redis.ts';
import { buildApp } from './app.ts';
import { RedisTokenStore } from './auth/token-store.ts';
import type { Role } from './auth/token-store.ts';
import { localMidnight } from './local-time.ts';
import { openapiDocument, operations } from './openapi.ts';
import type { Operation } from './openapi.ts';
import { SiteRef } from './site-ref.ts';
import { createFixture, NOW, SITE_FILE } from './testing/fixture.ts';
import type { Fixture } from './testing/fixture.ts';
import { OpenApiValidator } from './validate.ts';
import { TOPUP_OPERATIONS } from './topup-openapi.ts';

const doc = openapiDocument();
const validator = new OpenApiValidator(doc);
const ops = operations();
const op = (id: string): Operation => ops.find((o) => o.operationId === id)!;

let fx: Fixture;
let server: Server;
let base: string;
let dir: string;
const tok: Record<'manager' | 'viewer' | 'A101' | 'A102', string> = { manager: '', viewer: '', A101: '', A102: '' };
/** operationId -> statuses seen, to prove every operation was exercised. */
const seen = new Map<string, Set<number>>();

interface Res {
  status: number;
  type: string;
  body: any;
  text: string;
  headers: Headers;
}

/** Calls an operation and checks the response against the OpenAPI document. */
async function call(o: Operation, params: Record<string, string>, token: string | undefined, opts: { query?: Record<string, string>; body?: unknown; rawBody?: string } = {}): Promise<Res> {
  const path = o.path.replace(/\{(\w+)\}/g, (_, k: string) => encodeURIComponent(params[k]));
  const qs = opts.query ? `?${new URLSearchParams(opts.query)}` : '';
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (opts.body !== undefined || opts.rawBody !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(`${base}${path}${qs}`, { method: o.method.toUpperCase(), headers, body: opts.rawBody ?? (opts.body !== undefined ? JSON.stringify(opts.body) : undefined) });
  const text = await r.text();
  const type = r.headers.get('content-type') ?? '';
  const body = type.startsWith('application/json') ? JSON.parse(text) : text;
  const problems = validator.response(o.path, o.method, r.status, r.status === 204 ? undefined : type, r.status === 204 ? undefined : body);
  expect(problems, `${o.method.toUpperCase()} ${path}${qs} -> ${r.status} ${text.slice(0, 300)}`).toEqual([]);
  if (r.status >= 400) {
    expect(body).toMatchObject({ error: expect.any(String), message: expect.any(String), path: expect.any(String) });
  }
  if (!seen.has(o.operationId)) seen.set(o.operationId, new Set());
  seen.get(o.operationId)!.add(r.status);
  return { status: r.status, type, body, text, headers: r.headers };
}

/** Valid parameters for each operation (own account A101 where one is named). */
function argsFor(o: Operation, account = 'A101'): { params: Record<string, string>; query?: Record<string, string>; body?: unknown } {
  const params: Record<string, string> = { account, month: '2026-10', id: '0123456789abcdef', order: 'T1' };
  const q: Record<string, Record<string, string>> = {
    getUsage: { from: '2026-11-14', to: '2026-11-16', interval: '1h' },
    getAdvice: { from: '2026-11-14', to: '2026-11-16' },
    getBillStats: { from: '2026-10-01', to: '2026-11-01' },
    getMaster: { from: '2026-10-01', to: '2026-11-01' },
    getQuality: { from: '2026-10-01', to: '2026-11-01' },
    getReconcile: { from: '2026-10-01', to: '2026-11-01' },
  };
  const b: Record<string, unknown> = {
    recordPayment: { amount: '1.00', reference: `MATRIX-${Math.random().toString(36).slice(2)}`, time: '2026-11-15T09:00:00+08:00' },
    createLoginLink: { label: 'matrix' },
    startSession: { code: `sml_${'x'.repeat(43)}` }, // never issued: 401 for anyone
    createToken: { role: 'viewer', label: 'matrix' },
    holdRelay: { reason: 'matrix hold', until: '2026-11-16T10:00:00+08:00' },
    releaseRelay: { reason: 'matrix release' },
    tripRelay: { reason: 'matrix trip' },
    closeRelay: { reason: 'matrix close' },
    createTopup: { amount: '100.00', provider: 'wechat' },
    refundTopup: { amount: '1.00', reason: 'matrix' },
    runTopupReconciliation: { provider: 'wechat', date: '2026-11-14' },
  };
  // The relay overrides need an account with a relay meter: A102 (T102, relay: plain).
  if (['holdRelay', 'releaseRelay', 'tripRelay', 'closeRelay'].includes(o.operationId) && account === 'A101') params.account = 'A102';
  return { params, query: q[o.operationId], body: b[o.operationId] };
}

beforeAll(async () => {
  fx = await createFixture('api');
  dir = mkdtempSync(join(tmpdir(), 'submeter-api-'));
  copyFileSync(SITE_FILE, join(dir, 'site.yaml'));
  const app = buildApp({
    site: new SiteRef(fx.site, join(dir, 'site.yaml')),
    influx: fx.influx,
    redis: fx.redis,
    keyPrefix: fx.prefix,
    workersKeyPrefix: fx.workersPrefix,
    now: () => NOW,
    cacheMs: 0,
    authFailures: { limit: 10_000, windowMs: 60_000 },
  });
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const store = new RedisTokenStore(fx.redis, fx.prefix);
  tok.manager = (await store.create({ site: fx.site.id, role: 'manager' })).token;
  tok.viewer = (await store.create({ site: fx.site.id, role: 'viewer' })).token;
  tok.A101 = (await store.create({ site: fx.site.id, role: 'tenant', account: 'A101' })).token;
  tok.A102 = (await store.create({ site: fx.site.id, role: 'tenant', account: 'A102' })).token;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server?.close(() => resolve()));
  server?.closeAllConnections();
  await fx?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('authentication', () => {
  it('serves the OpenAPI 3.1 document without a token', async () => {
    const r = await fetch(`${base}/openapi.json`);
    expect(r.status).toBe(200);
    const d = (await r.json()) as { openapi: string; paths: object };
    expect(d.openapi).toBe('3.1.0');
    expect(Object.keys(d.paths).length).toBeGreaterThan(15);
  });

  it('answers 401 on every operation without a token, with a malformed header, and with an unknown token', async () => {
    for (const o of ops) {
      const a = argsFor(o);
      if (o.public) {
        // Redeeming a login link needs no token; an unknown code is 401 all the same.
        expect((await call(o, a.params, undefined, a)).status, o.operationId).toBe(401);
        continue;
      }
      const missing = await call(o, a.params, undefined, a);
      expect(missing.status, o.operationId).toBe(401);
      expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer/);
      const unknown = await call(o, a.params, 'smt_' + 'x'.repeat(43), a);
      expect(unknown.status, o.operationId).toBe(401);
      const r = await fetch(`${base}${o.path.replace(/\{(\w+)\}/g, (_, k: string) => a.params[k])}`, { method: o.method.toUpperCase(), headers: { authorization: `Basic ${tok.manager}` } });
      expect(r.status).toBe(401);
    }
  });

  it('refuses a token of another site', async () => {
    const store = new RedisTokenStore(fx.redis, fx.prefix);
    const other = (await store.create({ site: 'other-site', role: 'manager' })).token;
    expect((await call(op('getMe'), {}, other)).status).toBe(401);
  });

  it('stores only the sha256 of a token, never the token', async () => {
    // Every primary's keys (SCAN on a cluster client asks one node: the test then looked
    // at no key at all and passed, as its cluster run showed).
    const keys = await scanKeys(fx.redis, `${fx.prefix}*`);
    // The token records are there to look at: four tokens at least.
    expect(keys.length).toBeGreaterThanOrEqual(4);
    for (const k of keys) {
      const type = await fx.redis.type(k);
      const dump = type === 'string' ? await fx.redis.get(k) : type === 'hash' ? JSON.stringify(await fx.redis.hgetall(k)) : type === 'stream' ? JSON.stringify(await fx.redis.xrange(k, '-', '+')) : '';
      for (const t of Object.values(tok)) expect(`${k} ${dump}`).not.toContain(t.slice(4));
    }
  });
});

describe('roles: every operation for each role, and every cross-account attempt', () => {
  const expectFor = (o: Operation, role: Role, account = 'A101'): number => {
    if (o.public) return 401; // an unknown login-link code, whoever sends it
    // A tenant naming another account gets 404 before the role check (no existence leak).
    if (role === 'tenant' && o.path.includes('{account}') && account !== 'A101') return 404;
    if (!o.roles.includes(role)) return 403;
    // The fixture's site has no topup block (api/topup.test.ts covers a site with one).
    const topup: Record<string, number> = { createTopup: 409, getTopup: 404, refundTopup: 404, runTopupReconciliation: 409 };
    if (o.operationId in topup) return topup[o.operationId];
    // getFinalStatement: nobody moved out in the example site (a site where A102 did: below).
    const special: Record<string, number> = { getFinalStatement: 404, recordPayment: 201, createToken: 201, createLoginLink: 201, revokeToken: 404, revokeDeviceSession: 404, getReconcile: 409, endSession: 409 /* a token, not a device session */ };
    return special[o.operationId] ?? 200;
  };

  for (const who of ['manager', 'viewer', 'A101'] as const) {
    it(`${who}: each operation answers as its role allows`, async () => {
      const role: Role = who === 'A101' ? 'tenant' : who;
      for (const o of ops) {
        if (o.operationId === 'closeMonth' || o.operationId === 'reloadSite') continue; // state-changing: own tests below
        const a = argsFor(o);
        const r = await call(o, a.params, tok[who], a);
        expect(r.status, `${who} ${o.operationId}: ${r.text.slice(0, 200)}`).toBe(expectFor(o, role, a.params.account));
      }
    });
  }

  it('a tenant gets 404 for every other account on every per-account route (IDOR), including unknown ones', async () => {
    const perAccount = ops.filter((o) => o.path.includes('{account}'));
    expect(perAccount.length).toBeGreaterThanOrEqual(8);
    for (const o of perAccount) {
      for (const other of ['A102', 'A103', 'NOPE']) {
        const a = argsFor(o, other);
        const r = await call(o, a.params, tok.A101, a);
        expect(r.status, `${o.operationId} ${other}`).toBe(404);
        expect(r.body.error).toBe('not_found');
      }
      // ... and the same 404 text for an existing and a missing account: existence does not leak.
      const a1 = await call(o, argsFor(o, 'A103').params, tok.A101, argsFor(o, 'A103'));
      const a2 = await call(o, argsFor(o, 'ZZZ').params, tok.A101, argsFor(o, 'ZZZ'));
      expect(a1.body.message.replace('A103', 'X')).toBe(a2.body.message.replace('ZZZ', 'X'));
    }
  });

  it('A102 sees its own data, not A101s', async () => {
    const me = await call(op('getMe'), {}, tok.A102);
    expect(me.body).toMatchObject({ role: 'tenant', account: 'A102', account_name: 'Cafe 102' });
    const alerts = await call(op('listAlerts'), { account: 'A102' }, tok.A102);
    expect(alerts.body.alerts.map((e: { kind: string }) => e.kind)).toEqual(['low_balance']);
    const pays = await call(op('listPayments'), { account: 'A102' }, tok.A102);
    expect(pays.body.payments.map((p: { reference: string }) => p.reference)).toEqual(['BANK-0003']);
  });

  it('viewer and manager read any account; unknown accounts are 404', async () => {
    for (const who of ['viewer', 'manager'] as const) {
      expect((await call(op('getLive'), { account: 'A103' }, tok[who])).status).toBe(200);
      expect((await call(op('getLive'), { account: 'NOPE' }, tok[who])).status).toBe(404);
    }
  });
});

describe('tenant figures', () => {
  it('live status: period and price now, power, cost per hour, live balance, hours left, today by period', async () => {
    const r = await call(op('getLive'), { account: 'A101' }, tok.A101);
    expect(r.body).toEqual({
      account: 'A101',
      time: '2026-11-15T10:30:00+08:00',
      period: 'peak',
      price: '1.053200',
      power_kw: '3.600',
      cost_per_hour: '3.79', // 3.6 kW x 1.0532 = 3.79152
      balance: '412.35',
      balance_source: 'live',
      hours_left: '52.2', // the worker's 52.25 h, never shown rounded up (billing.md section 5)
      low_balance: '100.00',
      status: 'ok',
      today: [
        { period: 'peak', kwh: '9.000' }, // 10 buckets 08:00-10:30 x 900 Wh
        { period: 'flat', kwh: '3.600' },
        { period: 'valley', kwh: '7.000' }, // 28 x 250 Wh
      ],
      today_kwh: '19.600',
    });
  });

  it('without the balance worker the API computes the live figures with the same core function (no provisional charges for A102 today)', async () => {
    const r = await call(op('getLive'), { account: 'A102' }, tok.A102);
    expect(r.body.balance_source).toBe('computed');
    const stats = await call(op('getBillStats'), {}, tok.viewer, { query: { from: '2026-10-01', to: '2026-11-15' } });
    const a102 = stats.body.accounts.find((a: { account: string }) => a.account === 'A102');
    expect(r.body.balance).toBe(a102.closing_balance);
  });

  it('without a recent balance point: power from the last interval, cost per hour by the core (shares included)', async () => {
    const r = await call(op('getLive'), { account: 'A103' }, tok.manager);
    expect(r.body).toMatchObject({ power_kw: '12.000', cost_per_hour: '12.64', balance_source: 'computed', period: 'peak' }); // 1 kWh in 5 min = 12 kW x 1.0532
    const none = await call(op('getLive'), { account: 'A102' }, tok.A102);
    expect(none.body).toMatchObject({ power_kw: null, cost_per_hour: null });
  });

  it('statements equal the workers bill of the same series (workers/statement.ts liveBill, core billFromSettlement)', async () => {
    const { liveBill } = await import('../workers/statement.ts');
    for (const [from, to] of [['2026-10-01', '2026-11-01'], ['2026-11-01', '2026-12-01'], ['2026-10-05', '2026-10-20']]) {
      const theirs = (await liveBill(fx.influx, fx.site, from, to)).accounts;
      const stats = await call(op('getBillStats'), {}, tok.viewer, { query: { from, to } });
      for (const a of theirs) {
        const mine = stats.body.accounts.find((x: { account: string }) => x.account === a.account);
        expect({ kwh: mine.kwh, total_amount: mine.total_amount, opening_balance: mine.opening_balance, payments: mine.payments, closing_balance: mine.closing_balance }).toEqual({
          kwh: a.kwh,
          total_amount: a.total_amount,
          opening_balance: a.opening_balance,
          payments: a.payments,
          closing_balance: a.closing_balance,
        });
      }
      if (from === '2026-10-01') {
        const bill = await call(op('getBill'), { account: 'A101', month: '2026-10' }, tok.A101);
        expect(bill.body.lines.map(({ estimated: _e, ...l }: { estimated: boolean }) => l)).toEqual(theirs.find((a) => a.account === 'A101')!.lines);
      }
    }
  });

  it('usage per hour and period, in local time', async () => {
    const r = await call(op('getUsage'), { account: 'A101' }, tok.A101, { query: { from: '2026-11-15', to: '2026-11-16', interval: '1h' } });
    expect(r.body.points[0]).toEqual({ time: '2026-11-15T00:00:00+08:00', period: 'valley', kwh: '1.000' });
    expect(r.body.points.at(-1)).toEqual({ time: '2026-11-15T10:00:00+08:00', period: 'peak', kwh: '1.800' });
    const d = await call(op('getUsage'), { account: 'A101' }, tok.A101, { query: { from: '2026-11-14', to: '2026-11-16', interval: '1d' } });
    expect(d.body.points.map((p: { time: string }) => p.time.slice(0, 10))).toContain('2026-11-14');
    expect(d.body.points[0].time).toMatch(/T00:00:00\+08:00$/);
  });

  it('the October statement adds up: lines, adjustment, payments, balances', async () => {
    const r = await call(op('getBill'), { account: 'A101', month: '2026-10' }, tok.A101);
    const st = r.body;
    expect(st).toMatchObject({ account: 'A101', month: '2026-10', from: '2026-10-01', to: '2026-11-01', status: 'open', opening_balance: '500.00', payments: '2000.00' });
    const fen = (s: string) => Math.round(Number(s) * 100); // test-side check only
    expect(st.lines.reduce((s: number, l: { amount: string }) => s + fen(l.amount), 0)).toBe(fen(st.total_amount));
    expect(fen(st.closing_balance)).toBe(fen(st.opening_balance) + fen(st.payments) - fen(st.total_amount));
    expect(st.lines.map((l: { kind: string; pool?: string; period: string }) => `${l.kind}:${l.pool ?? ''}:${l.period}`)).toEqual(['own::peak', 'own::flat', 'own::valley', 'common:elevators:peak', 'common:lobby:flat', 'loss::peak']);
    expect(st.adjustments).toEqual([{ date: '2026-10-10', kind: 'own', period: 'peak', kwh: '2.500', price: '1.053200', amount: '2.63', reason: 'late readings of T101 (spool drained)' }]);
    expect(st.explain.pools.map((p: { id: string; includes_you: boolean }) => [p.id, p.includes_you])).toEqual([['elevators', true], ['lobby', true]]);
    // November opens where October closed.
    const nov = await call(op('getBill'), { account: 'A101', month: '2026-11' }, tok.A101);
    expect(nov.body.opening_balance).toBe(st.closing_balance);
  });

  it('the statement as CSV and as printable HTML in Chinese and English', async () => {
    const csv = await call(op('getBill'), { account: 'A101', month: '2026-10' }, tok.A101, { query: { format: 'csv' } });
    expect(csv.type).toMatch(/^text\/csv/);
    const rows = csv.text.trim().split('\r\n');
    expect(rows[0]).toBe('account,month,status,kind,pool,period,kwh,price,amount,estimated');
    expect(rows[1]).toMatch(/^A101,2026-10,open,own,,peak,\d+\.\d{3},1\.053200,\d+\.\d{2},$/);
    expect(rows.find((r) => r.startsWith('A101,2026-10,open,closing_balance,'))).toBeDefined();
    const zh = await call(op('getBill'), { account: 'A101', month: '2026-10' }, tok.A101, { query: { format: 'html', lang: 'zh' } });
    expect(zh.type).toMatch(/^text\/html/);
    expect(zh.text).toContain('电费账单');
    expect(zh.text).toContain('线损分摊');
    expect(zh.text).toContain('按面积');
    const en = await call(op('getBill'), { account: 'A101', month: '2026-10' }, tok.A101, { query: { format: 'html', lang: 'en' } });
    expect(en.text).toContain('Electricity statement');
    expect(en.text).toContain('never charged to tenants');
    expect(en.text).toContain('3%');
  });

  it('bills list, payment history, advice', async () => {
    const list = await call(op('listBills'), { account: 'A101' }, tok.A101);
    expect(list.body.bills.map((b: { month: string }) => b.month)).toEqual(['2026-11', '2026-10']);
    const pays = await call(op('listPayments'), { account: 'A101' }, tok.A101);
    expect(pays.body.payments.slice(-2)).toEqual([
      { time: '2026-11-03T09:00:00+08:00', account: 'A101', amount: '500.00', reference: 'BANK-0002' },
      { time: '2026-10-02T09:00:00+08:00', account: 'A101', amount: '2000.00', reference: 'BANK-0001' },
    ]);
    const adv = await call(op('getAdvice'), { account: 'A101' }, tok.A101, { query: { from: '2026-11-14', to: '2026-11-15' } });
    // Own energy of 2026-11-14 (k = 44 % 7 + 1 = 3): peak 13000, flat 10999, valley 5021 Wh.
    expect(adv.body.periods).toEqual([
      { period: 'sharp', kwh: '0.000', kwh_per_day: '0.000', price: '1.263840' },
      { period: 'peak', kwh: '13.000', kwh_per_day: '13.000', price: '1.053200' },
      { period: 'flat', kwh: '10.999', kwh_per_day: '10.999', price: '0.702100' },
      { period: 'valley', kwh: '5.021', kwh_per_day: '5.021', price: '0.351100' },
    ]);
    // 20 % of 13 kWh moved from peak to valley: 2.6 x (1.0532 - 0.3511) = 1.82546.
    expect(adv.body).toMatchObject({ peak_kwh: '13.000', shift_kwh: '2.600', shift_to: 'valley', saving: '1.83', night_base_kw: '1.000' }); // 250 Wh per 15 min
  });
});

describe('manager', () => {
  it('accounts with balances and status', async () => {
    const r = await call(op('listAccounts'), {}, tok.viewer);
    expect(r.body.accounts.map((a: { account: string; balance_source: string }) => [a.account, a.balance_source])).toEqual([
      ['A101', 'live'],
      ['A102', 'computed'],
      ['A103', 'computed'],
    ]);
    expect(r.body.accounts[0]).toMatchObject({ balance: '412.35', status: 'ok', hours_left: '52.2' });
  });

  it('bill statistics, master summary with abnormal loss, meter health and quality flags', async () => {
    const stats = await call(op('getBillStats'), {}, tok.manager, { query: { from: '2026-10-01', to: '2026-11-01' } });
    expect(stats.body.accounts).toHaveLength(3);
    const master = await call(op('getMaster'), {}, tok.manager, { query: { from: '2026-10-01', to: '2026-11-01' } });
    expect(master.body.days).toHaveLength(31);
    expect(master.body.days.some((d: { abnormal: boolean }) => d.abnormal)).toBe(true);
    expect(master.body.totals.loss_rate).toMatch(/^0\.\d{4}$/);
    const health = await call(op('getMeterHealth'), {}, tok.manager);
    expect(health.body.meters.find((m: { meter: string }) => m.meter === 'T102')).toMatchObject({ ok: false, consecutive_errors: 5, last_error: 'timeout' });
    const q = await call(op('getQuality'), {}, tok.manager, { query: { from: '2026-10-01', to: '2026-11-01' } });
    expect(q.body.flags).toEqual([{ time: '2026-10-20T01:00:00+08:00', kind: 'spike', account: '', meter: 'T103', detail: 'implied 450 kW > max_kw 300' }]);
  });

  it('records a payment once by reference; a conflicting reuse is 409; all of it audited', async () => {
    const p = op('recordPayment');
    const body = { amount: '88.50', reference: 'WX-777', time: '2026-11-15T08:00:00+08:00' };
    const first = await call(p, { account: 'A103' }, tok.manager, { body });
    expect(first.status).toBe(201);
    expect(first.body).toEqual({ status: 'recorded', payment: { time: '2026-11-15T08:00:00+08:00', account: 'A103', amount: '88.50', reference: 'WX-777' } });
    const again = await call(p, { account: 'A103' }, tok.manager, { body });
    expect(again.status).toBe(200);
    expect(again.body.status).toBe('duplicate');
    const clash = await call(p, { account: 'A103' }, tok.manager, { body: { ...body, amount: '99.00' } });
    expect(clash.status).toBe(409);
    const pays = await call(op('listPayments'), { account: 'A103' }, tok.manager);
    expect(pays.body.payments.filter((x: { reference: string }) => x.reference === 'WX-777')).toHaveLength(1);
    const audit = await call(op('getAudit'), {}, tok.manager, { query: { limit: '50' } });
    const actions = audit.body.entries.filter((e: { detail?: { reference?: string } }) => e.detail?.reference === 'WX-777').map((e: { action: string }) => e.action);
    expect(actions).toEqual(['payment.refused', 'payment.duplicate', 'payment.record']);
    expect(JSON.stringify(audit.body)).not.toContain(tok.manager.slice(4));
  });

  it('rejects bad payment bodies with 400 and the field', async () => {
    const p = op('recordPayment');
    for (const body of [{ amount: '-5', reference: 'X1' }, { amount: '1.234', reference: 'X1' }, { amount: '0', reference: 'X1' }, { reference: 'X1' }, { amount: '1.00', reference: 'X1', extra: 1 }]) {
      const r = await call(p, { account: 'A101' }, tok.manager, { body });
      expect(r.status, JSON.stringify(body)).toBe(400);
    }
    const bad = await call(p, { account: 'A101' }, tok.manager, { rawBody: '{"amount": ' });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('bad_json');
  });

  it('closes a month: the statement is frozen, later corrections show beside it', async () => {
    const close = op('closeMonth');
    expect((await call(close, { month: '2026-11' }, tok.manager)).status).toBe(409); // not over
    const unsettled = await call(close, { month: '2026-09' }, tok.manager); // no settlement at all
    expect(unsettled.status).toBe(409);
    expect(unsettled.body.message).toContain('(2026-09-30) is not settled');
    const before = await call(op('getBill'), { account: 'A102', month: '2026-10' }, tok.A102);
    const r = await call(close, { month: '2026-10' }, tok.manager);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ month: '2026-10', accounts: 3 });
    expect((await call(close, { month: '2026-10' }, tok.manager)).status).toBe(409);
    // A late correction of a closed day.
    await fx.influx.write(
      new Point(M.charge).tag(T.site, fx.site.id).tag(T.account, 'A102').tag(T.kind, 'own').tag(T.period, 'peak').tag(T.rev, '1').intField(F.wh, 1000).intField(F.fen, 105).stringField(F.price, '1.053200').stringField(F.reason, 'meter T102 replaced').timestamp(localMidnight('2026-10-20', fx.site.timezone)).toLineProtocol()!,
    );
    const after = await call(op('getBill'), { account: 'A102', month: '2026-10' }, tok.A102);
    expect(after.body.status).toBe('closed');
    expect(after.body.lines).toEqual(before.body.lines);
    expect(after.body.total_amount).toBe(before.body.total_amount);
    expect(after.body.corrections_after_close).toEqual([{ kind: 'own', period: 'peak', price: '1.053200', kwh: '1.000', amount: '1.05' }]);
    const months = await call(op('listMonths'), {}, tok.viewer);
    expect(months.body.months.map((m: { month: string }) => m.month)).toEqual(['2026-10']);
    const list = await call(op('listBills'), { account: 'A102' }, tok.A102);
    expect(list.body.bills.find((b: { month: string }) => b.month === '2026-10').status).toBe('closed');
  });

  it('a one-time login link signs a device in with a cookie; it works once; the device can be signed out', async () => {
    const link = await call(op('createLoginLink'), { account: 'A102' }, tok.manager, { body: { label: 'cafe phone', minutes: 10, base_url: 'https://power.example.test/tenant' } });
    expect(link.status).toBe(201);
    expect(link.body.url).toBe(`https://power.example.test/tenant/#login=${link.body.code}`);
    expect(link.body.code).toMatch(/^sml_[A-Za-z0-9_-]{43}$/);
    expect(link.body.qr_svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    const start = (code: string) => call(op('startSession'), {}, undefined, { body: { code } });
    const first = await start(link.body.code);
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ account: 'A102', account_name: 'Cafe 102' });
    const cookie = first.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^submeter_session=sms_[A-Za-z0-9_-]{43}; Max-Age=15552000; Path=\/; Expires=.*; HttpOnly; SameSite=Strict$/);
    expect((await start(link.body.code)).status).toBe(401); // used
    const jar = cookie.split(';')[0];
    const me = await fetch(`${base}/api/v1/me`, { headers: { cookie: jar } });
    expect(await me.json()).toMatchObject({ role: 'tenant', account: 'A102', token_id: first.body.session_id });
    expect((await fetch(`${base}/api/v1/accounts/A101/live`, { headers: { cookie: jar } })).status).toBe(404); // still only its own account
    const list = await call(op('listDeviceSessions'), { account: 'A102' }, tok.manager);
    expect(list.body.sessions).toEqual([{ id: first.body.session_id, account: 'A102', label: 'cafe phone', created: expect.any(String) }]);
    expect((await call(op('revokeDeviceSession'), { id: first.body.session_id }, tok.manager)).status).toBe(204);
    const after = await fetch(`${base}/api/v1/me`, { headers: { cookie: jar } });
    expect(after.status).toBe(401);
    expect(after.headers.get('set-cookie')).toMatch(/^submeter_session=; Path=\/; Expires=Thu, 01 Jan 1970/);
    // A second device signs itself out.
    const again = await call(op('createLoginLink'), { account: 'A102' }, tok.manager, { body: {} });
    const second = (await start(again.body.code)).headers.get('set-cookie')!.split(';')[0];
    const out = await fetch(`${base}/api/v1/session`, { method: 'DELETE', headers: { cookie: second } });
    expect(out.status).toBe(204);
    seen.get('endSession')!.add(204);
    expect((await fetch(`${base}/api/v1/me`, { headers: { cookie: second } })).status).toBe(401);
    const audit = await call(op('getAudit'), {}, tok.manager);
    expect(audit.body.entries.map((e: { action: string }) => e.action)).toEqual(expect.arrayContaining(['login-link.create', 'session.start', 'session.revoke']));
    expect(JSON.stringify(audit.body)).not.toContain(link.body.code);
  });

  it('creates, lists and revokes tokens; a revoked token is refused at once', async () => {
    const c = await call(op('createToken'), {}, tok.manager, { body: { role: 'tenant', account: 'A103', label: 'gym front desk' } });
    expect(c.status).toBe(201);
    expect(c.body.token).toMatch(/^smt_[A-Za-z0-9_-]{43}$/);
    expect((await call(op('getMe'), {}, c.body.token)).body).toMatchObject({ account: 'A103' });
    expect((await call(op('createToken'), {}, tok.manager, { body: { role: 'tenant' } })).status).toBe(400);
    expect((await call(op('createToken'), {}, tok.manager, { body: { role: 'tenant', account: 'NOPE' } })).status).toBe(404);
    const list = await call(op('listTokens'), {}, tok.manager);
    expect(list.text).not.toContain(c.body.token);
    expect(list.body.tokens.some((t: { id: string }) => t.id === c.body.record.id)).toBe(true);
    expect((await call(op('revokeToken'), { id: c.body.record.id }, tok.manager)).status).toBe(204);
    expect((await call(op('getMe'), {}, c.body.token)).status).toBe(401);
  });

  it('reloads the site file; a bad file is refused with every reason and the site stays', async () => {
    const file = join(dir, 'site.yaml');
    const good = readFileSync(file, 'utf8');
    writeFileSync(file, good.replace('tariff: commercial, opening_balance: "500.00"', 'tariff: nope, opening_balance: "500.00"').replace('method: consumption\n\nsettlement', 'method: sideways\n\nsettlement'));
    const bad = await call(op('reloadSite'), {}, tok.manager);
    expect(bad.status).toBe(422);
    expect(bad.body.error).toBe('invalid_site');
    expect(bad.body.issues.length).toBeGreaterThanOrEqual(1);
    expect(bad.body.issues[0]).toMatchObject({ path: expect.any(String), message: expect.any(String), line: expect.any(Number) });
    expect((await call(op('getMe'), {}, tok.A101)).status).toBe(200);
    writeFileSync(file, good.replace('id: tj-plaza', 'id: elsewhere'));
    expect((await call(op('reloadSite'), {}, tok.manager)).status).toBe(409);
    writeFileSync(file, good.replace('name: Plaza (example)', 'name: Plaza (renamed)'));
    const ok = await call(op('reloadSite'), {}, tok.manager);
    expect(ok.body).toMatchObject({ site: 'tj-plaza', name: 'Plaza (renamed)', accounts: 3 });
    expect((await call(op('getMe'), {}, tok.A101)).body.site_name).toBe('Plaza (renamed)');
    const audit = await call(op('getAudit'), {}, tok.manager);
    expect(audit.body.entries.filter((e: { action: string }) => e.action === 'site.reload').length).toBe(3);
  });

  it('validates parameters against the document: 400 with the parameter in path', async () => {
    const bill = await call(op('getBill'), { account: 'A101', month: '2026-13' }, tok.A101);
    expect(bill.status).toBe(400);
    const extra = await call(op('getLive'), { account: 'A101' }, tok.A101, { query: { debug: '1' } });
    expect(extra.status).toBe(400);
    expect(extra.body.path).toContain('debug');
    const noFrom = await call(op('getMaster'), {}, tok.manager, { query: { to: '2026-11-01' } });
    expect(noFrom.status).toBe(400);
    expect(noFrom.body.path).toMatch(/from$/);
    const tooMany = await call(op('getUsage'), { account: 'A101' }, tok.A101, { query: { from: '2026-01-01', to: '2026-11-01', interval: '15m' } });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.path).toMatch(/interval$/);
    const backwards = await call(op('getMaster'), {}, tok.manager, { query: { from: '2026-11-01', to: '2026-10-01' } });
    expect(backwards.status).toBe(400);
    const r = await fetch(`${base}/api/v1/nothing`, { headers: { authorization: `Bearer ${tok.manager}` } });
    expect(r.status).toBe(404);
    expect(await r.json()).toEqual({ error: 'not_found', message: 'no route GET /api/v1/nothing', path: '/api/v1/nothing' });
  });
});

describe('reconciliation', () => {
  it('a site with a utility tariff: the core reconcile on the stored day cells and statements', async () => {
    const { parseSiteYaml } = await import('../core/site/index.ts');
    // The utility charges exactly the tenants' TOU prices and no markup is allowed: a tenant
    // billed at those prices is never over the cap (issue 11: the flat-price cap flagged all).
    const site = parseSiteYaml(`${readFileSync(SITE_FILE, 'utf8')}\nutility: { tariff: commercial, markup_cap: 0 }\n`, 'with-utility.yaml');
    const app = buildApp({ site: new SiteRef(site), influx: fx.influx, redis: fx.redis, keyPrefix: fx.prefix, now: () => NOW, cacheMs: 0, authFailures: { limit: 10_000, windowMs: 60_000 } });
    const s = await new Promise<Server>((resolve) => {
      const x = app.listen(0, '127.0.0.1', () => resolve(x));
    });
    try {
      const r = await fetch(`http://127.0.0.1:${(s.address() as AddressInfo).port}/api/v1/reconcile?from=2026-10-01&to=2026-11-01`, { headers: { authorization: `Bearer ${tok.viewer}` } });
      const body = (await r.json()) as { utility: { lines: { period: string; kwh: string }[]; kwh: string }; accounts: { account: string; amount: string; utility_amount: string; over_cap: boolean }[]; recovery_rate: string };
      expect(r.status, JSON.stringify(body)).toBe(200);
      expect(validator.response('/api/v1/reconcile', 'get', 200, r.headers.get('content-type') ?? '', body)).toEqual([]);
      seen.set('getReconcile', new Set([...(seen.get('getReconcile') ?? []), 200]));
      // The fixture's site_day: peak cells only, master 200,000 + 5,000 k Wh per day.
      expect(body.utility.lines.map((l) => l.period)).toEqual(['peak']);
      expect(body.accounts.map((a) => a.account)).toEqual(['A101', 'A102', 'A103']);
      expect(body.recovery_rate).toMatch(/^\d\.\d{4}$/);
      for (const a of body.accounts) expect(a.over_cap, a.account).toBe(false);
      // Equal to the fen (A102 carries the month-close test's hand-made correction, whose
      // fen is not the rounded difference the workers would write).
      for (const a of body.accounts.filter((x) => x.account !== 'A102')) expect(a.utility_amount, a.account).toBe(a.amount);
    } finally {
      await new Promise<void>((resolve) => s.close(() => resolve()));
      s.closeAllConnections();
    }
  });
});

describe('a tenant who moved out (billing.md section 11)', () => {
  it('the final statement as JSON, CSV and printable HTML; a refund is a negative payment of kind refund', async () => {
    const { parseSiteYaml } = await import('../core/site/index.ts');
    const text = readFileSync(SITE_FILE, 'utf8')
      .replace('  - { id: A102,', '  - { id: OFFICE, tariff: commercial }\n  - { id: A102, move_out: "2026-11-10T12:00:00+08:00",');
    const site = parseSiteYaml(text.replace(/^site:\n/m, 'site:\n  landlord_account: OFFICE\n'), 'moved-out.yaml');
    const app = buildApp({ site: new SiteRef(site), influx: fx.influx, redis: fx.redis, keyPrefix: fx.prefix, workersKeyPrefix: fx.workersPrefix, now: () => NOW, cacheMs: 0, authFailures: { limit: 10_000, windowMs: 60_000 } });
    const s = await new Promise<Server>((resolve) => {
      const x = app.listen(0, '127.0.0.1', () => resolve(x));
    });
    const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
    const get = (path: string, token = tok.A102) => fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
    const pay = (body: object) => fetch(`${url}/api/v1/accounts/A102/payments`, { method: 'POST', headers: { authorization: `Bearer ${tok.manager}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    try {
      // A deposit taken at move-in: held apart, not in the balance.
      const dep = await pay({ amount: '2000.00', kind: 'deposit', reference: 'DEP-A102', time: '2026-09-01T09:00:00+08:00' });
      expect(dep.status, await dep.clone().text()).toBe(201);
      const r = await get('/api/v1/accounts/A102/final-statement');
      const body = (await r.json()) as Record<string, unknown>;
      expect(r.status, JSON.stringify(body)).toBe(200);
      expect(validator.response('/api/v1/accounts/{account}/final-statement', 'get', 200, r.headers.get('content-type') ?? '', body)).toEqual([]);
      seen.set('getFinalStatement', new Set([...(seen.get('getFinalStatement') ?? []), 200]));
      // The final statement is the verifiable statement of [2026-11-01, move-out) with the final block.
      expect(body).toMatchObject({ account: 'A102', move_out: '2026-11-10T12:00:00+08:00', from: '2026-11-01', to: '2026-11-11', status: 'final', statement_no: `${fx.site.id}-A102-202611-final` });
      expect(body.meters).toMatchObject([{ meter: 'T102', to: '2026-11-10T12:00:00+08:00', multiplier: '1', end_multiplier: '1', changes: [] }]);
      // The fixture's charges (other tests here add corrections): A102 is about 1580 short at
      // move-out, the deposit covers it and leaves a refund.
      const final = body.final as Record<string, string>;
      const fen = (v: unknown) => Math.round(Number(v) * 100);
      expect(body).toMatchObject({ total_amount: '463.12', payments: '0.00', deposit: '2000.00' });
      expect(final).toMatchObject({ deposit: '2000.00', amount_due: '0.00' });
      expect(fen(body.closing_balance)).toBe(fen(body.opening_balance) + fen(body.payments) - fen(body.total_amount));
      expect(fen(final.refund_due)).toBe(fen(body.closing_balance) + fen(final.deposit));
      expect(fen(final.refund_due)).toBeGreaterThan(0);
      expect(final.outstanding).toBe(final.refund_due);
      expect((await get('/api/v1/accounts/A101/final-statement', tok.A101)).status).toBe(404);
      // The November statement says when A102 left and what deposit it holds; A101's neither.
      const nov = (await (await get('/api/v1/accounts/A102/bills/2026-11')).json()) as Record<string, unknown>;
      expect(nov).toMatchObject({ move_in: null, move_out: '2026-11-10T12:00:00+08:00', deposit: '2000.00' });
      const a101 = (await (await get('/api/v1/accounts/A101/bills/2026-11', tok.A101)).json()) as Record<string, unknown>;
      expect([a101.move_out, a101.deposit]).toEqual([null, undefined]);
      expect(await (await get('/api/v1/accounts/A102/bills/2026-11?format=html&lang=en')).text()).toContain('Moved out: 2026-11-10T12:00:00+08:00 · Deposit held (not in the balance): 2000.00');
      const csv = await (await get('/api/v1/accounts/A102/final-statement?format=csv')).text();
      expect(csv.split('\r\n')[0]).toBe('account,month,status,kind,pool,period,kwh,price,amount,estimated');
      expect(csv).toContain(`A102,2026-11,final,outstanding,,,,,${final.outstanding},`);
      expect(await (await get('/api/v1/accounts/A102/final-statement?format=html&lang=zh')).text()).toContain('退租结算单');
      expect(await (await get('/api/v1/accounts/A102/final-statement?format=html&lang=en')).text()).toContain('Final statement');
      // The refund closes it: a negative payment of kind refund, through the one payment path.
      const due = String(final.refund_due);
      const post = await pay({ amount: `-${due}`, kind: 'refund', reference: 'RF-A102', time: '2026-11-11T10:00:00+08:00' });
      const posted = (await post.json()) as Record<string, unknown>;
      expect(post.status, JSON.stringify(posted)).toBe(201);
      expect(posted).toEqual({ status: 'recorded', payment: { time: '2026-11-11T10:00:00+08:00', account: 'A102', amount: `-${due}`, reference: 'RF-A102', kind: 'refund' } });
      const after = ((await (await get('/api/v1/accounts/A102/final-statement')).json()) as { final: Record<string, unknown> }).final;
      expect(after.after_move_out).toEqual([{ time: '2026-11-11T10:00:00+08:00', kind: 'refund', amount: `-${due}`, reference: 'RF-A102' }]);
      expect(after.outstanding).toBe('0.00');
      const wrongSign = await pay({ amount: '5.00', kind: 'refund', reference: 'RF-X' });
      expect(wrongSign.status).toBe(400);
      expect(((await wrongSign.json()) as { message: string }).message).toMatch(/a refund is money paid back: a negative amount/);
    } finally {
      await new Promise<void>((resolve) => s.close(() => resolve()));
      s.closeAllConnections();
    }
  });
});

describe('stores down', () => {
  it('InfluxDB unreachable: 503 with Retry-After in the error shape, not a 500', async () => {
    const { InfluxV1 } = await import('../influx/client.ts');
    const app = buildApp({ site: new SiteRef(fx.site), influx: new InfluxV1({ url: 'http://127.0.0.1:9', db: 'none', timeoutMs: 2000 }), redis: fx.redis, keyPrefix: fx.prefix, now: () => NOW, cacheMs: 0, authFailures: { limit: 10_000, windowMs: 60_000 } });
    const s = await new Promise<Server>((resolve) => {
      const x = app.listen(0, '127.0.0.1', () => resolve(x));
    });
    try {
      const r = await fetch(`http://127.0.0.1:${(s.address() as AddressInfo).port}/api/v1/accounts/A101/live`, { headers: { authorization: `Bearer ${tok.A101}` } });
      expect(r.status).toBe(503);
      expect(r.headers.get('retry-after')).toBe('5');
      expect(validator.response('/api/v1/accounts/{account}/live', 'get', 503, r.headers.get('content-type') ?? '', await r.json())).toEqual([]);
    } finally {
      await new Promise<void>((resolve) => s.close(() => resolve()));
      s.closeAllConnections();
    }
  });
});

describe('auth failure rate limit', () => {
  it('after the limit of failures an address gets 429, even with a valid token, until the window ends', async () => {
    await fx.redis.del(`${fx.prefix}{${fx.site.id}}:auth-failures:127.0.0.1`); // the other tests' failures
    const app = buildApp({ site: new SiteRef(fx.site), influx: fx.influx, redis: fx.redis, keyPrefix: fx.prefix, now: () => NOW, authFailures: { limit: 3, windowMs: 60_000 } });
    const s = await new Promise<Server>((resolve) => {
      const x = app.listen(0, '127.0.0.1', () => resolve(x));
    });
    try {
      const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}/api/v1/me`;
      expect((await fetch(url, { headers: { authorization: `Bearer ${tok.A101}` } })).status).toBe(200);
      for (let i = 0; i < 3; i++) expect((await fetch(url, { headers: { authorization: 'Bearer smt_wrongwrongwrong' } })).status).toBe(401);
      const blocked = await fetch(url, { headers: { authorization: `Bearer ${tok.A101}` } });
      expect(blocked.status).toBe(429);
      expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(validator.response('/api/v1/me', 'get', 429, blocked.headers.get('content-type') ?? '', await blocked.json())).toEqual([]);
    } finally {
      await new Promise<void>((resolve) => s.close(() => resolve()));
      s.closeAllConnections();
    }
  });
});

describe('conformance coverage', () => {
  it('every operation was called and answered a documented success', () => {
    for (const o of ops) {
      if ((TOPUP_OPERATIONS as readonly string[]).includes(o.operationId)) continue; // api/topup.test.ts
      const statuses = [...(seen.get(o.operationId) ?? [])];
      expect(statuses.some((s) => s >= 200 && s < 300), `${o.operationId}: ${statuses.join(',')}`).toBe(true);
    }
  });
});
