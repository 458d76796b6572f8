import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { acceptMeterSeries, billRunJson, chargesByAccount, computeBillRun, counterState, liveFigures, liveInputsFromReadings, moneyFen, parseFixed, parseSiteYaml, PERIODS, provisionalSettlements, resumeSeries, settleRange, sortSeries, zoneOf } from '../index.ts';
import type { PaymentRow, ReadingRow } from '../index.ts';

/**
 * billing.md section 7's invariants with section 11 in play (fast-check): random move-ins
 * and move-outs (with vacancies the landlord bears), meter replacements and CT swaps.
 * Plus section 11's own: energy is conserved across moves and replacements (every meter's
 * energy reaches exactly one account, master = tenants + common + vacant + loss in every
 * cell), and an account has no line on a day it did not occupy. Fixed seeds.
 */

const ZONE = 'Europe/Berlin'; // the range crosses the 2026-03-29 spring-forward
const START = Date.parse('2026-03-27T00:00:00+01:00');
const DAYS = 4;
const MIN = 60_000;
const SPAN = DAYS * 1440; // minutes

interface Unit {
  /** Minutes after START: first occupant's move-out, then the next one's move-in (>=). */
  moveOut: number | null;
  moveIn: number | null;
  area: [number, number];
  /** A replacement (or CT swap) at this minute: new register start, multiplier after. */
  change: { minute: number; initial: number; multiplier: number; estimated: boolean } | null;
  multiplier: number;
  /** Consumption steps: minutes between readings and Wh consumed (primary). */
  steps: { dt: number; wh: number }[];
}

const unit: fc.Arbitrary<Unit> = fc
  .record({
    out: fc.option(fc.integer({ min: 1, max: SPAN - 1 }), { nil: null }),
    gap: fc.option(fc.integer({ min: 0, max: 1500 }), { nil: null }),
    area: fc.tuple(fc.integer({ min: 0, max: 400 }), fc.integer({ min: 0, max: 400 })),
    change: fc.option(fc.record({ minute: fc.integer({ min: 1, max: SPAN - 1 }), initial: fc.integer({ min: 0, max: 5_000 }), multiplier: fc.constantFrom(1, 2, 40), estimated: fc.boolean() }), { nil: null }),
    multiplier: fc.constantFrom(1, 1, 5, 40),
    steps: fc.array(fc.record({ dt: fc.integer({ min: 5, max: 300 }), wh: fc.integer({ min: 0, max: 4_000 }) }), { minLength: 1, maxLength: 40 }),
  })
  .map(({ out, gap, area, change, multiplier, steps }) => ({
    moveOut: out,
    moveIn: out !== null && gap !== null ? Math.min(out + gap, SPAN + 60) : null,
    area,
    change,
    multiplier,
    steps,
  }));

interface Scenario {
  units: Unit[];
  pools: ('area' | 'consumption' | 'equal')[];
  lossMethod: 'area' | 'consumption' | 'equal';
  normalRate: number;
  payments: { unit: number; second: boolean; minute: number; fen: number; kind: 'payment' | 'refund' | 'deposit' }[];
}

const scenario: fc.Arbitrary<Scenario> = fc.record({
  units: fc.array(unit, { minLength: 1, maxLength: 3 }),
  pools: fc.array(fc.constantFrom('area', 'consumption', 'equal'), { maxLength: 2 }),
  lossMethod: fc.constantFrom('area', 'consumption', 'equal'),
  normalRate: fc.integer({ min: 0, max: 80_000 }),
  payments: fc.array(fc.record({ unit: fc.integer({ min: 0, max: 2 }), second: fc.boolean(), minute: fc.integer({ min: -600, max: SPAN }), fen: fc.integer({ min: 1, max: 90_000 }), kind: fc.constantFrom('payment', 'refund', 'deposit') }), { maxLength: 6 }),
});

const at = (minute: number) => zoneOf(ZONE).format(START + minute * MIN);

function build(sc: Scenario) {
  const lines = [`site: { id: prop10, timezone: ${ZONE}, landlord_account: L }`, 'meters:', '  - { id: M, role: master, max_kw: 100000, max_gap: 30h }'];
  const accounts = ['  - { id: L, tariff: t, area_m2: 10 }'];
  sc.units.forEach((u, i) => {
    const occupants = [`U${i}a`, ...(u.moveIn !== null ? [`U${i}b`] : [])];
    lines.push(`  - id: T${i}`, '    role: tenant', `    accounts: [${occupants.join(', ')}]`, `    multiplier: ${u.multiplier}`, '    max_kw: 100000', '    max_gap: 30h', '    register_modulus_kwh: 100000000');
    if (u.change) {
      // final_kwh must be what the old register showed then: filled in below from the readings.
      lines.push('    meter_changes:', `      - { at: "${at(u.change.minute)}", final_kwh: FINAL${i}, initial_kwh: ${(u.change.initial / 1000).toFixed(3)}, multiplier: ${u.change.multiplier}, estimated: ${u.change.estimated} }`);
    }
    accounts.push(`  - { id: U${i}a, tariff: t, area_m2: ${u.area[0]}${u.moveOut !== null ? `, move_out: "${at(u.moveOut)}"` : ''} }`);
    if (u.moveIn !== null) accounts.push(`  - { id: U${i}b, tariff: t, area_m2: ${u.area[1]}, move_in: "${at(u.moveIn)}" }`);
  });
  sc.pools.forEach((_, k) => lines.push(`  - { id: C${k}, role: common, pool: P${k}, max_kw: 100000, max_gap: 30h }`));
  lines.push('accounts:', ...accounts);
  if (sc.pools.length) lines.push('pools:', ...sc.pools.map((m, k) => `  - { id: P${k}, method: ${m} }`));
  lines.push(
    `loss: { normal_rate: ${(sc.normalRate / 1_000_000).toFixed(6)}, method: ${sc.lossMethod} }`,
    'tariffs:',
    '  - id: t',
    '    versions:',
    '      - effective_from: 2026-01-01',
    '        prices: { peak: "1.053200", flat: "0.702100", valley: "0.351100" }',
    '        schedule:',
    '          - periods:',
    '              - { from: "00:00", to: "07:30", period: valley }',
    '              - { from: "07:30", to: "11:15", period: peak }',
    '              - { from: "11:15", to: "24:00", period: flat }',
  );
  // Readings: each unit's consumption on its register(s); the old register's final at the
  // change is its value at the last reading before plus the primary energy consumed since,
  // in raw units (floored): what a technician would read.
  const rows: ReadingRow[] = [];
  let yaml = `${lines.join('\n')}\n`;
  let masterWh = 0;
  // What the tenant meters measured (primary Wh): each raw step x the multiplier then.
  let expectedTenantWh = 0;
  sc.units.forEach((u, i) => {
    let t = START;
    let primary = 0;
    let reg = 1_000_000;
    let mult = u.multiplier;
    let changed = false;
    rows.push({ time: t, meter: `T${i}`, wh: reg });
    for (const s of u.steps) {
      const next = t + s.dt * MIN;
      const changeAt = u.change ? START + u.change.minute * MIN : Infinity;
      if (!changed && u.change && changeAt > t && changeAt <= next) {
        const before = Math.floor((s.wh * (changeAt - t)) / (next - t) / mult);
        yaml = yaml.replace(`FINAL${i}`, ((reg + before) / 1000).toFixed(3));
        reg = u.change.initial;
        mult = u.change.multiplier;
        changed = true;
        const after = Math.floor((s.wh * (next - changeAt)) / (next - t) / mult);
        reg += after;
        expectedTenantWh += before * u.multiplier + after * mult;
      } else {
        reg += Math.floor(s.wh / mult);
        expectedTenantWh += Math.floor(s.wh / mult) * mult;
      }
      primary += s.wh;
      t = next;
      rows.push({ time: t, meter: `T${i}`, wh: reg });
    }
    if (!changed && u.change) yaml = yaml.replace(`FINAL${i}`, (reg / 1000).toFixed(3));
    masterWh += primary;
  });
  sc.pools.forEach((_, k) => {
    for (let m = 0; m <= SPAN; m += 180) rows.push({ time: START + m * MIN, meter: `C${k}`, wh: m * 7 });
    masterWh += SPAN * 7;
  });
  for (let m = 0; m <= SPAN; m += 60) rows.push({ time: START + m * MIN, meter: 'M', wh: Math.floor((masterWh * 1.1 * m) / SPAN) });
  const site = parseSiteYaml(yaml);
  const payments: PaymentRow[] = sc.payments
    .filter((p) => p.unit < sc.units.length)
    .map((p, n) => ({ time: START + p.minute * MIN, account: `U${p.unit}${p.second && sc.units[p.unit].moveIn !== null ? 'b' : 'a'}`, fen: p.kind === 'refund' ? -p.fen : p.fen, reference: `R${n}`, ...(p.kind !== 'payment' ? { kind: p.kind as 'refund' | 'deposit' } : {}) }));
  return { site, rows, payments, expectedTenantWh };
}

const from = '2026-03-27';
const to = '2026-03-31';

function shuffle<T>(xs: readonly T[], seed: number): T[] {
  const out = [...xs];
  let s = seed >>> 0 || 1;
  for (let i = out.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

describe('section 7 and 11 invariants with moves, vacancies and meter changes', () => {
  it('conservation: each tenant meter energy reaches exactly one account; per cell M = T + C + L; vacant is the landlord part', () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        const { site, rows, expectedTenantWh } = build(sc);
        const range = settleRange(site, rows, from, to);
        let tenant = 0;
        let vacant = 0;
        for (const day of range.days) {
          for (const c of day.cells) {
            expect(c.masterWh).toBe(c.tenantWh + c.commonWh + c.lossWh);
            expect(c.lossAllocatedWh + c.lossAbnormalWh).toBe(Math.max(c.lossWh, 0));
            tenant += c.tenantWh;
            vacant += c.vacantWh!;
          }
          const landlordOwn = day.lines.filter((l) => l.account === 'L' && l.kind === 'own').reduce((s, l) => s + l.wh, 0);
          expect(day.cells.reduce((s, c) => s + c.vacantWh!, 0)).toBeLessThanOrEqual(landlordOwn);
          for (const c of day.cells) {
            const common = day.lines.filter((l) => l.kind === 'common' && l.period === c.period).reduce((s, l) => s + l.wh, 0);
            expect(common).toBe(c.commonWh);
            const loss = day.lines.filter((l) => l.kind === 'loss' && l.period === c.period).reduce((s, l) => s + l.wh, 0);
            expect(loss).toBe(c.lossAllocatedWh);
          }
        }
        // No energy lost at a move or a replacement: what the meters measured (all of it
        // inside the range here) is the tenants' own energy, vacant parts included.
        expect(tenant).toBe(expectedTenantWh);
        expect(vacant).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: 60, seed: 10 },
    );
  });

  it('no line for an account on a day it did not occupy at all', () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        const { site, rows } = build(sc);
        const zone = zoneOf(site.timezone);
        const range = settleRange(site, rows, from, to);
        for (const day of range.days) {
          const a = zone.midnight(day.date);
          const b = zone.midnight(day.date === '2026-03-30' ? '2026-03-31' : new Date(Date.parse(`${day.date}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10));
          for (const l of day.lines) {
            const acc = site.accounts.find((x) => x.id === l.account)!;
            const inAt = acc.moveIn ?? -Infinity;
            const outAt = acc.moveOut ?? Infinity;
            expect(inAt < b && outAt > a).toBe(true);
          }
        }
      }),
      { numRuns: 60, seed: 11 },
    );
  });

  it('3 and 4: totals and balances add up; shuffled and doubled input gives byte-identical output', () => {
    fc.assert(
      fc.property(scenario, fc.integer(), (sc, seed) => {
        const { site, rows, payments } = build(sc);
        const once = billRunJson(computeBillRun(site, rows, payments, from, to));
        const run = JSON.parse(once) as ReturnType<typeof computeBillRun>;
        for (const a of run.accounts) {
          expect(moneyFen(a.total_amount)).toBe(a.lines.reduce((s, l) => s + moneyFen(l.amount), 0));
          expect(moneyFen(a.closing_balance)).toBe(moneyFen(a.opening_balance) + moneyFen(a.payments) - moneyFen(a.total_amount));
        }
        const m = run.master;
        const wh = (s: string) => parseFixed(s, 3)!;
        expect(wh(m.loss_kwh)).toBe(wh(m.kwh) - wh(m.tenant_kwh) - wh(m.common_kwh));
        expect(wh(m.vacant_kwh!)).toBeLessThanOrEqual(wh(m.tenant_kwh));
        expect(billRunJson(computeBillRun(site, shuffle([...rows, ...rows], seed), shuffle([...payments, ...payments], seed ^ 7), from, to))).toBe(once);
      }),
      { numRuns: 40, seed: 12 },
    );
  });

  it('live (issue 10) with section 11: provisional lines from the 15-minute pieces = the settled lines, every day', () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        const { site, rows, payments } = build(sc);
        // All days unsettled, every reading in: the live figures settle each day provisionally.
        const now = START + (SPAN + 120) * MIN;
        const inputs = liveInputsFromReadings(site, rows, payments, now);
        const live = liveFigures(site, inputs);
        expect(live.problems).toEqual([]);
        const provisional = provisionalSettlements(site, inputs);
        const settled = settleRange(site, rows, from, to);
        for (const day of settled.days) {
          const prov = provisional.find((d) => d.date === day.date);
          expect(prov?.lines ?? [], day.date).toEqual(day.lines);
          expect(prov?.shares ?? [], day.date).toEqual(day.shares);
        }
        // The figures are the settlements' lines summed (liveFigures sums the charges without
        // writing the lines out: core/live/provisional.ts dayChargesOf).
        const today = zoneOf(site.timezone).dateOf(now);
        const own = (lines: readonly { account: string; kind: string; period: string; wh: number }[], a: string) =>
          PERIODS.map((p) => [p, lines.filter((l) => l.account === a && l.kind === 'own' && l.period === p).reduce((x, l) => x + l.wh, 0)] as const).filter(([, wh]) => wh !== 0);
        const provisionalFen = chargesByAccount(site, provisional);
        const todayDay = provisional.find((d) => d.date === today);
        const todayFen = chargesByAccount(site, todayDay ? [todayDay] : []);
        const spent = chargesByAccount(site, provisionalSettlements(site, { ...inputs, unsettled: inputs.trailing }));
        expect(live.todayOwn !== undefined).toBe(todayDay !== undefined);
        for (const a of live.accounts) {
          expect([a.provisionalFen, a.todayFen, a.spent24Fen], a.account).toEqual([provisionalFen.get(a.account), todayFen.get(a.account), spent.get(a.account)]);
          if (todayDay) expect(live.todayOwn!.get(a.account) ?? [], a.account).toEqual(own(todayDay.lines, a.account));
        }
      }),
      { numRuns: 40, seed: 13 },
    );
  });

  it("the workers' counter state resumes across replacements and CT swaps: chunked = whole history", () => {
    fc.assert(
      fc.property(scenario, fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 12 }), (sc, chunks) => {
        const { site, rows } = build(sc);
        for (const meter of site.meters.filter((m) => m.role === 'tenant')) {
          const mine = rows.filter((r) => r.meter === meter.id).sort((a, b) => a.time - b.time);
          const raw = sortSeries(Float64Array.from(mine.map((r) => r.time)), Float64Array.from(mine.map((r) => r.wh)));
          const whole = acceptMeterSeries(meter, raw);
          const total = (acc: { time: ArrayLike<number>; delta: ArrayLike<number> }, after: number) => {
            let s = 0;
            for (let i = 0; i < acc.time.length; i++) if (acc.time[i] > after) s += acc.delta[i];
            return s;
          };
          // Like workers/rollup.ts: each run takes a few readings, resumes from the carried
          // state (framing only changes its readings have reached) and adds its new energy.
          let state = { accepted: [] as (readonly [number, number])[], pending: [] as (readonly [number, number])[] };
          let k = 0;
          let sum = 0;
          let upTo = -Infinity;
          for (let c = 0; k < raw.time.length; c++) {
            const n = chunks[c % chunks.length];
            const next = { time: raw.time.subarray(k, k + n), wh: raw.wh.subarray(k, k + n) };
            k += n;
            const window = resumeSeries(state, next);
            const acc = acceptMeterSeries(meter, window, state.accepted.length ? state.accepted[0][0] : -Infinity, window.time[window.time.length - 1]);
            sum += total(acc, upTo);
            const last = acc.time.length ? acc.time[acc.time.length - 1] : undefined;
            if (last !== undefined) upTo = last;
            // Keep from the last change at or before the last accepted reading (a bucket starts there).
            const cut = Math.max(...(meter.changes ?? []).filter((ch) => last !== undefined && ch.at <= last).map((ch) => ch.at), last ?? -Infinity);
            state = last === undefined ? { accepted: [], pending: counterState(acc, window, Infinity).pending as (readonly [number, number])[] } : (counterState(acc, window, cut) as typeof state);
          }
          // Whole history up to the last reading: a change after it waits for a reading after it.
          const lastRaw = raw.time[raw.time.length - 1];
          const wholeUpTo = acceptMeterSeries(meter, raw, -Infinity, lastRaw);
          expect(sum, meter.id).toBe(total(wholeUpTo, -Infinity));
          expect(total(whole, -Infinity) - total(wholeUpTo, -Infinity)).toBeGreaterThanOrEqual(0);
        }
      }),
      { numRuns: 60, seed: 14 },
    );
  });
});
