import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { moneyFen, zoneOf } from '../core/index.ts';
import type { InfluxV1 } from '../influx/client.ts';
import { paymentLine } from '../influx/payment-lines.ts';
import { M } from '../influx/schema.ts';
import { PAID_SUMS_MAX_AGE_MS, processBalance } from './balance.ts';
import type { WorkerContext } from './context.ts';
import { recordPayment } from './payments.ts';
import { closeQueues } from './queues.ts';
import { testContext, testEnv, testSite } from './testing/env.ts';
import type { TestEnv } from './testing/env.ts';

/**
 * Issue 15: the balance job's payment sums open every payment series of the site (one per
 * reference, tens of thousands after a year), so they are kept per process between ledger
 * writes instead of summed on every run. A payment must still show at the next run, a
 * payment stamped a few minutes ahead once its instant has come, and a ledger write whose
 * counter bump was lost (a writer that died in between) within a minute.
 */
describe('the balance keeps payment sums between ledger writes (real Redis and InfluxDB)', () => {
  const site = testSite();
  const zone = zoneOf(site.timezone);
  const clock = { now: zone.midnight('2026-10-05') + 10 * 3_600_000 };
  const statements: string[] = [];
  let env: TestEnv;
  let ctx: WorkerContext;

  beforeAll(async () => {
    env = await testEnv('paidsum');
    const base = testContext(env, [site], clock, { lateCheckEveryMs: 1e12 });
    // The same client, every statement it sends noted.
    const influx = Object.create(env.influx) as InfluxV1;
    influx.queryRaw = (q, opts) => {
      statements.push(q);
      return env.influx.queryRaw(q, opts);
    };
    ctx = { ...base, influx };
  });
  afterAll(async () => {
    await closeQueues(ctx.queues);
    await env.cleanup();
  });

  const opening = (a: string) => moneyFen(site.accounts.find((x) => x.id === a)!.openingBalance);
  const balanceOf = async (a: string) => (await processBalance(ctx, { site: site.id })).find((b) => b.account === a)!.balanceFen;
  const paymentStatements = () => statements.filter((q) => q.includes(`FROM ${M.payment} `)).length;
  const deps = () => ({ site, influx: env.influx, redis: env.redis, keyPrefix: env.prefix, now: () => clock.now });

  it('a payment shows at the next run; runs without a ledger write send no payment statement', async () => {
    expect(await balanceOf('A101')).toBe(opening('A101'));
    await recordPayment(deps(), { account: 'A101', fen: 10_000, reference: 'PS-1', time: clock.now - 1_000 });
    expect(await balanceOf('A101')).toBe(opening('A101') + 10_000);
    const before = paymentStatements();
    clock.now += 3_000;
    expect(await balanceOf('A101')).toBe(opening('A101') + 10_000);
    clock.now += 3_000;
    await processBalance(ctx, { site: site.id });
    expect(paymentStatements()).toBe(before);
  });

  it('a payment stamped ahead of now (within the tolerance) is credited once its instant has come, not before', async () => {
    const at = clock.now + 30_000;
    await recordPayment(deps(), { account: 'A102', fen: 5_000, reference: 'PS-2', time: at });
    expect(await balanceOf('A102')).toBe(opening('A102'));
    clock.now = at - 1;
    expect(await balanceOf('A102')).toBe(opening('A102'));
    clock.now = at;
    expect(await balanceOf('A102')).toBe(opening('A102') + 5_000);
  });

  it('a ledger write whose counter bump was lost shows within the sums\' maximum age', async () => {
    const t = clock.now;
    await processBalance(ctx, { site: site.id });
    // Written as recordPayment writes it, without the bump after it (the writer died in between).
    await env.influx.write([paymentLine(site.id, { account: 'A103', reference: 'PS-3', fen: 7_000, time: t - 500 })]);
    clock.now = t + PAID_SUMS_MAX_AGE_MS - 1_000;
    expect(await balanceOf('A103')).toBe(opening('A103'));
    clock.now = t + PAID_SUMS_MAX_AGE_MS;
    expect(await balanceOf('A103')).toBe(opening('A103') + 7_000);
  });
});
