import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseSiteYaml, SiteFileError } from '../site/index.ts';
import { checkTopupAmount, judgePayment, refundable } from './rules.ts';
import type { OrderFacts, PaymentNotice } from './rules.ts';
import { reconcileStatement } from './statement.ts';

const example = readFileSync(new URL('../../examples/site.example.yaml', import.meta.url), 'utf8');
const withTopup = (block: string) => `${example}\ntopup:\n${block}\n`;

describe('site file topup block', () => {
  it('is optional, and read in fen and ms with defaults', () => {
    expect(parseSiteYaml(example).topup).toBeUndefined();
    const t = parseSiteYaml(withTopup('  providers: [wechat, alipay]\n  presets: [50, "100.5", 200]\n')).topup!;
    expect(t).toEqual({ providers: ['wechat', 'alipay'], presetsFen: [5000, 10050, 20000], minFen: 1000, maxFen: 500_000, expiryMs: 900_000, queryAfterMs: 180_000, reconcileAt: '10:30' });
  });

  it('refuses presets outside the limits, repeated providers, a non-CNY site for wechat, with key paths', () => {
    let err: unknown;
    try {
      parseSiteYaml(withTopup('  providers: [wechat, wechat]\n  presets: [5, 100]\n  min: 10\n  max: 500\n  expiry: 2m\n  query_after: 3m').replace('currency: CNY', 'currency: EUR'));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SiteFileError);
    const issues = (err as SiteFileError).issues.map((i) => `${i.path}: ${i.message}`);
    expect(issues).toEqual(
      expect.arrayContaining([
        'topup.presets[0]: 5 is outside min 10 .. max 500',
        "topup.providers[1]: provider 'wechat' listed twice",
        'topup.providers[0]: wechat collects CNY only; the site currency is EUR',
        'topup.query_after: must be shorter than expiry (pending orders are queried before they expire)',
      ]),
    );
    expect((err as SiteFileError).issues.every((i) => typeof i.line === 'number')).toBe(true);
  });
});

const cfg = parseSiteYaml(withTopup('  providers: [stripe]\n  min: 10\n  max: 1000')).topup!;
const order: OrderFacts = { id: 'T1', account: 'A101', provider: 'wechat', fen: 10_000, currency: 'CNY', state: 'created', expiresAt: 1000, refundedFen: 0 };
const notice: PaymentNotice = { provider: 'wechat', orderId: 'T1', transaction: 'W1', fen: 10_000, currency: 'CNY', paidAt: 900, merchantOk: true, merchant: 'ok' };

describe('top-up rules', () => {
  it('amount limits', () => {
    expect(checkTopupAmount(cfg, 1000)).toBeUndefined();
    expect(checkTopupAmount(cfg, 999)).toBe('amount 9.99 is below the minimum top-up 10.00');
    expect(checkTopupAmount(cfg, 100_001)).toBe('amount 1000.01 is above the maximum top-up 1000.00');
    expect(checkTopupAmount(cfg, 0)).toMatch(/positive/);
  });

  it('judges a payment: credit, late credit, already, and each conflict', () => {
    expect(judgePayment(order, notice)).toEqual({ action: 'credit', late: false });
    expect(judgePayment(order, { ...notice, paidAt: 1001 })).toEqual({ action: 'credit', late: true });
    expect(judgePayment({ ...order, state: 'expired' }, notice)).toEqual({ action: 'credit', late: true });
    expect(judgePayment({ ...order, state: 'paid', transaction: 'W1' }, notice)).toEqual({ action: 'already' });
    const code = (o: OrderFacts | undefined, n: PaymentNotice) => {
      const v = judgePayment(o, n);
      return v.action === 'conflict' ? v.code : v.action;
    };
    expect(code(undefined, notice)).toBe('unknown_order');
    expect(code(order, { ...notice, merchantOk: false })).toBe('merchant');
    expect(code(order, { ...notice, provider: 'alipay' })).toBe('provider');
    expect(code(order, { ...notice, currency: 'USD' })).toBe('currency');
    expect(code(order, { ...notice, fen: 9_999 })).toBe('amount');
    expect(code({ ...order, state: 'refunded', transaction: 'W1' }, notice)).toBe('refunded');
    expect(code({ ...order, state: 'conflict' }, notice)).toBe('in_conflict');
    expect(code({ ...order, state: 'paid', transaction: 'W0' }, notice)).toBe('second_payment');
    expect(judgePayment(order, { ...notice, fen: 1 })).toMatchObject({ reason: 'payment wechat W1 (0.01 CNY) for order T1 of 100.00 CNY: amount differs' });
  });

  it('refunds up to what was paid', () => {
    const paid = { ...order, state: 'paid' as const, transaction: 'W1', refundedFen: 4_000 };
    expect(refundable(paid, 6_000)).toBeUndefined();
    expect(refundable(paid, 6_001)).toBe('order T1 has 60.00 left to refund; 60.01 asked');
    expect(refundable(order, 1)).toMatch(/only a paid order/);
  });
});

describe('statement reconciliation', () => {
  const day = { fromMs: 1_000_000, toMs: 2_000_000 };
  const orders = new Map<string, OrderFacts>([
    ['O-OK', { ...order, id: 'O-OK', state: 'paid', transaction: 'W-OK' }],
    ['O-MISS', { ...order, id: 'O-MISS', account: 'A102', state: 'created' }],
    ['O-AMT', { ...order, id: 'O-AMT', state: 'paid', transaction: 'W-AMT' }],
    ['O-REF', { ...order, id: 'O-REF', state: 'refunded', transaction: 'W-REF', refundedFen: 2_000 }],
    ['O-LEDGER', { ...order, id: 'O-LEDGER', state: 'paid', transaction: 'W-LEDGER' }],
  ]);
  const row = (orderId: string, transaction: string, fen: number, time: number, refundNo?: string) => ({ kind: refundNo ? ('refund' as const) : ('payment' as const), orderId, transaction, fen, currency: 'CNY', time, ...(refundNo ? { refundNo } : {}) });

  it('one case of each mismatch: only the missing successful payment of a known order is credited', () => {
    const r = reconcileStatement({
      provider: 'wechat',
      date: '2026-11-14',
      ...day,
      rows: [row('O-OK', 'W-OK', 10_000, 1_100_000), row('O-MISS', 'W-MISS', 10_000, 1_200_000), row('O-AMT', 'W-AMT', 10_000, 1_300_000), row('O-UNKNOWN', 'W-UNK', 5_000, 1_400_000), row('O-REF', 'W-REF', 2_000, 1_500_000, 'R1')],
      ledger: [
        { reference: 'wechat:W-OK', account: 'A101', fen: 10_000, time: 1_100_000 },
        { reference: 'wechat:W-AMT', account: 'A101', fen: 9_000, time: 1_300_000 },
        { reference: 'wechat:W-LEDGER', account: 'A103', fen: 10_000, time: 1_600_000 },
        { reference: 'wechat:W-YESTERDAY', account: 'A103', fen: 10_000, time: 900_000 },
      ],
      orders,
    });
    expect(r.matched).toBe(1);
    expect(r.items.map((i) => [i.type, i.action, i.reference])).toEqual([
      ['missing_in_ledger', 'credit', 'wechat:W-MISS'],
      ['amount_mismatch', 'alarm', 'wechat:W-AMT'],
      ['unknown_order', 'alarm', 'wechat:W-UNK'],
      ['refund_missing_in_ledger', 'alarm', 'wechat:refund:R1'],
      ['missing_at_provider', 'alarm', 'wechat:W-LEDGER'],
    ]);
    expect(r.credits).toEqual([{ account: 'A102', fen: 10_000, reference: 'wechat:W-MISS', time: 1_200_000, order: 'O-MISS', transaction: 'W-MISS', reason: expect.stringMatching(/missing in the ledger; credited/) }]);
  });

  it('a missing payment for a refunded order, or with another amount than the order, is an alarm, never a credit', () => {
    const r = reconcileStatement({ provider: 'wechat', date: 'd', ...day, rows: [row('O-REF', 'W-REF', 10_000, 1_100_000), row('O-MISS', 'W-MISS', 9_000, 1_100_000)], ledger: [], orders });
    expect(r.credits).toEqual([]);
    expect(r.items.map((i) => i.action)).toEqual(['alarm', 'alarm']);
  });
});
