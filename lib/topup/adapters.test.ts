import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlipaySim, StripeSim, tamperBody, tamperSignature, WechatSim } from '../../sim/providers/index.ts';
import type { ProviderSim, SimNotification } from '../../sim/providers/index.ts';
import { Alipay } from './alipay.ts';
import { SignatureError } from './provider.ts';
import type { TopupProvider } from './provider.ts';
import { StripeCheckout } from './stripe.ts';
import { WechatPay } from './wechat.ts';

// Each adapter against its simulator: real RSA keys, real AES-256-GCM, real HMAC, made now.
const cases: { name: string; make: () => Promise<{ sim: ProviderSim; adapter: TopupProvider; sigHeader: string }> }[] = [
  {
    name: 'wechat',
    make: async () => {
      const sim = await new WechatSim().start();
      return { sim, adapter: new WechatPay(sim.credentials), sigHeader: 'wechatpay-signature' };
    },
  },
  {
    name: 'alipay',
    make: async () => {
      const sim = await new AlipaySim().start();
      return { sim, adapter: new Alipay(sim.credentials), sigHeader: '' };
    },
  },
  {
    name: 'stripe',
    make: async () => {
      const sim = await new StripeSim().start();
      sim.webhookUrl = 'http://127.0.0.1:1/notify';
      return { sim, adapter: new StripeCheckout({ ...sim.credentials, api_base: sim.url }, 'tj-plaza'), sigHeader: 'stripe-signature' };
    },
  },
];

const raw = (n: SimNotification) => ({ headers: n.headers, body: n.body });

for (const c of cases) {
  describe(`${c.name} adapter against its simulator`, () => {
    let sim: ProviderSim;
    let adapter: TopupProvider;
    let sigHeader: string;
    beforeAll(async () => ({ sim, adapter, sigHeader } = await c.make()));
    afterAll(async () => sim?.stop());

    const order = (id: string, fen = 10_000) => adapter.createOrder({ orderId: id, fen, currency: 'CNY', description: 'Electricity top-up', expiresAt: Date.now() + 15 * 60_000, notifyUrl: 'http://127.0.0.1:1/notify', returnUrl: 'http://127.0.0.1:1/', nowMs: Date.now() });

    it('creates an order (QR content or pay link), verifies the paid notification and reads its facts', async () => {
      const created = await order('TU1');
      expect(created.qrCode ?? created.payUrl).toMatch(/^(weixin:\/\/|https:\/\/qr\.alipay\.com\/|http:\/\/127\.0\.0\.1)/);
      expect((await adapter.queryOrder({ orderId: 'TU1', providerOrderId: created.providerOrderId })).status).toBe('pending');
      const n = sim.pay('TU1');
      const v = adapter.verifyNotification(raw(n), Date.now());
      expect(v).toMatchObject({ kind: 'payment', provider: c.name, orderId: 'TU1', fen: 10_000, currency: 'CNY', merchantOk: true });
      if (v.kind !== 'payment') throw new Error('not a payment');
      expect(v.transaction).toBe(sim.order('TU1').transaction);
      expect(Math.abs(v.paidAt - Date.now())).toBeLessThan(5000);
      const q = await adapter.queryOrder({ orderId: 'TU1', providerOrderId: created.providerOrderId });
      expect(q).toMatchObject({ status: 'paid', transaction: v.transaction, fen: 10_000, paidAt: v.paidAt });
    });

    it('refuses a tampered body, a tampered signature, and a stale timestamp, before reading anything', async () => {
      await order('TU2');
      const n = sim.pay('TU2');
      expect(() => adapter.verifyNotification(raw(tamperBody(n)), Date.now())).toThrow(SignatureError);
      const badSig = sigHeader ? tamperSignature(n, sigHeader, (v) => v.replace(/[0-9a-f]/, (d) => (d === 'a' ? 'b' : 'a'))) : { ...n, body: Buffer.from(n.body.toString().replace(/sign=([^&])/, (_m, ch: string) => `sign=${ch === 'A' ? 'B' : 'A'}`)) };
      expect(() => adapter.verifyNotification(raw(badSig), Date.now())).toThrow(SignatureError);
      expect(() => adapter.verifyNotification({ headers: {}, body: Buffer.from('{}') }, Date.now())).toThrow(SignatureError);
      if (c.name !== 'alipay') expect(() => adapter.verifyNotification(raw(n), Date.now() + 10 * 60_000)).toThrow(/5 minutes|tolerance/);
    });

    it('refunds in part, and the statement lists the payment and the refund', async () => {
      const created = await order('TU3', 5_000);
      const v = adapter.verifyNotification(raw(sim.pay('TU3')), Date.now());
      if (v.kind !== 'payment') throw new Error('not a payment');
      const r = await adapter.refund({ orderId: 'TU3', providerOrderId: created.providerOrderId, transaction: v.transaction, refundNo: 'RF3', fen: 2_000, totalFen: 5_000, currency: 'CNY', reason: 'test', notifyUrl: 'http://127.0.0.1:1/n' });
      expect(r.status).toBe('succeeded');
      const today = new Date(Date.now() + 8 * 3_600_000).toISOString().slice(0, 10);
      const from = Date.parse(`${today}T00:00:00+08:00`);
      const rows = await adapter.statement({ date: today, fromMs: from, toMs: from + 86_400_000, timezone: 'Asia/Shanghai' });
      const mine = rows.filter((x) => x.orderId === 'TU3');
      expect(mine.map((x) => [x.kind, x.fen, x.refundNo ?? ''])).toEqual([
        ['payment', 5_000, ''],
        ['refund', 2_000, 'RF3'],
      ]);
      expect(mine[0].transaction).toBe(v.transaction);
    });
  });
}
