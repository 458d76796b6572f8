import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, RedisTokenStore, SiteRef } from '../api/index.ts';
import { addDays, computeBillRun, kwhText, moneyText, parseFixed, PERIODS, provisionalSettlements, settleRange, storeReadings, zoneOf } from '../core/index.ts';
import type { ChargeLine, LocalDate, PaymentRow, ReadingRow } from '../core/index.ts';
import { quoteString } from '../influx/client.ts';
import { processBalance } from './balance.ts';
import type { WorkerContext } from './context.ts';
import { loadLiveFigures } from './live-figures.ts';
import { recordPayment } from './payments.ts';
import { closeQueues } from './queues.ts';
import { processSettlement } from './settlement.ts';
import { rollupAll, SITE_YAML, testContext, testEnv, testSite } from './testing/env.ts';
import type { TestEnv } from './testing/env.ts';
import { readingLines, syntheticReadings } from './testing/month.ts';

/**
 * The union of issue 10 (live figures from the one settlement, provisional until the night)
 * and issue 12 (tenancy, meter changes, multipliers): on one day, 2026-10-02, A102 moves out
 * of T102 at 14:37, the unit stands vacant (the landlord's) until A2N moves in at 18:00,
 * T101 is replaced at 10:23 and T103 (behind CTs, x40) gets new CTs (x60) at 16:11. The
 * workers see the readings in small deliveries (the rollup resumes its counter state 5
 * readings at a time, across the changes). Then:
 * - mid-day, the provisional lines of the day (from the buckets) are the lines the
 *   settlement makes of the same readings, and each meter's buckets are its settled cells;
 * - once the day's readings are in, the live balance of every account (the one that moved
 *   out too) is the offline closing balance, and settling the day does not move it.
 */

const FROM = '2026-10-01';
const DAY = '2026-10-02';
const zone = zoneOf('Asia/Shanghai');
const at = (d: LocalDate, hh: number, mm = 0) => zone.midnight(d) + (hh * 60 + mm) * 60_000;
const REPLACED = at(DAY, 10, 23);
const MOVE_OUT = at(DAY, 14, 37);
const CT_SWAP = at(DAY, 16, 11);
const MOVE_IN = at(DAY, 18);

/** Readings as the meters show them: T101's new register after the swap, T103 raw (primary / multiplier). */
function scenario(): { rows: ReadingRow[]; yaml: string } {
  const base = syntheticReadings(testSite(), FROM, 2, 15 * 60_000, 11);
  const before = (meter: string, t: number) => base.filter((r) => r.meter === meter && r.time < t).at(-1)!;
  // T101: the old register ends 100 Wh after its last reading; the new one starts at 5 kWh.
  const t101 = before('T101', REPLACED);
  const final101 = t101.wh + 100;
  // T103: raw = primary / 40 before the swap, then / 60 from the register read at the swap.
  const t103 = before('T103', CT_SWAP);
  const raw0 = 30_000;
  const rawAt = (wh: number) => raw0 + Math.floor((wh - base.find((r) => r.meter === 'T103')!.wh) / 40);
  const swapRaw = rawAt(t103.wh) + 3;
  const rows = base.map((r): ReadingRow => {
    if (r.meter === 'T101' && r.time >= REPLACED) return { ...r, wh: 5_000 + (r.wh - final101) };
    if (r.meter === 'T103') return { ...r, wh: r.time < CT_SWAP ? rawAt(r.wh) : swapRaw + Math.floor((r.wh - t103.wh) / 60) };
    return r;
  });
  const yaml = SITE_YAML.replace('site: { id: wk-plaza,', 'site: { id: wk-tenancy, landlord_account: L,')
    .replace(
      '  - { id: T101, role: tenant, account: A101 }',
      `  - id: T101\n    role: tenant\n    account: A101\n    meter_changes:\n      - { at: "${zone.format(REPLACED)}", final_kwh: ${kwhText(final101)}, initial_kwh: 5.000, serial: "NEW-101" }`,
    )
    .replace('  - { id: T102, role: tenant, account: A102 }', '  - { id: T102, role: tenant, accounts: [A102, A2N] }')
    .replace(
      '  - { id: T103, role: tenant, account: A103 }',
      `  - id: T103\n    role: tenant\n    account: A103\n    multiplier: 40\n    meter_changes:\n      - { at: "${zone.format(CT_SWAP)}", final_kwh: ${kwhText(swapRaw)}, initial_kwh: ${kwhText(swapRaw)}, multiplier: 60 }`,
    )
    .replace(
      '  - { id: A102, name: Cafe 102, area_m2: 80, tariff: commercial, opening_balance: "0.00", low_balance: "50.00" }',
      `  - { id: A102, name: Cafe 102, area_m2: 80, tariff: commercial, opening_balance: "0.00", low_balance: "50.00", move_out: "${zone.format(MOVE_OUT)}" }\n  - { id: A2N, name: Tea 102, area_m2: 90, tariff: commercial, move_in: "${zone.format(MOVE_IN)}" }\n  - { id: L, name: Landlord, area_m2: 10, tariff: commercial }`,
    )
    .replace('  - { id: elevators, method: area }', '  - { id: elevators, method: area }\n  - { id: lobby, method: equal }')
    .replace('  - { id: C-ELEV, role: common, pool: elevators }', '  - { id: C-ELEV, role: common, pool: elevators }\n  - { id: C-LOBBY, role: common, pool: lobby }');
  // C-LOBBY: a second common meter (equal shares, prorated by occupancy), 1 kW.
  const lobby = base.filter((r) => r.meter === 'M0').map((r, i): ReadingRow => ({ time: r.time, meter: 'C-LOBBY', wh: 2_000_000 + i * 250 }));
  const master = rows.map((r) => (r.meter === 'M0' ? { ...r, wh: r.wh + (lobby.find((x) => x.time === r.time)!.wh - 2_000_000) } : r));
  return { rows: [...master, ...lobby], yaml };
}

const { rows, yaml } = scenario();
const site = testSite(yaml);
const payments: PaymentRow[] = [
  { time: at(FROM, 9), account: 'A102', fen: 300_00, reference: 'P-1' },
  { time: at(DAY, 19), account: 'A2N', fen: 200_00, reference: 'P-2' },
];
const key = (l: Pick<ChargeLine, 'account' | 'kind' | 'pool' | 'period' | 'wh' | 'fen'>) => `${l.account}|${l.kind}|${l.pool ?? ''}|${l.period}|${l.wh}|${l.fen}`;

describe('a day with a move-out, a vacancy, a move-in, a replacement and a CT swap: live = settled (real Redis and InfluxDB)', () => {
  let env: TestEnv;
  let ctx: WorkerContext;
  const clock = { now: 0 };
  let delivered = -Infinity;

  /** Readings up to t arrive (in 97-minute pieces), each piece rolled up. */
  async function deliver(t: number): Promise<void> {
    for (let to = Math.min(delivered + 97 * 60_000, t); ; to = Math.min(to + 97 * 60_000, t)) {
      const part = rows.filter((r) => r.time > delivered && r.time <= to);
      if (part.length) await env.influx.write(readingLines(site.id, part));
      delivered = to;
      clock.now = to;
      await rollupAll(ctx, site.id);
      if (to >= t) break;
    }
  }

  beforeAll(async () => {
    env = await testEnv('tenlive');
    ctx = testContext(env, [site], clock, { rollupMaxReadings: 5, lateCheckEveryMs: 1e12 });
    for (const p of payments) await recordPayment({ site, influx: env.influx, redis: env.redis, keyPrefix: env.prefix }, p);
    delivered = at(FROM, 0) - 1;
    await deliver(at(DAY, 0, 20));
    expect((await processSettlement(ctx, { site: site.id })).map((d) => d.day)).toEqual([FROM]);
  }, 300_000);
  afterAll(async () => {
    await closeQueues(ctx.queues);
    await env.cleanup();
  });

  const settledLines = (known: readonly ReadingRow[], day: LocalDate) => {
    const r = settleRange(site, storeReadings(site, known), day, addDays(day, 1));
    return r.days[r.fromDay].lines.map(key).sort();
  };

  it('at 20:00, after all four events: provisional lines = the settlement of the same readings; buckets = settled cells per meter', async () => {
    await deliver(at(DAY, 20));
    const known = rows.filter((r) => r.time <= clock.now);
    const live = await loadLiveFigures({ influx: env.influx, site, now: clock.now });
    expect(live.problems).toEqual([]);
    // The unsettled day lies inside the trailing 24 h: one statement serves both, with the
    // same inputs and figures as a statement each (moves inside the window included).
    const separate = await loadLiveFigures({ influx: env.influx, site, now: clock.now, shareWindow: false });
    expect(live.inputs.unsettled.map((d) => d.date)).toEqual([DAY]);
    expect(live.inputs.unsettled[0]).toBe(live.inputs.trailing.find((d) => d.date === DAY));
    expect(separate.inputs.unsettled[0]).not.toBe(separate.inputs.trailing.find((d) => d.date === DAY));
    expect(live.inputs).toEqual(separate.inputs);
    expect({ ...live, inputs: undefined }).toEqual({ ...separate, inputs: undefined });
    expect(live.accounts.some((a) => a.spent24Fen > 0 && a.spent24Fen !== a.todayFen)).toBe(true);
    const day = provisionalSettlements(site, live.inputs).find((d) => d.date === DAY)!;
    expect(day.lines.map(key).sort()).toEqual(settledLines(known, DAY));
    // Every account that was there has lines; the vacancy's energy is the landlord's own.
    const owners = new Set(day.lines.filter((l) => l.kind === 'own').map((l) => l.account));
    for (const a of ['A101', 'A102', 'A2N', 'A103', 'L']) expect(owners.has(a), a).toBe(true);
    expect(day.cells.reduce((s, c) => s + (c.vacantWh ?? 0), 0)).toBeGreaterThan(0);

    // Buckets (primary Wh, cut at the moves and changes) sum to each meter's settled cells.
    const cells = new Map<string, number>();
    settleRange(site, storeReadings(site, known), DAY, addDays(DAY, 1), {
      onSegments: (mi, cal, wh) => {
        const d = cal.days.indexOf(DAY);
        for (let k = 0; k < cal.segments; k++) if (cal.day[k] === d && wh[k] !== 0) cells.set(`${site.meters[mi].id}|${PERIODS[cal.period[k]]}`, (cells.get(`${site.meters[mi].id}|${PERIODS[cal.period[k]]}`) ?? 0) + wh[k]);
      },
    });
    const buckets = await env.influx.query(`SELECT sum(wh) FROM tou_bucket WHERE site = ${quoteString(site.id)} AND time >= ${zone.midnight(DAY)}ms AND time < ${zone.midnight(addDays(DAY, 1))}ms GROUP BY meter, period`);
    expect(new Map(buckets.filter((b) => b.sum !== 0).map((b) => [`${b.meter}|${b.period}`, b.sum as number]))).toEqual(cells);
    // The bucket holding the move-out starts at it, and carries its occupant.
    const cut = await env.influx.query(`SELECT wh FROM tou_bucket WHERE site = ${quoteString(site.id)} AND meter = 'T102' AND time >= ${MOVE_OUT - 15 * 60_000}ms AND time <= ${MOVE_OUT}ms GROUP BY account`);
    expect(cut.map((b) => [b.account, zone.format(b.time as number)]).sort()).toEqual([
      ['A102', zone.format(at(DAY, 14, 30))],
      ['L', zone.format(MOVE_OUT)],
    ]);
  });

  it("once the day's readings are in: live balance = offline closing for every account, and settling the day moves no balance", async () => {
    await deliver(at(addDays(DAY, 1), 0, 10));
    const known = rows.filter((r) => r.time <= clock.now);
    const offline = computeBillRun(site, known, payments, FROM, addDays(DAY, 1));
    const closing = Object.fromEntries(offline.accounts.map((a) => [a.account, a.closing_balance]));
    const before = await processBalance(ctx, { site: site.id });
    expect(Object.fromEntries(before.map((b) => [b.account, moneyText(b.balanceFen)]))).toEqual(closing);
    // The day's provisional lines are its settled lines, so settling it changes nothing.
    const live = await loadLiveFigures({ influx: env.influx, site, now: clock.now });
    expect(provisionalSettlements(site, live.inputs).find((d) => d.date === DAY)!.lines.map(key).sort()).toEqual(settledLines(known, DAY));
    clock.now = at(addDays(DAY, 1), 0, 20);
    expect((await processSettlement(ctx, { site: site.id })).map((d) => [d.day, d.outcome])).toEqual([[DAY, 'settled']]);
    const after = await processBalance(ctx, { site: site.id });
    for (const b of after) {
      const was = before.find((x) => x.account === b.account)!;
      expect([b.account, b.balanceFen]).toEqual([b.account, was.balanceFen]);
    }
    // A102 is charged nothing after 14:37, A2N nothing before 18:00 (billing.md section 11 rule 4).
    const charges = await env.influx.query(`SELECT sum(wh) FROM charge WHERE site = ${quoteString(site.id)} AND time = ${zone.midnight(DAY)}ms GROUP BY account`);
    expect(charges.map((c) => c.account).sort()).toEqual(['A101', 'A102', 'A103', 'A2N', 'L']);
  });

  it('the statements show raw readings x the multiplier, the replacement and the CT swap, the occupancy, and prorated weights that reproduce each share', async () => {
    const app = buildApp({ site: new SiteRef(site), influx: env.influx, redis: env.redis, keyPrefix: `${env.prefix}:api:`, workersKeyPrefix: env.prefix, now: () => clock.now, cacheMs: 0 });
    const server = await new Promise<Server>((resolve) => {
      const x = app.listen(0, '127.0.0.1', () => resolve(x));
    });
    const tokens = new RedisTokenStore(env.redis, `${env.prefix}:api:`);
    const get = async (account: string, path = `bills/2026-10`) => {
      const token = (await tokens.create({ site: site.id, role: 'tenant', account })).token;
      const r = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/accounts/${account}/${path}`, { headers: { authorization: `Bearer ${token}` } });
      expect(r.status).toBe(200);
      return (await r.json()) as Record<string, any>;
    };
    const wh = (kwh: string | null) => parseFixed(kwh!, 3)!;
    try {
      const known = rows.filter((r) => r.time <= clock.now);
      const offline = computeBillRun(site, known, payments, FROM, addDays(DAY, 1));
      // T101 replaced at 10:23: energy = (old final - start) + (end - new initial), the change listed.
      const a101 = await get('A101');
      const [m101] = a101.meters;
      const final101 = site.meters.find((m) => m.id === 'T101')!.changes![0].finalWh;
      expect(m101.changes).toEqual([{ time: zone.format(REPLACED), final_reading: kwhText(final101), final_estimated: false, initial_reading: '5.000', multiplier_before: '1', multiplier_after: '1', serial: 'NEW-101' }]);
      expect(wh(m101.kwh)).toBe(wh(m101.changes[0].final_reading) - wh(m101.start_reading) + wh(m101.end_reading) - 5_000);
      expect(m101.kwh).toBe(offline.accounts.find((a) => a.account === 'A101')!.kwh.own);
      // T103 behind CTs: raw registers, x40 at the start and x60 at the end; energy = the two pieces.
      const [m103] = (await get('A103')).meters;
      expect([m103.multiplier, m103.end_multiplier]).toEqual(['40', '60']);
      expect(wh(m103.start_primary)).toBe(wh(m103.start_reading) * 40);
      expect(wh(m103.end_primary)).toBe(wh(m103.end_reading) * 60);
      const swap = m103.changes[0];
      expect(swap).toMatchObject({ time: zone.format(CT_SWAP), multiplier_before: '40', multiplier_after: '60' });
      expect(wh(m103.kwh)).toBe((wh(swap.final_reading) - wh(m103.start_reading)) * 40 + (wh(m103.end_reading) - wh(swap.initial_reading)) * 60);
      // A102 occupied T102 until 14:37: its meter row ends there, its register then stored by the settlement.
      const a102 = await get('A102');
      expect(a102.move_out).toBe(zone.format(MOVE_OUT));
      expect(a102.meters).toMatchObject([{ meter: 'T102', to: zone.format(MOVE_OUT), end_time: zone.format(MOVE_OUT) }]);
      expect(a102.meters[0].kwh).toBe(offline.accounts.find((a) => a.account === 'A102')!.kwh.own);
      // The landlord's rows are the vacancy: T102 from 14:37 to 18:00.
      expect((await get('L')).meters).toMatchObject([{ meter: 'T102', from: zone.format(MOVE_OUT), to: zone.format(MOVE_IN) }]);
      // Prorated pool cells (equal: seconds there): each share = floor(E x w / W) plus at most 1 Wh.
      const a2n = await get('A2N');
      expect(a2n.move_in).toBe(zone.format(MOVE_IN));
      const lobby = a2n.pools.find((p: any) => p.pool === 'lobby');
      const cell = lobby.cells.find((c: any) => c.date === DAY && c.period === 'peak');
      expect(cell.your_seconds).toBe(5 * 3600); // 18:00-23:00 of the peak cell's 8 h
      expect(cell.cell_seconds).toBe(8 * 3600);
      for (const st of [a2n, a101, a102]) {
        for (const p of st.pools) {
          for (const c of p.cells) {
            const w = BigInt(c.basis === 'area' ? Math.round(Number(c.your_weight) * 10_000) : Number(c.your_weight));
            const W = BigInt(c.basis === 'area' ? Math.round(Number(c.total_weight) * 10_000) : Number(c.total_weight));
            const floor = Number((BigInt(wh(c.kwh)) * w) / W);
            expect(wh(c.your_kwh) - floor, `${st.account} ${p.pool} ${c.date} ${c.period}`).toBeGreaterThanOrEqual(0);
            expect(wh(c.your_kwh) - floor, `${st.account} ${p.pool} ${c.date} ${c.period}`).toBeLessThanOrEqual(1);
          }
        }
      }
      // The final statement of A102 is the same statement to the move-out with the final block.
      const fin = await get('A102', 'final-statement');
      expect(fin).toMatchObject({ status: 'final', move_out: zone.format(MOVE_OUT), meters: a102.meters, pools: a102.pools, final: { move_out: zone.format(MOVE_OUT) } });
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
