import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseSiteYaml } from '../core/index.ts';
import type { Site } from '../core/index.ts';
import { Alipay, StripeCheckout, WechatPay } from '../lib/topup/index.ts';
import type { TopupProviders } from '../lib/topup/index.ts';
import { AlipaySim, deliver, deliverConcurrently, StripeSim, tamperBody, tamperSignature, WechatSim } from '../sim/providers/index.ts';
import type { ProviderSim } from '../sim/providers/index.ts';
import { loadPayments, recordPayment } from '../workers/index.ts';
import { buildApp } from './app.ts';
import { RedisTokenStore } from './auth/token-store.ts';
import { openapiDocument } from './openapi.ts';
import { SiteRef } from './site-ref.ts';
import { createFixture, NOW, SITE_FILE } from './testing/fixture.ts';
import type { Fixture } from './testing/fixture.ts';
import { TOPUP_OPERATIONS } from './topup-openapi.ts';
import { OpenApiValidator } from './validate.ts';

// Online top-up through the real API, real Redis and InfluxDB, and the three provider
// simulators with keys made for this run (issue 14's list of tests).

export const TOPUP_BLOCK = `
topup:
  providers: [wechat, alipay, stripe]
  presets: [50, 100, 200]
  min: 10
  max: 2000
  expiry: 15m
  query_after: 3m
`;

const doc = openapiDocument();
const validator = new OpenApiValidator(doc);
const opByPath = new Map<string, { path: string; method: string; id: string }>();
for (const [path, methods] of Object.entries(doc.paths)) for (const [method, op] of Object.entries(methods as Record<string, { operationId: string }>)) opByPath.set(op.operationId, { path, method, id: op.operationId });

interface World {
  fx: Fixture;
  site: Site;
  server: Server;
  base: string;
  sims: { wechat: WechatSim; alipay: AlipaySim; stripe: StripeSim };
  tok: { manager: string; viewer: string; A101: string; A102: string };
  close(): Promise<void>;
}

/** A site with top-up on its own database and key prefix, the three simulators and the API. */
async function makeWorld(tag: string): Promise<World> {
  const fx = await createFixture(tag);
  const site = parseSiteYaml(`${readFileSync(SITE_FILE, 'utf8')}\n${TOPUP_BLOCK}`, 'topup-site.yaml');
  const sims = { wechat: await new WechatSim({ now: () => clock.now }).start(), alipay: await new AlipaySim({ now: () => clock.now }).start(), stripe: await new StripeSim({ now: () => clock.now }).start() };
  const providers: TopupProviders = new Map<any, any>([
    ['wechat', new WechatPay(sims.wechat.credentials)],
    ['alipay', new Alipay(sims.alipay.credentials)],
    ['stripe', new StripeCheckout(sims.stripe.credentials, site.id)],
  ]);
  const app = buildApp({ site: new SiteRef(site), influx: fx.influx, redis: fx.redis, keyPrefix: fx.prefix, workersKeyPrefix: fx.workersPrefix, now: () => clock.now, cacheMs: 0, topupProviders: providers, authFailures: { limit: 10_000, windowMs: 60_000 } });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  sims.stripe.webhookUrl = `${base}/api/v1/topup/notify/stripe`;
  const store = new RedisTokenStore(fx.redis, fx.prefix);
  const tok = {
    manager: (await store.create({ site: site.id, role: 'manager' })).token,
    viewer: (await store.create({ site: site.id, role: 'viewer' })).token,
    A101: (await store.create({ site: site.id, role: 'tenant', account: 'A101' })).token,
    A102: (await store.create({ site: site.id, role: 'tenant', account: 'A102' })).token,
  };
  return {
    fx,
    site,
    server,
    base,
    sims,
    tok,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      for (const x of Object.values(sims)) await x.stop();
      await fx.cleanup();
    },
  };
}

// A fixed instant, not the wall clock: the reconciliation of "today" puts payments a
// minute before now on the statement of now's local day, which a run in the first minute
// after midnight in China would split over two days. The fixture's instant (10:30 in
// Shanghai, its live balance 30 s old) is in the past, as every payment time must be.
const clock = { now: NOW };
const seen = new Map<string, Set<number>>();
let w: World;

/** Calls an operation by id on the current world and checks the answer against the OpenAPI document. */
async function call(id: string, params: Record<string, string>, token: string, opts: { body?: unknown; query?: Record<string, string> } = {}): Promise<{ status: number; body: any; text: string; type: string }> {
  const op = opByPath.get(id)!;
  const path = op.path.replace(/\{(\w+)\}/g, (_, k: string) => encodeURIComponent(params[k]));
  const qs = opts.query ? `?${new URLSearchParams(opts.query)}` : '';
  const r = await fetch(`${w.base}${path}${qs}`, { method: op.method.toUpperCase(), headers: { authorization: `Bearer ${token}`, ...(opts.body ? { 'content-type': 'application/json' } : {}) }, body: opts.body ? JSON.stringify(opts.body) : undefined });
  const text = await r.text();
  const type = r.headers.get('content-type') ?? '';
  const body = type.startsWith('application/json') ? JSON.parse(text) : text;
  expect(validator.response(op.path, op.method, r.status, type, body), `${id} -> ${r.status} ${text.slice(0, 300)}`).toEqual([]);
  if (!seen.has(id)) seen.set(id, new Set());
  seen.get(id)!.add(r.status);
  return { status: r.status, body, text, type };
}

const order = async (provider: string, amount = '100.00', account: 'A101' | 'A102' = 'A101') => {
  const r = await call('createTopup', { account }, w.tok[account], { body: { amount, provider } });
  expect(r.status, r.text).toBe(201);
  return r.body as { order: string; qr_code: string | null; qr_image: string | null; pay_url: string | null; state: string };
};
const ledger = async (account?: string) => (await loadPayments(w.fx.influx, w.site.id)).filter((p) => !p.reference.startsWith('BANK-') && (!account || p.account === account));
const events = async (kind: string) => w.fx.influx.query(`SELECT * FROM event WHERE kind = '${kind}'`);

let main: World;
beforeAll(async () => {
  main = w = await makeWorld('topup');
});
afterAll(async () => main?.close());

describe('a tenant tops up', () => {
  it('options: presets, limits and providers of the site', async () => {
    const r = await call('getTopupOptions', {}, w.tok.A101);
    expect(r.body).toEqual({ enabled: true, currency: 'CNY', providers: ['wechat', 'alipay', 'stripe'], presets: ['50.00', '100.00', '200.00'], min: '10.00', max: '2000.00', expiry_minutes: 15 });
  });

  for (const provider of ['wechat', 'alipay', 'stripe'] as const) {
    it(`${provider}: order -> QR code or link -> the provider pays -> credited once, under the provider's transaction id`, async () => {
      const o = await order(provider, '50.00', 'A102');
      if (provider === 'stripe') expect(o.pay_url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/pay\/cs_test_/);
      else expect(o.qr_image).toMatch(/^data:image\/svg\+xml;base64,/);
      const sim: ProviderSim = w.sims[provider];
      const res = await deliver(sim.pay(o.order));
      expect(res.status).toBeGreaterThanOrEqual(200);
      expect(res.status).toBeLessThan(300);
      if (provider === 'alipay') expect(res.body).toBe('success');
      const st = await call('getTopup', { account: 'A102', order: o.order }, w.tok.A102);
      expect(st.body).toMatchObject({ state: 'paid', amount: '50.00', late: false, qr_code: null });
      expect(st.body.transaction).toBeUndefined(); // tenants do not see it
      const line = (await ledger('A102')).find((p) => p.reference === `${provider}:${sim.order(o.order).transaction}`);
      expect(line).toMatchObject({ account: 'A102', fen: 5000, time: sim.order(o.order).paidAt });
      const pays = await call('listPayments', { account: 'A102' }, w.tok.A102);
      expect(pays.body.payments.some((p: { reference: string }) => p.reference === line!.reference)).toBe(true);
    });
  }

  it('refuses amounts outside the limits and providers the site does not use; another tenant cannot read the order', async () => {
    expect((await call('createTopup', { account: 'A101' }, w.tok.A101, { body: { amount: '5.00', provider: 'wechat' } })).body.message).toBe('amount 5.00 is below the minimum top-up 10.00');
    expect((await call('createTopup', { account: 'A101' }, w.tok.A101, { body: { amount: '2000.01', provider: 'wechat' } })).status).toBe(409);
    const o = await order('wechat', '10.00');
    expect((await call('getTopup', { account: 'A102', order: o.order }, w.tok.A102)).status).toBe(404);
    expect((await call('getTopup', { account: 'A101', order: o.order }, w.tok.A102)).status).toBe(404);
    expect((await call('createTopup', { account: 'A101' }, w.tok.manager, { body: { amount: '10.00', provider: 'wechat' } })).status).toBe(403);
  });
});

describe('notifications', () => {
  it('the same notification delivered 10 times concurrently: one ledger line, credited once', async () => {
    const before = (await ledger('A101')).length;
    const o = await order('wechat', '100.00');
    const n = w.sims.wechat.pay(o.order);
    const res = await deliverConcurrently(n, 10);
    expect(res.map((r) => r.status)).toEqual(Array(10).fill(204));
    const lines = (await ledger('A101')).filter((p) => p.reference === `wechat:${w.sims.wechat.order(o.order).transaction}`);
    expect(lines).toEqual([{ account: 'A101', reference: `wechat:${w.sims.wechat.order(o.order).transaction}`, fen: 10_000, time: w.sims.wechat.order(o.order).paidAt }]);
    expect((await ledger('A101')).length).toBe(before + 1);
    // And later retries change nothing either.
    expect((await deliver(n)).status).toBe(204);
    expect((await ledger('A101')).length).toBe(before + 1);
  });

  it('a tampered body or signature: 401 and nothing credited (each provider)', async () => {
    const before = (await ledger()).length;
    for (const provider of ['wechat', 'alipay', 'stripe'] as const) {
      const o = await order(provider, '20.00');
      const n = w.sims[provider].pay(o.order);
      const badSig =
        provider === 'wechat'
          ? tamperSignature(n, 'wechatpay-signature', (v) => `${v.slice(0, 10)}${v[10] === 'A' ? 'B' : 'A'}${v.slice(11)}`)
          : provider === 'stripe'
            ? tamperSignature(n, 'stripe-signature', (v) => v.replace(/v1=(.)/, (_m, c: string) => `v1=${c === 'a' ? 'b' : 'a'}`))
            : { ...n, body: Buffer.from(n.body.toString().replace(/sign=(.)/, (_m, c: string) => `sign=${c === 'A' ? 'B' : 'A'}`)) };
      for (const bad of [tamperBody(n), badSig]) {
        const r = await deliver(bad);
        expect(r.status, `${provider}: ${r.body}`).toBe(401);
      }
      expect((await call('getTopup', { account: 'A101', order: o.order }, w.tok.A101)).body.state).toBe('created');
    }
    expect((await ledger()).length).toBe(before);
  });

  it('a wrong amount: a conflict for managers, nothing credited, the tenant sees only "review"', async () => {
    const before = await ledger('A101');
    const o = await order('alipay', '200.00');
    const r = await deliver(w.sims.alipay.pay(o.order, { fen: 20 }));
    expect(r).toEqual({ status: 200, body: 'success' }); // recorded as a conflict: no point in the provider retrying
    expect(await ledger('A101')).toEqual(before);
    const tenant = await call('getTopup', { account: 'A101', order: o.order }, w.tok.A101);
    expect(tenant.body.state).toBe('review');
    expect(tenant.body.conflict).toBeUndefined();
    const mgr = (await call('listTopups', {}, w.tok.manager)).body.orders.find((x: { order: string }) => x.order === o.order);
    expect(mgr).toMatchObject({ state: 'conflict', conflict: expect.stringMatching(/0\.20 CNY.*200\.00 CNY: amount differs/) });
    const ev = await events('topup_conflict');
    expect(ev.some((e) => String(e.detail).startsWith('amount:') && !e.account)).toBe(true);
    // The tenant's alert list never shows it.
    const alerts = await call('listAlerts', { account: 'A101' }, w.tok.A101);
    expect(alerts.body.alerts.map((a: { kind: string }) => a.kind)).not.toContain('topup_conflict');
  });

  it('a notification for an unknown order is a conflict, nothing credited', async () => {
    const before = (await ledger()).length;
    await order('wechat', '30.00');
    // Simulate a payment of an order this site never made: the simulator knows it, we do not.
    w.sims.wechat.orders.set('TUNKNOWN0000000001', { id: 'TUNKNOWN0000000001', fen: 3000, currency: 'CNY', notifyUrl: `${w.base}/api/v1/topup/notify/wechat`, description: 'x', expiresAt: clock.now + 60_000, status: 'pending', refunds: [] });
    expect((await deliver(w.sims.wechat.pay('TUNKNOWN0000000001'))).status).toBe(204);
    expect((await ledger()).length).toBe(before);
    expect((await events('topup_conflict')).some((e) => String(e.detail).startsWith('unknown_order:'))).toBe(true);
  });

  it('an order paid after it expired: credited (the money arrived) and flagged', async () => {
    const o = await order('stripe', '60.00');
    clock.now += 20 * 60_000; // past the 15-minute expiry
    try {
      const r = await deliver(w.sims.stripe.pay(o.order));
      expect(r.status).toBe(200);
    } finally {
      clock.now -= 20 * 60_000;
    }
    const st = await call('getTopup', { account: 'A101', order: o.order }, w.tok.A101);
    expect(st.body).toMatchObject({ state: 'paid', late: true });
    expect((await ledger('A101')).some((p) => p.reference === `stripe:${w.sims.stripe.order(o.order).transaction}` && p.fen === 6000)).toBe(true);
    expect((await events('topup_late')).some((e) => e.reference === `stripe:${w.sims.stripe.order(o.order).transaction}`)).toBe(true);
  });

  it('a payment for an already-refunded order is a conflict, credits nothing', async () => {
    const o = await order('wechat', '40.00');
    const n = w.sims.wechat.pay(o.order);
    expect((await deliver(n)).status).toBe(204);
    const rf = await call('refundTopup', { order: o.order }, w.tok.manager, { body: { amount: '40.00', reason: 'moved out' } });
    expect(rf.body.state).toBe('succeeded');
    const before = await ledger('A101');
    expect((await deliver(n)).status).toBe(204);
    expect(await ledger('A101')).toEqual(before);
    expect((await events('topup_conflict')).some((e) => String(e.detail).startsWith('refunded:'))).toBe(true);
  });
});

describe('pending orders, refunds', () => {
  it('an order whose notification never came is queried after query_after and credited', async () => {
    const o = await order('alipay', '70.00');
    w.sims.alipay.pay(o.order); // paid at the provider, notification lost
    const { TopupService } = await import('../workers/index.ts');
    const providers: TopupProviders = new Map([['alipay', new Alipay(w.sims.alipay.credentials)]]);
    const svc = new TopupService({ site: () => w.site, influx: w.fx.influx, redis: w.fx.redis, keyPrefix: w.fx.workersPrefix, providers, now: () => clock.now + 4 * 60_000 });
    const r = await svc.pollPending();
    expect(r.paid).toBeGreaterThanOrEqual(1);
    expect((await call('getTopup', { account: 'A101', order: o.order }, w.tok.A101)).body.state).toBe('paid');
    expect((await ledger('A101')).filter((p) => p.reference === `alipay:${w.sims.alipay.order(o.order).transaction}`)).toHaveLength(1);
    // An unpaid order past its expiry is closed at the provider and expired.
    const o2 = await order('alipay', '10.00');
    const later = new TopupService({ site: () => w.site, influx: w.fx.influx, redis: w.fx.redis, keyPrefix: w.fx.workersPrefix, providers, now: () => clock.now + 16 * 60_000 });
    await later.pollPending();
    expect((await call('getTopup', { account: 'A101', order: o2.order }, w.tok.A101)).body.state).toBe('expired');
    expect(w.sims.alipay.order(o2.order).status).toBe('closed');
  });

  it('partial refunds are their own negative ledger lines; more than was paid is refused', async () => {
    const o = await order('stripe', '100.00');
    expect((await deliver(w.sims.stripe.pay(o.order))).status).toBe(200);
    const a = await call('refundTopup', { order: o.order }, w.tok.manager, { body: { amount: '30.00', reason: 'overpaid' } });
    expect(a.status).toBe(201);
    expect(a.body).toMatchObject({ state: 'succeeded', amount: '30.00' });
    const b = await call('refundTopup', { order: o.order }, w.tok.manager, { body: { amount: '70.01', reason: 'too much' } });
    expect(b.status).toBe(409);
    const c = await call('refundTopup', { order: o.order }, w.tok.manager, { body: { amount: '70.00', reason: 'moved out' } });
    expect(c.body.state).toBe('succeeded');
    const refunds = (await ledger('A101')).filter((p) => p.reference.startsWith('stripe:refund:'));
    expect(refunds.map((p) => p.fen).sort()).toEqual(expect.arrayContaining([-3000, -7000]));
    const st = await call('getTopup', { account: 'A101', order: o.order }, w.tok.A101);
    expect(st.body).toMatchObject({ state: 'refunded', refunded: '100.00' });
  });

  it('a WeChat refund answered PROCESSING is recorded when its REFUND.SUCCESS notification arrives', async () => {
    const o = await order('wechat', '80.00');
    expect((await deliver(w.sims.wechat.pay(o.order))).status).toBe(204);
    w.sims.wechat.refundsProcessing = true;
    try {
      const r = await call('refundTopup', { order: o.order }, w.tok.manager, { body: { amount: '80.00', reason: 'test' } });
      expect(r.body.state).toBe('pending');
      expect((await ledger('A101')).some((p) => p.reference === `wechat:refund:${r.body.refund}`)).toBe(false);
      const n = w.sims.wechat.refundNotification(o.order, r.body.refund, `${w.base}/api/v1/topup/notify/wechat`);
      expect((await deliverConcurrently(n, 3)).map((x) => x.status)).toEqual([204, 204, 204]);
      expect((await ledger('A101')).filter((p) => p.reference === `wechat:refund:${r.body.refund}`).map((p) => p.fen)).toEqual([-8000]);
    } finally {
      w.sims.wechat.refundsProcessing = false;
    }
  });
});

describe('daily reconciliation', () => {
  // Each case on a world of its own: the statement of the day holds exactly what the case made.
  let own: World | undefined;
  beforeEach(async () => {
    own = w = await makeWorld('topup-rec');
  });
  afterEach(async () => {
    await own?.close();
    w = main;
  });

  it('a statement with one case of each mismatch: the expected report, and only the missing successful payment is credited', async () => {
    const day = new Date(clock.now + 8 * 3_600_000).toISOString().slice(0, 10); // today in China: the sim's bill day
    const sim = w.sims.wechat;
    // 1. paid at WeChat, notification lost: missing in the ledger -> credited.
    const missing = await order('wechat', '150.00', 'A102');
    sim.pay(missing.order);
    // 2. the ledger has a payment WeChat never had -> alarm.
    await recordPayment({ site: w.site, influx: w.fx.influx, redis: w.fx.redis, keyPrefix: w.fx.workersPrefix }, { account: 'A101', fen: 1234, reference: 'wechat:4200000000GHOST', time: clock.now - 60_000 });
    // 3. the statement says another amount than the ledger -> alarm.
    const amt = await order('wechat', '90.00');
    expect((await deliver(sim.pay(amt.order))).status).toBe(204);
    const amtTxn = sim.order(amt.order).transaction!;
    // 4. a payment for an order this site does not know -> alarm; 5. a refund the ledger lacks -> alarm.
    sim.statementEdit = (rows) => [
      ...rows.map((r) => (r.transaction === amtTxn && r.state === 'SUCCESS' ? { ...r, fen: 9100 } : r)),
      { time: clock.now - 30_000, transaction: '4200000000STRANGER', orderId: 'TNOTOURS000000001', state: 'SUCCESS', fen: 5000, refundNo: '', refundFen: 0 },
      { time: clock.now - 20_000, transaction: amtTxn, orderId: amt.order, state: 'REFUND', fen: 9000, refundNo: 'RPORTAL01', refundFen: 1000, refundId: '50300000001' },
    ];
    try {
      const before = await ledger();
      const file = sim.statementFile(day);
      // The worker job and this route share TopupService.reconcile; here the manager runs it now.
      const r = await call('runTopupReconciliation', {}, w.tok.manager, { body: { provider: 'wechat', date: day } });
      expect(r.status, r.text).toBe(200);
      const byType = Object.fromEntries(r.body.items.map((i: { type: string; action: string; reference: string }) => [i.type, [i.action, i.reference]]));
      expect(byType).toEqual({
        missing_in_ledger: ['credited', `wechat:${sim.order(missing.order).transaction}`],
        missing_at_provider: ['alarm', 'wechat:4200000000GHOST'],
        amount_mismatch: ['alarm', `wechat:${amtTxn}`],
        unknown_order: ['alarm', 'wechat:4200000000STRANGER'],
        refund_missing_in_ledger: ['alarm', 'wechat:refund:RPORTAL01'],
      });
      expect(r.body).toMatchObject({ credited: 1, alarms: 4 });
      const after = await ledger();
      expect(after.length).toBe(before.length + 1);
      expect(after.find((p) => p.reference === `wechat:${sim.order(missing.order).transaction}`)).toMatchObject({ account: 'A102', fen: 15_000 });
      expect((await call('getTopup', { account: 'A102', order: missing.order }, w.tok.A102)).body.state).toBe('paid');
      expect((await events('topup_mismatch')).length).toBeGreaterThanOrEqual(4);
      // Running it again credits nothing more.
      const again = await call('runTopupReconciliation', {}, w.tok.manager, { body: { provider: 'wechat', date: day } });
      expect(again.body.credited).toBe(0);
      expect((await ledger()).length).toBe(after.length);
      // The same report from the downloadable file as a local file (the parser the job uses).
      const { TopupService } = await import('../workers/index.ts');
      const svc = new TopupService({ site: () => w.site, influx: w.fx.influx, redis: w.fx.redis, keyPrefix: w.fx.workersPrefix, providers: new Map([['wechat', new WechatPay(sim.credentials)]]), now: () => clock.now });
      const local = await svc.reconcile('wechat', day, file);
      expect(local.items.map((i) => i.type).sort()).toEqual(['amount_mismatch', 'missing_at_provider', 'refund_missing_in_ledger', 'unknown_order']);
      // Managers read it as JSON and CSV.
      const json = await call('getTopupReconciliation', {}, w.tok.viewer);
      expect(json.body.reports[0]).toMatchObject({ provider: 'wechat', date: day });
      const csv = await call('getTopupReconciliation', {}, w.tok.manager, { query: { format: 'csv' } });
      expect(csv.type).toMatch(/^text\/csv/);
      expect(csv.text.split('\n')[0]).toBe('date,provider,type,action,reference,order,account,provider_amount,ledger_amount,time,reason');
      expect(csv.text).toContain(`${day},wechat,missing_at_provider,alarm,wechat:4200000000GHOST,,A101,,12.34,`);
    } finally {
      sim.statementEdit = undefined;
    }
  });

  it('Alipay and Stripe statements reconcile through their own formats', async () => {
    for (const provider of ['alipay', 'stripe'] as const) {
      const o = await order(provider, '25.00');
      w.sims[provider].pay(o.order); // notification lost
      const day = provider === 'stripe' ? new Date(clock.now).toLocaleDateString('sv-SE', { timeZone: w.site.timezone }) : new Date(clock.now + 8 * 3_600_000).toISOString().slice(0, 10);
      const r = await call('runTopupReconciliation', {}, w.tok.manager, { body: { provider, date: day } });
      expect(r.status, r.text).toBe(200);
      expect(r.body.items.filter((i: { action: string }) => i.action === 'credited').map((i: { reference: string }) => i.reference)).toEqual([`${provider}:${w.sims[provider].order(o.order).transaction}`]);
    }
  });
});

describe('conformance', () => {
  it('every top-up operation was called and answered a documented success', () => {
    for (const id of TOPUP_OPERATIONS) expect([...(seen.get(id) ?? [])].some((s) => s >= 200 && s < 300), `${id}: ${[...(seen.get(id) ?? [])].join(',')}`).toBe(true);
  });
});
