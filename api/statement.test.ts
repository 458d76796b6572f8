import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeAdvice, computeBillRun, kwhText, parseFixed, zoneOf } from '../core/index.ts';
import type { BillRun, PaymentRow } from '../core/index.ts';
import { closeQueues, recordPayment } from '../workers/index.ts';
import type { WorkerContext } from '../workers/context.ts';
import { processSettlement } from '../workers/settlement.ts';
import { rollupAll, testContext, testEnv, testSite } from '../workers/testing/env.ts';
import type { TestEnv } from '../workers/testing/env.ts';
import { readingLines, syntheticReadings } from '../workers/testing/month.ts';
import { buildApp } from './app.ts';
import { RedisTokenStore } from './auth/token-store.ts';
import { SiteRef } from './site-ref.ts';

/**
 * The statement a tenant can verify (issue 10), on what the real workers stored: the meter
 * readings are the registers at the month's bounds, each pool's cells add up to the pool
 * line with the weights shown, the loss section is the bill's master summary, lines resting
 * on a gap are marked estimated (a gap inside one cell is not an estimate, billing.md
 * amendment 11), payments are listed; in JSON, CSV and both HTML languages.
 */
const site = testSite();
const zone = zoneOf(site.timezone);
// T101 silent twice on 2026-10-02, each time longer than its max_gap (1 h): 06:30-09:00
// across the valley -> peak boundary at 08:00 (its spread divides energy between cells: an
// estimate), and 12:00-15:30 inside the flat period (one cell: its energy is exact whatever
// the spread, billing.md amendment 11).
const day2 = zone.midnight('2026-10-02');
const silent = [
  [day2 + 6.5 * 3_600_000, day2 + 9 * 3_600_000],
  [day2 + 12 * 3_600_000, day2 + 15.5 * 3_600_000],
];
const rows = syntheticReadings(site, '2026-10-01', 3).filter((r) => !(r.meter === 'T101' && silent.some(([a, b]) => r.time > a && r.time < b)));
const payments: PaymentRow[] = [{ time: zone.midnight('2026-10-02') + 10 * 3_600_000, account: 'A101', fen: 300_00, reference: 'WX-42' }];

describe('verifiable statement (real Redis and InfluxDB)', () => {
  let env: TestEnv;
  let ctx: WorkerContext;
  let server: Server;
  let base: string;
  let token: string;
  let bill: BillRun;
  const clock = { now: zone.midnight('2026-10-04') + 20 * 60_000 };

  beforeAll(async () => {
    env = await testEnv('statement');
    ctx = testContext(env, [site], clock);
    await env.influx.write(readingLines(site.id, rows));
    await recordPayment({ site, influx: env.influx, redis: env.redis, keyPrefix: env.prefix }, payments[0]);
    await rollupAll(ctx, site.id);
    await processSettlement(ctx, { site: site.id });
    bill = computeBillRun(site, rows, payments, '2026-10-01', '2026-11-01');
    const app = buildApp({ site: new SiteRef(site), influx: env.influx, redis: env.redis, keyPrefix: `${env.prefix}:api:`, workersKeyPrefix: env.prefix, now: () => clock.now, cacheMs: 0 });
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    token = (await new RedisTokenStore(env.redis, `${env.prefix}:api:`).create({ site: site.id, role: 'tenant', account: 'A101' })).token;
  }, 120_000);
  afterAll(async () => {
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    await closeQueues(ctx.queues);
    await env.cleanup();
  });

  const get = async (q = '') => fetch(`${base}/api/v1/accounts/A101/bills/2026-10${q}`, { headers: { authorization: `Bearer ${token}` } });
  const wh = (kwh: string) => parseFixed(kwh, 3)!;

  it('JSON: number, property, meters, pools with every cell, loss, payments, estimated marks', async () => {
    const st = (await (await get()).json()) as any;
    const mine = bill.accounts.find((a) => a.account === 'A101')!;
    expect(st).toMatchObject({ statement_no: 'wk-plaza-A101-202610', property: 'Plaza', total_amount: mine.total_amount, closing_balance: mine.closing_balance });
    expect(st.payment_list).toEqual([{ time: '2026-10-02T10:00:00+08:00', amount: '300.00', reference: 'WX-42' }]);

    // 起码 / 止码: the registers at 2026-10-01 00:00 and 2026-10-04 00:00 (readings at both bounds).
    const t101 = rows.filter((r) => r.meter === 'T101');
    expect(st.meters).toEqual([
      {
        meter: 'T101',
        from: '2026-10-01T00:00:00+08:00',
        to: '2026-11-01T00:00:00+08:00',
        start_reading: kwhText(t101[0].wh),
        start_time: '2026-10-01T00:00:00+08:00',
        multiplier: '1',
        start_primary: kwhText(t101[0].wh),
        end_reading: kwhText(t101[t101.length - 1].wh),
        end_time: '2026-10-04T00:00:00+08:00',
        end_multiplier: '1',
        end_primary: kwhText(t101[t101.length - 1].wh),
        changes: [],
        kwh: mine.kwh.own,
        estimated: true,
      },
    ]);

    // Elevators, by area: 120 of 500 m2; the cells add up to the line, each share within 1 Wh of kWh x weight / total.
    const elev = st.pools.find((p: any) => p.pool === 'elevators');
    expect(elev).toMatchObject({ basis: 'area', your_weight: '120', total_weight: '500', percent: '24.00' });
    const line = mine.lines.find((l) => l.kind === 'common' && l.pool === 'elevators' && l.period === 'peak')!;
    expect(elev.cells.filter((c: any) => c.period === 'peak').reduce((s: number, c: any) => s + wh(c.your_kwh), 0)).toBe(wh(line.kwh));
    for (const c of elev.cells) {
      const exact = (wh(c.kwh) * 120) / 500;
      expect(wh(c.your_kwh) - Math.floor(exact)).toBeGreaterThanOrEqual(0);
      expect(wh(c.your_kwh) - Math.floor(exact)).toBeLessThanOrEqual(1);
    }
    expect(wh(elev.your_kwh)).toBe(elev.cells.reduce((s: number, c: any) => s + wh(c.your_kwh), 0));

    // Loss: the bill's master summary, the normal cap, the share by consumption.
    expect(st.loss).toMatchObject({
      master_kwh: bill.master.kwh,
      submeters_kwh: kwhText(wh(bill.master.tenant_kwh) + wh(bill.master.common_kwh)),
      loss_kwh: bill.master.loss_kwh,
      loss_rate: bill.master.loss_rate,
      normal_rate: '0.03',
      allocated_kwh: bill.master.loss_allocated_kwh,
      abnormal_kwh: bill.master.loss_abnormal_kwh,
      basis: 'consumption',
      your_kwh: mine.kwh.loss,
    });
    // Estimated: own valley and peak (the gap across 08:00) and the loss lines of those
    // periods; not the flat lines, whose only gap lies inside one cell (amendment 11).
    const est = (kind: string, period: string) => st.lines.find((l: any) => l.kind === kind && l.period === period)?.estimated;
    expect([est('own', 'valley'), est('own', 'peak'), est('own', 'flat'), est('loss', 'valley'), est('loss', 'peak'), est('loss', 'flat')]).toEqual([true, true, false, true, true, false]);
    expect(JSON.stringify(st.explain.pools)).not.toContain('A102');
  });

  it('advice: the core formulas on the stored data, divided by the 3 days that have data of the 30 asked for, and says so', async () => {
    const r = await fetch(`${base}/api/v1/accounts/A101/advice?from=2026-09-05&to=2026-10-05`, { headers: { authorization: `Bearer ${token}` } });
    const adv = (await r.json()) as any;
    const offline = computeAdvice(site, rows, '2026-09-05', '2026-10-05');
    expect(offline).toMatchObject({ days: 3, days_in_range: 30 });
    const { account: _a, ...core } = offline.accounts.find((a) => a.account === 'A101')!;
    expect(adv).toMatchObject({ days: 3, days_in_range: 30, ...core });
    expect(adv.tips.at(-1)).toContain('3 of 30 days');
  });

  it('CSV and printable HTML in Chinese and English carry the same figures', async () => {
    const csv = await (await get('?format=csv')).text();
    const tables = csv.trim().split('\r\n\r\n').map((t) => t.split('\r\n'));
    expect(tables.map((t) => t[0])).toEqual([
      'account,month,status,kind,pool,period,kwh,price,amount,estimated',
      'meter,from,to,start_reading,start_time,multiplier,start_primary,end_reading,end_time,end_multiplier,end_primary,kwh,estimated',
      'share,date,period,kwh,basis,your_weight,total_weight,your_kwh,your_seconds,cell_seconds',
      'payment_time,amount,reference',
    ]);
    expect(tables[2].filter((r) => r.startsWith('common:elevators,2026-10-02,peak,'))).toHaveLength(1);
    const zh = await (await get('?format=html&lang=zh')).text();
    for (const s of ['起码', '止码', '倍率', '账单编号', 'wk-plaza-A101-202610', '异常线损', 'WX-42', '按面积', '* 含跨数据缺口的估算电量']) expect(zh).toContain(s);
    const en = await (await get('?format=html&lang=en')).text();
    for (const s of ['Start reading', 'End reading', 'Multiplier', 'Statement no.', 'Abnormal loss', '24.00%', 'never charged to tenants']) expect(en).toContain(s);
  });
});

