import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSiteYaml, ReadingsScanner, zoneOf } from '../core/index.ts';
import type { ReadingRow } from '../core/index.ts';
import { readPaymentsFile } from '../cli/commands/bill.ts';
import { closeQueues } from '../workers/queues.ts';
import { processRollup } from '../workers/rollup.ts';
import { processSettlement } from '../workers/settlement.ts';
import { liveBill } from '../workers/statement.ts';
import { recordPayment } from '../workers/payments.ts';
import { testContext, testEnv } from '../workers/testing/env.ts';
import type { TestEnv } from '../workers/testing/env.ts';
import { readingLines } from '../workers/testing/month.ts';
import type { WorkerContext } from '../workers/context.ts';
import { buildApp } from './app.ts';
import { RedisTokenStore } from './auth/token-store.ts';
import { SiteRef } from './site-ref.ts';

/**
 * billing.md section 11, live: the hand-worked case testcases/move-out-mid-month run
 * through the pipeline (readings in InfluxDB, the workers' rollup and settlement, payments
 * through recordPayment: a deposit, a refund as a negative payment, a transfer, the
 * deposit returned) and read through the API: A1's final statement is the hand-worked
 * expected-final.json, A2's first statement starts at its move-in, the bill of the three
 * days is the hand-worked expected.json (pool shares prorated by occupied time).
 */

const dir = new URL('../testcases/move-out-mid-month/', import.meta.url);
const site = parseSiteYaml(readFileSync(new URL('site.yaml', dir), 'utf8'));
const zone = zoneOf(site.timezone);

let env: TestEnv;
let ctx: WorkerContext;
let server: Server;
let base = '';
const clock = { now: 0 };
const tok: Record<string, string> = {};

beforeAll(async () => {
  env = await testEnv('moveout');
  const scanner = new ReadingsScanner(site, 'readings.csv');
  scanner.push(readFileSync(new URL('readings.csv', dir)));
  const store = scanner.end();
  const rows: ReadingRow[] = [];
  site.meters.forEach((m, i) => {
    const s = store.series(i);
    for (let k = 0; k < s.time.length; k++) rows.push({ time: s.time[k], meter: m.id, wh: s.wh[k] });
  });
  await env.influx.write(readingLines(site.id, rows));
  // The ledger through the one payment path; the CSV's two transfer rows are one transfer.
  const deps = { site, influx: env.influx, redis: env.redis, keyPrefix: env.prefix };
  for (const p of await readPaymentsFile(new URL('payments.csv', dir).pathname, site)) {
    if (p.kind === 'transfer') {
      if (p.fen < 0) await recordPayment(deps, { account: p.account, to: 'A2', fen: -p.fen, reference: p.reference, time: p.time, kind: 'transfer' });
      continue;
    }
    await recordPayment(deps, { account: p.account, fen: p.fen, reference: p.reference, time: p.time, ...(p.kind ? { kind: p.kind } : {}) });
  }
  clock.now = zone.midnight('2026-10-04') + 20 * 60_000;
  // The hand-worked readings are days apart: the settlement window must hold them.
  ctx = testContext(env, [site], clock, { lateWindowDays: 14, settleLookbackMs: 4 * 86_400_000, settleLookaheadMs: 4 * 86_400_000 });
  await processRollup(ctx, { site: site.id, batch: 0, batches: 1 });
  await processSettlement(ctx, { site: site.id });
  const store2 = new RedisTokenStore(env.redis, `${env.prefix}:api:`);
  for (const a of ['A1', 'A2']) tok[a] = (await store2.create({ site: site.id, role: 'tenant', account: a })).token;
  tok.manager = (await store2.create({ site: site.id, role: 'manager' })).token;
  const app = buildApp({ site: new SiteRef(site), influx: env.influx, redis: env.redis, keyPrefix: `${env.prefix}:api:`, workersKeyPrefix: env.prefix, now: () => clock.now, cacheMs: 0 });
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}, 120_000);

afterAll(async () => {
  await new Promise<void>((resolve) => server?.close(() => resolve()));
  server?.closeAllConnections();
  await closeQueues(ctx.queues);
  await env.cleanup();
});

const get = async (path: string, who: string) => {
  const r = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${tok[who]}` } });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
};

describe('a mid-month move-out through the live pipeline and the API', () => {
  it("meter health names each unit's occupant now: A2 after its move-in, the landlord while vacant (not the first account listed)", async () => {
    const health = async () => {
      const r = await fetch(`${base}/api/v1/meters/health`, { headers: { authorization: `Bearer ${tok.manager}` } });
      expect(r.status).toBe(200);
      return ((await r.json()) as { meters: { meter: string; account: string | null; vacant: boolean | null }[] }).meters;
    };
    const row = (ms: Awaited<ReturnType<typeof health>>, id: string) => ms.find((m) => m.meter === id);
    const now = clock.now;
    try {
      const after = await health();
      expect(row(after, 'T101')).toMatchObject({ account: 'A2', vacant: false });
      expect(row(after, 'T102')).toMatchObject({ account: 'B', vacant: false });
      expect(row(after, 'C1')).toMatchObject({ account: null, vacant: null });
      clock.now = zone.midnight('2026-10-02') + 20 * 3_600_000;
      expect(row(await health(), 'T101')).toMatchObject({ account: 'L', vacant: true });
      clock.now = zone.midnight('2026-10-02') + 10 * 3_600_000;
      expect(row(await health(), 'T101')).toMatchObject({ account: 'A1', vacant: false });
    } finally {
      clock.now = now;
    }
  });

  it('the settled days are the hand-worked bill: occupant cut at 14:00, vacancy to the landlord, prorated pool shares', async () => {
    const expected = JSON.parse(readFileSync(new URL('expected.json', dir), 'utf8')) as Record<string, unknown>;
    expect(JSON.parse(JSON.stringify(await liveBill(env.influx, site, '2026-10-01', '2026-10-04')))).toEqual({ ...expected, quality: [] });
  });

  it("A1's final statement is the hand-worked one, settled by the refund, the deposit returned and the transfer", async () => {
    const r = await get('/api/v1/accounts/A1/final-statement', 'A1');
    expect(r.status).toBe(200);
    // The verifiable statement to the move-out instant with the final block: the hand-worked
    // offline final statement (core computeFinalStatement) field for field.
    const exp = JSON.parse(readFileSync(new URL('expected-final.json', dir), 'utf8')) as Record<string, any>;
    const body = r.body as Record<string, any>;
    expect(body.status).toBe('final');
    expect(body).toMatchObject({ site: exp.site, account: exp.account, name: exp.name, currency: exp.currency, move_in: exp.move_in, move_out: exp.move_out, from: exp.from, kwh: exp.kwh });
    expect(body).toMatchObject({ total_amount: exp.total_amount, opening_balance: exp.opening_balance, payments: exp.payments, closing_balance: exp.closing_balance, deposit: exp.deposit });
    expect(body.lines.map(({ estimated: _e, ...l }: Record<string, unknown>) => l)).toEqual(exp.lines);
    expect(body.final).toEqual({ move_out: exp.move_out, deposit: exp.deposit, refund_due: exp.refund_due, amount_due: exp.amount_due, after_move_out: exp.after_move_out, outstanding: exp.outstanding });
    // Its meter ends at the move-out: the register then (a mark the settlement stored), energy to it.
    expect(body.meters).toMatchObject([{ meter: 'T101', from: '2026-10-01T00:00:00+08:00', to: exp.move_out, end_time: exp.move_out, multiplier: '1', changes: [] }]);
    expect(body.meters[0].kwh).toBe(exp.kwh.own);
    // Settling the move-out day announced it (an event for the managers, a notification for the tenant's contacts).
    const ev = await env.influx.query(`SELECT detail FROM event WHERE site = 'moveout' AND kind = 'final_statement' GROUP BY account`);
    expect(ev.map((e) => [e.account, zone.format(e.time as number), e.detail])).toEqual([
      ['A1', '2026-10-02T14:00:00+08:00', 'A1 moved out at 2026-10-02T14:00:00+08:00: the final statement is ready (GET /api/v1/accounts/A1/final-statement)'],
    ]);
  });

  it("A2's first statement starts at its move-in: its own lines only, deposit apart, the transfer in its payments", async () => {
    const r = await get('/api/v1/accounts/A2/bills/2026-10', 'A2');
    expect(r.status).toBe(200);
    const expected = (JSON.parse(readFileSync(new URL('expected.json', dir), 'utf8')) as { accounts: { account: string; lines: unknown[] }[] }).accounts.find((a) => a.account === 'A2')!;
    expect((r.body.lines as Record<string, unknown>[]).map(({ estimated: _e, ...l }: Record<string, unknown>) => l)).toEqual(expected.lines);
    expect(r.body).toMatchObject({ total_amount: '9.82', opening_balance: '0.00', payments: '217.32', closing_balance: '207.50' });
    expect(r.body).toMatchObject({ move_in: '2026-10-03T00:00:00+08:00', move_out: null, deposit: '300.00' });
    expect(r.body.meters).toMatchObject([{ meter: 'T101', from: '2026-10-03T00:00:00+08:00', multiplier: '1', changes: [] }]);
    // A1 has no final statement route for another tenant; A2 none at all (it has not moved out).
    expect((await get('/api/v1/accounts/A2/final-statement', 'A2')).status).toBe(404);
    expect((await get('/api/v1/accounts/A1/final-statement', 'A2')).status).toBe(404);
  });
});
