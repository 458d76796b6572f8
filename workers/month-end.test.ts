import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, RedisTokenStore, SiteRef } from '../api/index.ts';
import { computeBillRun, kwhText, moneyText, zoneOf } from '../core/index.ts';
import type { BillRun, PaymentRow } from '../core/index.ts';
import { processBalance } from './balance.ts';
import type { AccountBalance } from './balance.ts';
import type { WorkerContext } from './context.ts';
import { recordPayment } from './payments.ts';
import { closeQueues } from './queues.ts';
import { processSettlement } from './settlement.ts';
import { liveBill } from './statement.ts';
import { rollupAll, SITE_YAML, testContext, testEnv, testSite } from './testing/env.ts';
import type { TestEnv } from './testing/env.ts';
import { readingLines, syntheticReadings } from './testing/month.ts';

/**
 * Issue 10: the month's bill from the live pipeline, the API and the `submeter bill` command
 * (run as a user runs it) is one bill; and the live balance at the end of the month, five
 * minutes after midnight with the last day still provisional, already equals the command's
 * closing balance; settling the last day does not move it.
 */
const site = testSite();
const zone = zoneOf(site.timezone);
const FROM = '2026-10-01';
const TO = '2026-11-01';
const rows = syntheticReadings(site, FROM, 31, 15 * 60_000, 7);
const payments: PaymentRow[] = [
  { time: Date.parse('2026-10-03T09:00:00+08:00'), account: 'A102', fen: 500_00, reference: 'BANK-1' },
  { time: Date.parse('2026-10-20T18:30:00+08:00'), account: 'A101', fen: 1_200_00, reference: 'BANK-2' },
];
const run = promisify(execFile);
const strip = (b: BillRun) => JSON.stringify({ ...b, quality: undefined });

describe('month end: live pipeline, API and CLI agree, and so does the live balance (real Redis and InfluxDB)', () => {
  let env: TestEnv;
  let ctx: WorkerContext;
  let dir: string;
  let cli: BillRun;
  const clock = { now: zone.midnight(TO) + 5 * 60_000 };

  beforeAll(async () => {
    env = await testEnv('monthend');
    ctx = testContext(env, [site], clock);
    dir = mkdtempSync(join(tmpdir(), 'submeter-monthend-'));
    writeFileSync(join(dir, 'site.yaml'), SITE_YAML);
    writeFileSync(join(dir, 'readings.csv'), ['time,meter,kwh', ...rows.map((r) => `${zone.format(r.time)},${r.meter},${kwhText(r.wh)}`)].join('\n') + '\n');
    writeFileSync(join(dir, 'payments.csv'), ['time,account,amount,reference', ...payments.map((p) => `${zone.format(p.time)},${p.account},${moneyText(p.fen)},${p.reference}`)].join('\n') + '\n');
    const out = await run('npx', ['submeter', 'bill', '--site', join(dir, 'site.yaml'), '--readings', join(dir, 'readings.csv'), '--payments', join(dir, 'payments.csv'), '--from', FROM, '--to', TO], { maxBuffer: 1 << 24 });
    cli = JSON.parse(out.stdout) as BillRun;
    await env.influx.write(readingLines(site.id, rows.filter((r) => r.time <= clock.now)));
    for (const p of payments) await recordPayment({ site, influx: env.influx, redis: env.redis, keyPrefix: env.prefix }, p);
    await rollupAll(ctx, site.id);
  }, 120_000);
  afterAll(async () => {
    await closeQueues(ctx.queues);
    await env.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const balances = (live: readonly AccountBalance[]) => Object.fromEntries(live.map((b) => [b.account, moneyText(b.balanceFen)]));
  const closing = () => Object.fromEntries(cli.accounts.map((a) => [a.account, a.closing_balance]));

  it('at 00:05 on the 1st, October 31 still provisional: live balance = the CLI closing balance', async () => {
    const settled = await processSettlement(ctx, { site: site.id });
    expect(settled.map((d) => d.day).at(-1)).toBe('2026-10-30'); // the 31st is not due before 00:15
    const live = await processBalance(ctx, { site: site.id });
    expect(live.every((b) => b.provisionalFen > 0)).toBe(true);
    expect(balances(live)).toEqual(closing());
    // Spelled out: the previous closing (through October 30) + payments since - the 31st's
    // provisional charges, which are the 31st's lines as the settlement will make them.
    const before = computeBillRun(site, rows, payments, FROM, '2026-10-31');
    const last = computeBillRun(site, rows, payments, '2026-10-31', TO);
    for (const b of live) {
      expect(moneyText(b.closingFen)).toBe(before.accounts.find((a) => a.account === b.account)!.closing_balance);
      expect(moneyText(b.provisionalFen)).toBe(last.accounts.find((a) => a.account === b.account)!.total_amount);
      expect(b.balanceFen).toBe(b.closingFen - b.provisionalFen);
    }
  });

  it('after October 31 is settled: the same balance (no jump), and the live bill = the CLI bill', async () => {
    clock.now = zone.midnight(TO) + 20 * 60_000;
    expect((await processSettlement(ctx, { site: site.id })).map((d) => [d.day, d.outcome])).toEqual([['2026-10-31', 'settled']]);
    const live = await processBalance(ctx, { site: site.id });
    expect(live.every((b) => b.provisionalFen === 0)).toBe(true);
    expect(balances(live)).toEqual(closing());
    expect(strip(await liveBill(env.influx, site, FROM, TO))).toBe(strip(cli));
  });

  it('the API statements of every account = the CLI bill (lines, totals, balances)', async () => {
    const app = buildApp({ site: new SiteRef(site), influx: env.influx, redis: env.redis, keyPrefix: `${env.prefix}:api:`, workersKeyPrefix: env.prefix, now: () => clock.now, cacheMs: 0 });
    const server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    try {
      const token = (await new RedisTokenStore(env.redis, `${env.prefix}:api:`).create({ site: site.id, role: 'viewer' })).token;
      for (const a of cli.accounts) {
        const r = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/accounts/${a.account}/bills/2026-10`, { headers: { authorization: `Bearer ${token}` } });
        const st = (await r.json()) as { lines: { estimated: boolean }[]; kwh: unknown; total_amount: string; opening_balance: string; payments: string; closing_balance: string };
        expect(r.status).toBe(200);
        expect({ lines: st.lines.map(({ estimated: _e, ...l }) => l), kwh: st.kwh, total_amount: st.total_amount, opening_balance: st.opening_balance, payments: st.payments, closing_balance: st.closing_balance }).toEqual({
          lines: a.lines,
          kwh: a.kwh,
          total_amount: a.total_amount,
          opening_balance: a.opening_balance,
          payments: a.payments,
          closing_balance: a.closing_balance,
        });
      }
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
