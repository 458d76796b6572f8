import { Point } from '@influxdata/influxdb-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLowBalance } from '../core/index.ts';
import { F, M, T } from '../influx/schema.ts';
import { RelayStore } from '../lib/relay-store.ts';
import { recordPayment } from '../workers/payments.ts';
import { RedisTokenStore } from './auth/token-store.ts';
import { localMidnight } from './local-time.ts';
import { operations } from './openapi.ts';
import { createFixture, NOW } from './testing/fixture.ts';
import type { Fixture } from './testing/fixture.ts';
import { startHarness } from './testing/harness.ts';
import type { Harness } from './testing/harness.ts';

/**
 * Issue 11: a tenant sees only its own account. Every route a tenant token can call (and
 * those it may not: their 403s too), in every format and language, is scanned for another
 * account's id, name, meter or payment, and for storage-engine text. The world holds what
 * leaked before: a refused payment_conflict on A101 whose detail names A102's payment, an
 * adjustment whose reason names another tenant's meter, pool member lists, and manager-side
 * alarms.
 */
let fx: Fixture;
let h: Harness;
let tenant = '';
const SECRET = ['A102', 'A103', 'Cafe 102', 'Gym 103', 'T102', 'T103', 'BANK-0003'];
const STORAGE = /influx|measurement|line protocol|database not found|\bSELECT \S+ FROM\b/i;

beforeAll(async () => {
  fx = await createFixture('scan');
  h = await startHarness(fx);
  tenant = (await new RedisTokenStore(fx.redis, fx.prefix).create({ site: fx.site.id, role: 'tenant', account: 'A101' })).token;
  // A manager reuses A102's reference for A101: refused, and recorded as a payment_conflict event on A101.
  await expect(recordPayment({ site: fx.site, influx: fx.influx, redis: fx.redis, keyPrefix: fx.workersPrefix }, { account: 'A101', fen: 30_000, reference: 'BANK-0003', time: NOW - 7_200_000 })).rejects.toThrow(/already used/);
  const tz = fx.site.timezone;
  await fx.influx.write([
    // The detail as the balance worker writes it: the core's reason (api/tenant-events.ts reads it).
    new Point(M.event).tag(T.site, fx.site.id).tag(T.kind, 'low_balance').tag(T.account, 'A101').stringField(F.detail, checkLowBalance(fx.site.accounts[0], { armed: true }, { balanceFen: 9520, hoursLeft: 30.5, paidSinceLastCheck: false }).reason!).floatField(F.value, 95.2).timestamp(NOW - 600_000).toLineProtocol()!,
    new Point(M.event).tag(T.site, fx.site.id).tag(T.kind, 'meter_offline').tag(T.meter, 'T102').stringField(F.detail, 'no reading since 2026-11-15T09:00:00+08:00').floatField(F.value, 3600).timestamp(NOW - 900_000).toLineProtocol()!,
    new Point(M.event).tag(T.site, fx.site.id).tag(T.kind, 'abnormal_loss').stringField(F.detail, '2026-11-14: 3.000 kWh of loss above the normal rate').floatField(F.value, 3).timestamp(localMidnight('2026-11-14', tz)).toLineProtocol()!,
    new Point(M.charge).tag(T.site, fx.site.id).tag(T.account, 'A101').tag(T.kind, 'common').tag(T.pool, 'lobby').tag(T.period, 'flat').tag(T.rev, '1').intField(F.wh, 100).intField(F.fen, 7).stringField(F.price, '0.702100').stringField(F.reason, 'readings after the day was settled: T102 (silent 2026-11-02T20:55:09+08:00 to 2026-11-03T01:00:12+08:00)').timestamp(localMidnight('2026-11-03', tz)).toLineProtocol()!,
  ]);
}, 60_000);

afterAll(async () => {
  await h?.close();
  await fx?.cleanup();
});

describe("a tenant's answers hold nothing of other accounts and no storage text", () => {
  it('every route, every format and language, and the page files', async () => {
    const scanned: string[] = [];
    const scan = (what: string, text: string) => {
      scanned.push(what);
      for (const s of SECRET) expect(text, `${what} contains ${s}`).not.toContain(s);
      expect(text, what).not.toMatch(STORAGE);
    };
    const query: Record<string, string> = {
      getUsage: '?from=2026-11-14&to=2026-11-16&interval=1h',
      getAdvice: '?from=2026-10-01&to=2026-11-15',
      getBillStats: '?from=2026-10-01&to=2026-11-01',
      getMaster: '?from=2026-10-01&to=2026-11-01',
      getQuality: '?from=2026-10-01&to=2026-11-01',
      getReconcile: '?from=2026-10-01&to=2026-11-01',
      getAudit: '?limit=10',
    };
    for (const o of operations()) {
      const path = o.path.replace('{account}', 'A101').replace('{month}', '2026-11').replace('{id}', '0123456789abcdef');
      const variants = o.operationId === 'getBill' ? ['?format=json', '?format=csv', '?format=html&lang=zh', '?format=html&lang=en', '?format=json&lang=en'] : o.operationId === 'listAlerts' || o.operationId === 'getRelay' ? ['?lang=zh', '?lang=en'] : [query[o.operationId] ?? ''];
      for (const v of variants) {
        const r = await h.req(o.method.toUpperCase(), `${path}${v}`, { token: tenant, ...(o.method === 'post' ? { body: {} } : {}) });
        expect(r.status, `${o.operationId}${v}: ${r.text.slice(0, 200)}`).toBeLessThan(500);
        scan(`${o.method} ${path}${v} -> ${r.status}`, r.text);
      }
    }
    for (const f of ['/', '/index.html', '/app.js', '/common.js', '/i18n.js', '/topup.js', '/style.css']) scan(f, await (await fetch(`${h.base}${f}`)).text());
    expect(scanned.length).toBeGreaterThan(25);
  });

  it("the supply card: a cut tenant's relay answer names nothing of the others, in either language", async () => {
    // A102's relay (T102) is cut; what the workers keep for managers names other accounts
    // (the policy's detail, a manager's override on A101, A103's read-back): none of it may
    // reach A102.
    const store = new RelayStore(fx.redis, fx.site.id, fx.workersPrefix);
    await store.setWanted('A102', { state: 'open', version: 3, since: NOW - 3_600_000, reason: 'balance-exhausted', detail: 'balance -12.34 + grace 0.00 <= 0 (bus shared with A101 Shop 101, T101)', mode: 'on', restoreFen: 1235, warning: 'none', balanceFen: -1234, decidedAt: NOW });
    await store.setReadback('T102', { state: 'open', raw: 0x50, text: 'relay open', at: NOW - 60_000 });
    await store.setWanted('A101', { state: 'closed', version: 1, since: NOW, reason: 'hold', detail: 'A101 Shop 101 held', mode: 'on', restoreFen: 0, warning: 'none', decidedAt: NOW });
    await store.setOverride('A101', { kind: 'hold', reason: 'Shop 101 owner in hospital', by: 'manager:x', at: NOW });
    const a102 = (await new RedisTokenStore(fx.redis, fx.prefix).create({ site: fx.site.id, role: 'tenant', account: 'A102' })).token;
    const others = ['A101', 'A103', 'Shop 101', 'Gym 103', 'T101', 'T103', 'BANK-0001', 'BANK-0002', 'hospital'];
    for (const lang of ['zh', 'en']) {
      const r = await h.req('GET', `/api/v1/accounts/A102/relay?lang=${lang}`, { token: a102 });
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ power: 'off', restore_amount: '12.35' });
      for (const s of others) expect(r.text, `${lang} contains ${s}`).not.toContain(s);
      expect(r.text).not.toMatch(STORAGE);
      // The sentence is for a person: no codes, no RFC 3339 stamps.
      expect(r.body.why).not.toMatch(/balance-exhausted|below-reconnect|\d{4}-\d\d-\d\dT/);
    }
  });

  it('alerts: only events about its own money, worded in its language, without codes or UTC times', async () => {
    const zh = await h.req('GET', '/api/v1/accounts/A101/alerts?lang=zh', { token: tenant });
    expect(zh.body.alerts).toEqual([{ time: '2026-11-15T10:20:00+08:00', kind: 'low_balance', account: 'A101', meter: '', detail: '余额不足：余额 ¥95.20，低于提醒线 ¥100.00；按最近 24 小时的用电约可再用 30.5 小时。请尽快充值。' }]);
    const en = await h.req('GET', '/api/v1/accounts/A101/alerts?lang=en', { token: tenant });
    expect(en.body.alerts[0].detail).toBe("Low balance: balance ¥95.20, below your alert level ¥100.00; about 30.5 hours left at your last 24 hours' use. Please top up soon.");
    // A manager sees the conflict on A101, naming the payment it clashed with.
    const manager = (await new RedisTokenStore(fx.redis, fx.prefix).create({ site: fx.site.id, role: 'manager' })).token;
    const all = await h.req('GET', '/api/v1/accounts/A101/alerts', { token: manager });
    expect(all.body.alerts.map((e: { kind: string }) => e.kind).sort()).toEqual(['low_balance', 'payment_conflict']);
    expect(all.body.alerts.find((e: { kind: string }) => e.kind === 'payment_conflict').detail).toContain('A102');
  });

  it('the statement tells the tenant its pools by name and size, without the other members', async () => {
    const st = await h.req('GET', '/api/v1/accounts/A101/bills/2026-11', { token: tenant });
    expect(st.body.explain.pools).toEqual([
      { id: 'elevators', name: 'elevators', method: 'area', members: 3, includes_you: true },
      { id: 'lobby', name: 'lobby', method: 'consumption', members: 2, includes_you: true },
    ]);
    expect(st.body.adjustments.at(-1).reason).toBe('readings after the day was settled: … (silent 2026-11-02T20:55:09+08:00 to 2026-11-03T01:00:12+08:00)');
  });
});
