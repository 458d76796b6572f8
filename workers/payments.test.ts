import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InfluxError, InfluxV1 } from '../influx/client.ts';
import { loadPayments, PaymentRejectedError, recordPayment } from './payments.ts';
import { redisKeys } from './keys.ts';
import type { PaymentDeps } from './payments.ts';
import { testEnv, testSite } from './testing/env.ts';
import type { TestEnv } from './testing/env.ts';

const site = testSite();
const t0 = Date.parse('2026-10-05T10:00:00+08:00');

describe('recordPayment (real Redis and InfluxDB)', () => {
  let env: TestEnv;
  let deps: PaymentDeps;
  beforeEach(async () => {
    env = await testEnv('pay');
    deps = { site, influx: env.influx, redis: env.redis, keyPrefix: env.prefix };
  });
  afterEach(async () => env.cleanup());

  it('records once; the same reference and content again is a duplicate, one ledger point', async () => {
    const p = { account: 'A101', fen: 10_000, reference: 'R1', time: t0 };
    expect((await recordPayment(deps, p)).status).toBe('recorded');
    expect((await recordPayment(deps, p)).status).toBe('duplicate');
    expect(await loadPayments(env.influx, site.id)).toEqual([{ account: 'A101', reference: 'R1', fen: 10_000, time: t0 }]);
  });

  it('refuses a conflicting content under a taken reference, naming both', async () => {
    await recordPayment(deps, { account: 'A101', fen: 10_000, reference: 'R1', time: t0 });
    const err = await recordPayment(deps, { account: 'A101', fen: 20_000, reference: 'R1', time: t0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PaymentRejectedError);
    expect((err as PaymentRejectedError).code).toBe('conflict');
    expect((err as Error).message).toMatch(/100\.00 to A101.*refusing 200\.00 to A101/);
    expect(await loadPayments(env.influx, site.id)).toHaveLength(1);
    const ev = await env.influx.query(`SELECT detail FROM event WHERE kind = 'payment_conflict'`);
    expect(ev).toHaveLength(1);
  });

  it('races: 20 concurrent calls with one reference and two contents record exactly one', async () => {
    const calls = Array.from({ length: 20 }, (_, i) => recordPayment(deps, { account: i % 2 ? 'A101' : 'A102', fen: 500, reference: 'RACE', time: t0 }).then((r) => r.status, (e: Error) => e.name));
    const out = await Promise.all(calls);
    expect(out.filter((s) => s === 'recorded')).toHaveLength(1);
    expect(out.filter((s) => s === 'PaymentRejectedError')).toHaveLength(10);
    expect(await loadPayments(env.influx, site.id)).toHaveLength(1);
  });

  it('rejects unknown accounts and non-integer amounts without touching the ledger', async () => {
    await expect(recordPayment(deps, { account: 'NOPE', fen: 1, reference: 'X', time: t0 })).rejects.toThrow(/unknown account/);
    await expect(recordPayment(deps, { account: 'A101', fen: 1.5, reference: 'X', time: t0 })).rejects.toThrow(/whole number of fen/);
    expect(await loadPayments(env.influx, site.id)).toEqual([]);
  });

  it('a Redis that lost the reference still refuses a conflict: the ledger is checked first', async () => {
    await recordPayment(deps, { account: 'A101', fen: 10_000, reference: 'R9', time: t0 });
    await env.redis.del(`${env.prefix}:site:${site.id}:payments`);
    await expect(recordPayment(deps, { account: 'A101', fen: 1, reference: 'R9', time: t0 })).rejects.toThrow(/already used/);
    expect((await recordPayment(deps, { account: 'A101', fen: 10_000, reference: 'R9', time: t0 })).status).toBe('duplicate');
  });

  it('InfluxDB away: the call fails retryably, nothing is recorded, and the reference stays free', async () => {
    const away = { ...deps, influx: new InfluxV1({ url: 'http://127.0.0.1:1', db: env.influx.db, timeoutMs: 300 }) };
    const err = await recordPayment(away, { account: 'A101', fen: 100, reference: 'R2', time: t0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InfluxError);
    expect((err as InfluxError).retryable).toBe(true);
    expect((await recordPayment(deps, { account: 'A101', fen: 200, reference: 'R2', time: t0 })).status).toBe('recorded');
  });

  it('a retry stamped with another time is the same payment (issue 11): duplicate, answered with the first time; only another account or amount conflicts', async () => {
    const first = await recordPayment(deps, { account: 'A101', fen: 130, reference: 'R-T', time: t0 });
    expect(first.status).toBe('recorded');
    const retry = await recordPayment(deps, { account: 'A101', fen: 130, reference: 'R-T', time: t0 + 4_510 });
    expect(retry).toMatchObject({ status: 'duplicate', time: t0 });
    await expect(recordPayment(deps, { account: 'A102', fen: 130, reference: 'R-T', time: t0 })).rejects.toMatchObject({ code: 'conflict' });
    await expect(recordPayment(deps, { account: 'A101', fen: 131, reference: 'R-T', time: t0 + 9_000 })).rejects.toMatchObject({ code: 'conflict' });
    expect(await loadPayments(env.influx, site.id)).toEqual([{ account: 'A101', reference: 'R-T', fen: 130, time: t0 }]);
  });

  it('a reservation whose ledger write was lost is completed by the retry, at the reserved instant', async () => {
    // What a write that timed out (and never landed) leaves behind: the reservation only.
    await env.redis.hset(redisKeys(env.prefix, site.id).payments, 'R-LOST', `${t0}|A101|500`);
    expect(await loadPayments(env.influx, site.id)).toEqual([]);
    const r = await recordPayment(deps, { account: 'A101', fen: 500, reference: 'R-LOST', time: t0 + 60_000 });
    expect(r).toMatchObject({ status: 'duplicate', time: t0 });
    expect(await loadPayments(env.influx, site.id)).toEqual([{ account: 'A101', reference: 'R-LOST', fen: 500, time: t0 }]);
  });

  it('refuses a time more than 5 minutes ahead or before the site\'s first day, with the reason', async () => {
    const now = Date.parse('2026-11-30T12:00:00+08:00');
    const clocked = { ...deps, now: () => now };
    await expect(recordPayment(clocked, { account: 'A101', fen: 1, reference: 'F1', time: Date.parse('2100-01-01T00:00:00+08:00') })).rejects.toThrow(
      'payment time 2100-01-01T00:00:00+08:00 is in the future (now is 2026-11-30T12:00:00+08:00; at most 5 minutes ahead is accepted)',
    );
    await expect(recordPayment(clocked, { account: 'A101', fen: 1, reference: 'F2', time: now + 5 * 60_000 + 1000 })).rejects.toMatchObject({ code: 'invalid' });
    expect((await recordPayment(clocked, { account: 'A101', fen: 1, reference: 'F3', time: now + 4 * 60_000 })).status).toBe('recorded');
    await expect(recordPayment(clocked, { account: 'A101', fen: 1, reference: 'F4', time: Date.parse('1970-01-01T00:00:00Z') })).rejects.toThrow(/outside the supported dates/);
    await expect(recordPayment(clocked, { account: 'A101', fen: 1, reference: 'F5', time: Date.parse('2025-12-31T23:59:59+08:00') })).rejects.toThrow(
      "payment time 2025-12-31T23:59:59+08:00 is before the site's first day 2026-01-01",
    );
    expect((await loadPayments(env.influx, site.id)).map((p) => p.reference)).toEqual(['F3']);
  });
});
