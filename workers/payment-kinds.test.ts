import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { quoteString } from '../influx/client.ts';
import { redisKeys } from './keys.ts';
import { loadPayments, PaymentRejectedError, recordPayment } from './payments.ts';
import type { PaymentDeps } from './payments.ts';
import { testEnv, testSite } from './testing/env.ts';
import type { TestEnv } from './testing/env.ts';

/** billing.md section 11: refunds, deposits and transfers through the one payment path (real Redis and InfluxDB). */

const site = testSite();
const t0 = Date.parse('2026-10-05T10:00:00+08:00');

describe('payment kinds', () => {
  let env: TestEnv;
  let deps: PaymentDeps;
  beforeEach(async () => {
    env = await testEnv('paykind');
    deps = { site, influx: env.influx, redis: env.redis, keyPrefix: env.prefix };
  });
  afterEach(async () => env.cleanup());

  it('a refund is a negative payment, idempotent by reference; a positive refund is refused', async () => {
    const refund = { account: 'A101', fen: -12_345, reference: 'RF-1', time: t0, kind: 'refund' as const };
    expect((await recordPayment(deps, refund)).status).toBe('recorded');
    expect((await recordPayment(deps, refund)).status).toBe('duplicate');
    // Issue 11: a retry stamped "now" is the same refund, answered with its first instant.
    expect(await recordPayment(deps, { ...refund, time: t0 + 60_000 })).toMatchObject({ status: 'duplicate', time: t0, kind: 'refund' });
    await expect(recordPayment(deps, { ...refund, fen: 100, reference: 'RF-2' })).rejects.toThrow(/a refund is money paid back: a negative amount/);
    // The same reference as a plain payment of the same amount is another content: refused.
    const err = await recordPayment(deps, { account: 'A101', fen: -12_345, reference: 'RF-1', time: t0 }).catch((e: unknown) => e);
    expect((err as PaymentRejectedError).code).toBe('conflict');
    expect((err as Error).message).toMatch(/already used by -123\.45 \(refund\) to A101/);
    expect(await loadPayments(env.influx, site.id)).toEqual([{ account: 'A101', reference: 'RF-1', fen: -12_345, time: t0, kind: 'refund' }]);
  });

  it('a transfer is two ledger lines under one reference, written together; a retry is a duplicate', async () => {
    const tr = { account: 'A101', to: 'A102', fen: 5_000, reference: 'TR-1', time: t0, kind: 'transfer' as const };
    expect((await recordPayment(deps, tr)).status).toBe('recorded');
    expect((await recordPayment(deps, tr)).status).toBe('duplicate');
    expect(await recordPayment(deps, { ...tr, time: t0 + 60_000 })).toMatchObject({ status: 'duplicate', time: t0, kind: 'transfer', to: 'A102' });
    expect(await loadPayments(env.influx, site.id)).toEqual([
      { account: 'A101', reference: 'TR-1', fen: -5_000, time: t0, kind: 'transfer' },
      { account: 'A102', reference: 'TR-1', fen: 5_000, time: t0, kind: 'transfer' },
    ]);
    // A Redis that forgot the reference rebuilds the transfer's content from the ledger's two lines.
    await env.redis.del(redisKeys(env.prefix, site.id).payments);
    expect((await recordPayment(deps, tr)).status).toBe('duplicate');
    await expect(recordPayment(deps, { ...tr, to: 'A103' })).rejects.toThrow(/already used by a transfer of 50\.00 from A101 to A102/);
    await expect(recordPayment(deps, { ...tr, reference: 'TR-2', to: 'A101' })).rejects.toThrow(/two different accounts/);
    await expect(recordPayment(deps, { ...tr, reference: 'TR-3', to: undefined })).rejects.toThrow(/needs a known receiving account/);
  });

  it('a deposit is stored with its kind; the plain payment keeps the old untagged point', async () => {
    await recordPayment(deps, { account: 'A102', fen: 50_000, reference: 'DEP-1', time: t0, kind: 'deposit' });
    await recordPayment(deps, { account: 'A102', fen: 10_000, reference: 'P-1', time: t0 + 1000 });
    const rows = await env.influx.query(`SELECT fen, kind FROM payment WHERE site = ${quoteString(site.id)} GROUP BY reference`);
    expect(rows.map((r) => [r.reference, r.kind ?? null])).toEqual([
      ['DEP-1', 'deposit'],
      ['P-1', null],
    ]);
  });
});
