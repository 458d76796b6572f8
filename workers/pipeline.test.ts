import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addDays, computeBillRun, liveFigures, liveInputsFromReadings, moneyFen, zoneOf } from '../core/index.ts';
import type { BillRun, PaymentRow, ReadingRow } from '../core/index.ts';
import { quoteString } from '../influx/client.ts';
import { processBalance } from './balance.ts';
import type { WorkerContext } from './context.ts';
import { recordPayment } from './payments.ts';
import { closeQueues } from './queues.ts';
import { pendingSettlements } from './settle-requests.ts';
import { processSettlement, settleSiteDay } from './settlement.ts';
import { liveBill } from './statement.ts';
import { rollupAll, SITE_YAML, testContext, testEnv, testSite } from './testing/env.ts';
import type { TestEnv } from './testing/env.ts';
import { readingLines, syntheticReadings } from './testing/month.ts';

const site = testSite();
const zone = zoneOf(site.timezone);
const FROM = '2026-10-01';
const DAYS = 10;
const TO = addDays(FROM, DAYS);
const all = syntheticReadings(site, FROM, DAYS);
// Held back and delivered late: T101's readings of 2026-10-03 09:30-12:30 (peak into flat).
const lateA = zone.midnight('2026-10-03') + 9.5 * 3_600_000;
const lateB = zone.midnight('2026-10-03') + 12.5 * 3_600_000;
const isLate = (r: ReadingRow) => r.meter === 'T101' && r.time > lateA && r.time < lateB;
const onTime = all.filter((r) => !isLate(r));
const late = all.filter(isLate);

const payments: PaymentRow[] = [
  { time: zone.midnight('2026-10-02') + 3_600_000, account: 'A102', fen: 300_00, reference: 'P1' },
  { time: zone.midnight('2026-10-06') + 7_200_000, account: 'A101', fen: 1_000_00, reference: 'P2' },
];

describe('live pipeline = offline bill (real Redis and InfluxDB)', () => {
  let env: TestEnv;
  let ctx: WorkerContext;
  const clock = { now: zone.midnight(TO) + 20 * 60_000 };
  const beforeSettlement = new Map<string, number>();
  beforeAll(async () => {
    env = await testEnv('pipe');
    ctx = testContext(env, [site], clock, { lateWindowDays: 14, lateCheckEveryMs: 60_000 });
    await env.influx.write(readingLines(site.id, onTime));
    for (const p of payments) await recordPayment({ site, influx: env.influx, redis: env.redis, keyPrefix: env.prefix }, p);
  });
  afterAll(async () => {
    await closeQueues(ctx.queues);
    await env.cleanup();
  });

  it('rollup writes integer 15-minute buckets whose sum per meter is the offline energy', async () => {
    const r = await rollupAll(ctx, site.id);
    expect(r.readings).toBeGreaterThan(0);
    const rows = await env.influx.query(`SELECT sum(wh) FROM tou_bucket WHERE site = ${quoteString(site.id)} GROUP BY meter`);
    const bill = computeBillRun(site, onTime, [], FROM, TO);
    const tenantWh = rows.filter((x) => String(x.meter).startsWith('T')).reduce((s, x) => s + (x.sum as number), 0);
    expect(kwh(tenantWh)).toBe(bill.master.tenant_kwh);
    // Nothing settled yet: every day is provisional, shares and loss included, priced per
    // line as the settlement will; the days are complete, so the provisional charges are
    // the bill's totals and the live balance is already the offline closing balance.
    const live = await processBalance(ctx, { site: site.id });
    const offline = computeBillRun(site, onTime, payments, FROM, TO);
    const reference = liveFigures(site, liveInputsFromReadings(site, onTime, payments, clock.now));
    for (const a of offline.accounts) {
      const mine = live.find((x) => x.account === a.account)!;
      expect(money(mine.provisionalFen), a.account).toBe(a.total_amount);
      expect(money(mine.balanceFen), a.account).toBe(a.closing_balance);
      expect(mine.balanceFen).toBe(reference.accounts.find((x) => x.account === a.account)!.balanceFen);
      // live = previous closing (nothing settled: the opening) + payments - provisional charges.
      const paid = payments.filter((p) => p.account === a.account).reduce((s, p) => s + p.fen, 0);
      expect(mine.closingFen).toBe(moneyFen(site.accounts.find((x) => x.id === a.account)!.openingBalance) + paid);
      expect(mine.balanceFen).toBe(mine.closingFen - mine.provisionalFen);
      beforeSettlement.set(a.account, mine.balanceFen);
    }
  });

  it('settles every due day once; the month equals computeBillRun byte for byte; a re-run changes nothing', async () => {
    const first = await processSettlement(ctx, { site: site.id });
    expect(first.map((d) => d.day)).toEqual(Array.from({ length: DAYS }, (_, i) => addDays(FROM, i)));
    expect(first.every((d) => d.outcome === 'settled')).toBe(true);
    const offline = computeBillRun(site, onTime, payments, FROM, TO);
    expect(same(await liveBill(env.influx, site, FROM, TO))).toBe(same(offline));
    // Re-running a day (a retry, a duplicate job) writes no new revision.
    const again = await processSettlement(ctx, { site: site.id, day: '2026-10-04' });
    expect(again[0].outcome).toBe('unchanged');
    expect(await processSettlement(ctx, { site: site.id })).toEqual([]);
  });

  it('balances equal the offline closing balances (nothing unsettled) and did not move at settlement', async () => {
    const live = await processBalance(ctx, { site: site.id });
    const offline = computeBillRun(site, onTime, payments, FROM, TO);
    for (const a of offline.accounts) {
      const mine = live.find((x) => x.account === a.account)!;
      expect(money(mine.balanceFen)).toBe(a.closing_balance);
      expect(mine.provisionalFen).toBe(0);
      expect(mine.balanceFen - beforeSettlement.get(a.account)!, `jump of ${a.account}`).toBe(0);
    }
  });

  it('late readings of a settled day: buckets recomputed, adjustment lines with the reason, month = offline on all readings', async () => {
    clock.now += 2 * 60_000; // past lateCheckEveryMs
    await rollupAll(ctx, site.id); // stores the fingerprints' bound
    await env.influx.write(readingLines(site.id, late));
    clock.now += 2 * 60_000;
    const r = await rollupAll(ctx, site.id);
    expect(r.lateDays).toBe(1);
    // The meter's rollup went back to the changed day: the next runs recompute its buckets
    // from the day's midnight, already equal to the offline cells on all readings.
    await rollupAll(ctx, site.id);
    const day = '2026-10-03';
    const buckets = await env.influx.query(`SELECT sum(wh) FROM tou_bucket WHERE site = ${quoteString(site.id)} AND meter = 'T101' AND time >= ${zone.midnight(day)}ms AND time < ${zone.midnight(addDays(day, 1))}ms GROUP BY period`);
    const offlineDay = computeBillRun(site, all, [], day, addDays(day, 1)).accounts.find((a) => a.account === 'A101')!.lines.filter((l) => l.kind === 'own');
    expect(Object.fromEntries(buckets.map((b) => [b.period, kwh(b.sum as number)]))).toEqual(Object.fromEntries(offlineDay.map((l) => [l.period, l.kwh])));
    // Recorded for the site's one settlement job, which settles them in day order.
    expect((await pendingSettlements(ctx, site.id)).map((d) => d.day)).toEqual(['2026-10-02', '2026-10-03']);
    expect(await ctx.queues.settlement.getJobs(['waiting', 'delayed', 'prioritized'])).toHaveLength(1);
    const results = await processSettlement(ctx, { site: site.id });
    expect(results.map((x) => x.day)).toEqual(['2026-10-02', '2026-10-03']);
    expect(await pendingSettlements(ctx, site.id)).toEqual([]);
    expect(results.find((x) => x.day === '2026-10-03')!.outcome).toBe('adjusted');
    expect(results.find((x) => x.day === '2026-10-02')!.outcome).toBe('unchanged');

    // Visible: revision 0 is untouched, revision 1 holds the differences and the reason.
    const t = zone.midnight('2026-10-03');
    const rev1 = await env.influx.query(`SELECT wh, fen, reason FROM charge WHERE site = ${quoteString(site.id)} AND time = ${t}ms AND rev = '1' GROUP BY account, kind, period`);
    expect(rev1.length).toBeGreaterThan(0);
    expect(rev1.every((x) => /late or corrected readings of T101/.test(x.reason as string))).toBe(true);
    expect(rev1.some((x) => x.account === 'A101' && x.kind === 'own' && x.period === 'peak' && (x.wh as number) !== 0)).toBe(true);
    const rev0 = computeBillRun(site, onTime, [], '2026-10-03', '2026-10-04');
    const rev0Live = await liveRev0(t);
    expect(rev0Live).toBe(rev0.accounts.reduce((s, a) => s + Number(a.total_amount.replace('.', '')), 0));

    const offline = computeBillRun(site, all, payments, FROM, TO);
    expect(same(await liveBill(env.influx, site, FROM, TO))).toBe(same(offline));
    // A bill starting mid-data: the opening balance carries the earlier settled days.
    expect(same(await liveBill(env.influx, site, '2026-10-04', TO))).toBe(same(computeBillRun(site, all, payments, '2026-10-04', TO)));
    const live = await processBalance(ctx, { site: site.id });
    for (const a of offline.accounts) expect(money(live.find((x) => x.account === a.account)!.balanceFen)).toBe(a.closing_balance);
  });

  async function liveRev0(t: number): Promise<number> {
    const rows = await env.influx.query(`SELECT sum(fen) FROM charge WHERE site = ${quoteString(site.id)} AND time = ${t}ms AND rev = '0'`);
    return rows[0].sum as number;
  }
});

/** The bill JSON (billRunJson's form) without `quality`, which the live pipeline keeps as events. */
const same = (b: BillRun) => JSON.stringify({ ...b, quality: undefined }, null, 2);
const kwh = (wh: number) => (wh / 1000).toFixed(3); // test-side formatting of an integer only
const money = (fen: number) => `${fen < 0 ? '-' : ''}${Math.floor(Math.abs(fen) / 100)}.${String(Math.abs(fen) % 100).padStart(2, '0')}`;

describe('a meter silent past the settlement (real Redis and InfluxDB)', () => {
  it('its next readings re-settle the days they reach: adjustment lines, bill = offline', async () => {
    const env = await testEnv('gap');
    const clock = { now: zone.midnight('2026-10-03') + 20 * 60_000 };
    const ctx = testContext(env, [site], clock, { lateWindowDays: 14, lateCheckEveryMs: 60_000 });
    try {
      const rows = syntheticReadings(site, FROM, 3);
      // T102 is silent from 2026-10-02 21:00 until 2026-10-03 01:00.
      const silentA = zone.midnight('2026-10-02') + 21 * 3_600_000;
      const silentB = zone.midnight('2026-10-03') + 3_600_000;
      const silent = (r: ReadingRow) => r.meter === 'T102' && r.time > silentA && r.time < silentB;
      const before = rows.filter((r) => r.time < zone.midnight('2026-10-03') + 20 * 60_000 && !silent(r));
      await env.influx.write(readingLines(site.id, before));
      await rollupAll(ctx, site.id);
      expect((await processSettlement(ctx, { site: site.id })).map((d) => d.day)).toEqual(['2026-10-01', '2026-10-02']);
      // T102 is back: its first reading's interval reaches into the settled 2026-10-02.
      clock.now = zone.midnight('2026-10-04') + 20 * 60_000;
      await env.influx.write(readingLines(site.id, rows.filter((r) => !before.includes(r) && !silent(r))));
      await rollupAll(ctx, site.id);
      const asked = await pendingSettlements(ctx, site.id);
      expect(asked.map((j) => j.day)).toEqual(['2026-10-02']);
      expect(asked[0].reason).toMatch(/^readings after the day was settled: T102 \(silent 2026-10-02T2\d:[\d:.]+\+08:00 to 2026-10-03T01:[\d:.]+\+08:00\)$/);
      // One pass: the re-settled day, then the newly due 2026-10-03.
      const r = await processSettlement(ctx, { site: site.id });
      expect(r.map((x) => [x.day, x.outcome])).toEqual([
        ['2026-10-02', 'adjusted'],
        ['2026-10-03', 'settled'],
      ]);
      const offline = computeBillRun(site, rows.filter((r) => !silent(r)), [], FROM, '2026-10-04');
      expect(same(await liveBill(env.influx, site, FROM, '2026-10-04'))).toBe(same(offline));
    } finally {
      await closeQueues(ctx.queues);
      await env.cleanup();
    }
  });
});

describe('a corrected tariff for a settled day (real InfluxDB)', () => {
  it('reverses the old-price lines and adds the new ones in two revisions; the bill = offline at the new price', async () => {
    const env = await testEnv('tariff');
    const clock = { now: zone.midnight('2026-10-02') + 20 * 60_000 };
    const corrected = testSite(SITE_YAML.replace('peak: "1.053200"', 'peak: "1.100000"'));
    const ctx = testContext(env, [site], clock);
    try {
      const rows = syntheticReadings(site, FROM, 1);
      await env.influx.write(readingLines(site.id, rows));
      expect((await settleSiteDay(ctx, site, FROM)).outcome).toBe('settled');
      const r = await settleSiteDay({ ...ctx, sites: new Map([[site.id, corrected]]) }, corrected, FROM, 'peak price corrected in the site file');
      expect(r).toMatchObject({ outcome: 'adjusted', rev: 2 });
      const revs = await env.influx.query(`SELECT fen, price, reason FROM charge WHERE period = 'peak' AND account = 'A101' AND kind = 'own' GROUP BY rev`);
      expect(revs.map((x) => [x.rev, Math.sign(x.fen as number), x.price])).toEqual([
        ['0', 1, '1.053200'],
        ['1', -1, '1.053200'],
        ['2', 1, '1.100000'],
      ]);
      expect(revs[1].reason).toBe('peak price corrected in the site file');
      const offline = computeBillRun(corrected, rows, [], FROM, '2026-10-02');
      expect(same(await liveBill(env.influx, corrected, FROM, '2026-10-02'))).toBe(same(offline));
    } finally {
      await closeQueues(ctx.queues);
      await env.cleanup();
    }
  });
});
