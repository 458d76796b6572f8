import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  acceptReadings,
  billRunJson,
  buildCalendar,
  computeBillRun,
  largestRemainder,
  moneyFen,
  parseFixed,
  parseSiteYaml,
  PERIODS,
  settleDay,
  sortSeries,
  splitSeries,
  zoneOf,
} from './index.ts';
import type { CellEnergy, PaymentRow, ReadingRow, Site } from './index.ts';

/**
 * billing.md section 7 invariants on random sites, readings and payments (fast-check).
 * Run counts are moderate to keep the suite fast; seeds are fixed so that failures
 * reproduce (fast-check prints the counterexample and its path).
 */

const ZONES = ['Asia/Shanghai', 'Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kolkata'];
const START = Date.UTC(2026, 2, 27); // around the European spring-forward
const HOUR = 3_600_000;

interface SiteSpec {
  zone: string;
  accounts: { area: number }[];
  pools: { method: 'area' | 'consumption' | 'equal'; members: number[] | null }[];
  normalRate: number;
  lossMethod: 'area' | 'consumption' | 'equal';
}

const siteSpec = fc.record({
  zone: fc.constantFrom(...ZONES),
  accounts: fc.array(fc.record({ area: fc.integer({ min: 0, max: 500 }) }), { minLength: 1, maxLength: 4 }),
  pools: fc.array(fc.record({ method: fc.constantFrom('area', 'consumption', 'equal'), members: fc.option(fc.uniqueArray(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 3 }), { nil: null }) }), { maxLength: 2 }),
  normalRate: fc.integer({ min: 0, max: 100_000 }),
  lossMethod: fc.constantFrom('area', 'consumption', 'equal'),
}) as fc.Arbitrary<SiteSpec>;

/** One layout for both tariff versions (periods are site-wide); cuts at :30 and :15 on purpose. */
const SCHEDULE = [
  '          - periods:',
  '              - { from: "00:00", to: "02:30", period: valley }',
  '              - { from: "02:30", to: "08:00", period: flat }',
  '              - { from: "08:00", to: "11:15", period: peak }',
  '              - { from: "11:15", to: "19:00", period: flat }',
  '              - { from: "19:00", to: "21:00", period: sharp }',
  '              - { from: "21:00", to: "24:00", period: valley }',
];

function siteYaml(s: SiteSpec): string {
  const n = s.accounts.length;
  const lines = [`site: { id: prop, timezone: ${s.zone} }`, 'meters:', '  - { id: M, role: master, max_kw: 500, max_gap: 2h }'];
  s.accounts.forEach((_, i) => lines.push(`  - { id: T${i}, role: tenant, account: A${i}, max_kw: 100, register_modulus_kwh: 1000 }`));
  s.pools.forEach((_, k) => lines.push(`  - { id: C${k}, role: common, pool: P${k}, max_kw: 100 }`));
  lines.push('accounts:');
  s.accounts.forEach((a, i) => lines.push(`  - { id: A${i}, area_m2: ${a.area}, tariff: t, opening_balance: "${i * 10}.50" }`));
  if (s.pools.length) {
    lines.push('pools:');
    s.pools.forEach((p, k) => {
      const members = p.members?.filter((m) => m < n).map((m) => `A${m}`);
      lines.push(`  - { id: P${k}, method: ${p.method}${members && members.length ? `, accounts: [${members.join(', ')}]` : ''} }`);
    });
  }
  lines.push(`loss: { normal_rate: ${(s.normalRate / 1_000_000).toFixed(6)}, method: ${s.lossMethod} }`);
  lines.push(
    'tariffs:',
    '  - id: t',
    '    versions:',
    '      - effective_from: 2026-01-01',
    '        prices: { sharp: "1.263840", peak: "1.053200", flat: "0.702100", valley: "0.351100" }',
    '        schedule:',
    ...SCHEDULE,
    '      - effective_from: 2026-03-29',
    '        prices: { sharp: 1.5, peak: 1.1, flat: 0.7, valley: 0.3 }',
    '        schedule:',
    ...SCHEDULE,
  );
  return `${lines.join('\n')}\n`;
}

/** Readings of one meter: mostly plausible steps, sometimes a spike, reset, rollover or repeat. */
const meterSteps = fc.array(
  fc.record({
    dtMin: fc.integer({ min: 1, max: 240 }),
    dWh: fc.integer({ min: 0, max: 50_000 }),
    event: fc.constantFrom('normal', 'normal', 'normal', 'normal', 'spike', 'reset', 'conflict', 'repeat'),
  }),
  { minLength: 0, maxLength: 40 },
);

function readingsOf(meter: string, startOffsetMin: number, steps: { dtMin: number; dWh: number; event: string }[], modulusWh: number): ReadingRow[] {
  const rows: ReadingRow[] = [];
  let t = START + startOffsetMin * 60_000;
  let wh = Math.floor(modulusWh * 0.95);
  rows.push({ time: t, meter, wh });
  for (const s of steps) {
    t += s.dtMin * 60_000;
    if (s.event === 'spike') rows.push({ time: t, meter, wh: (wh + 900_000_000) % modulusWh });
    else if (s.event === 'reset') {
      wh = s.dWh;
      rows.push({ time: t, meter, wh });
    } else {
      wh = (wh + s.dWh) % modulusWh;
      rows.push({ time: t, meter, wh });
      if (s.event === 'conflict') rows.push({ time: t, meter, wh: Math.max(0, wh - 1) });
      if (s.event === 'repeat') rows.push({ time: t, meter, wh });
    }
  }
  return rows;
}

const scenario = siteSpec.chain((spec) => {
  const meters = 1 + spec.accounts.length + spec.pools.length;
  return fc.record({
    spec: fc.constant(spec),
    meters: fc.array(fc.tuple(fc.integer({ min: 0, max: 600 }), meterSteps), { minLength: meters, maxLength: meters }),
    payments: fc.array(
      fc.record({ account: fc.integer({ min: 0, max: spec.accounts.length - 1 }), minute: fc.integer({ min: -1440, max: 6000 }), fen: fc.integer({ min: -5000, max: 500_000 }), ref: fc.integer({ min: 0, max: 6 }) }),
      { maxLength: 8 },
    ),
    fromDay: fc.integer({ min: 0, max: 2 }),
    days: fc.integer({ min: 1, max: 3 }),
  });
});

interface Scenario {
  spec: SiteSpec;
  meters: [number, { dtMin: number; dWh: number; event: string }[]][];
  payments: { account: number; minute: number; fen: number; ref: number }[];
  fromDay: number;
  days: number;
}

function build(sc: Scenario) {
  const site = parseSiteYaml(siteYaml(sc.spec));
  const rows = site.meters.flatMap((m, i) => readingsOf(m.id, sc.meters[i][0], sc.meters[i][1], m.registerModulusWh));
  const payments: PaymentRow[] = sc.payments.map((p) => ({ time: START + p.minute * 60_000, account: `A${p.account}`, fen: p.fen, reference: `R${p.ref}` }));
  const from = new Date(START + sc.fromDay * 86_400_000).toISOString().slice(0, 10);
  const to = new Date(START + (sc.fromDay + sc.days) * 86_400_000).toISOString().slice(0, 10);
  return { site, rows, payments, from, to };
}

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

describe('section 7 invariants', () => {
  it('4: re-running, shuffling and doubling readings and payments gives byte-identical output', () => {
    fc.assert(
      fc.property(scenario, fc.integer(), (sc, seed) => {
        const { site, rows, payments, from, to } = build(sc);
        const once = billRunJson(computeBillRun(site, rows, payments, from, to));
        expect(billRunJson(computeBillRun(site, rows, payments, from, to))).toBe(once);
        const replay = shuffle([...rows, ...rows], seed);
        const paid = shuffle([...payments, ...payments], seed ^ 0x5bd1e995);
        expect(billRunJson(computeBillRun(site, replay, paid, from, to))).toBe(once);
      }),
      { numRuns: 60, seed: 3 },
    );
  });

  it('3: per account, total = sum of line amounts and closing = opening + payments - total', () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        const { site, rows, payments, from, to } = build(sc);
        const run = computeBillRun(site, rows, payments, from, to);
        expect(run.accounts.map((a) => a.account)).toEqual([...site.accounts.map((a) => a.id)].sort());
        for (const a of run.accounts) {
          const sum = a.lines.reduce((s, l) => s + moneyFen(l.amount), 0);
          expect(moneyFen(a.total_amount)).toBe(sum);
          expect(moneyFen(a.closing_balance)).toBe(moneyFen(a.opening_balance) + moneyFen(a.payments) - moneyFen(a.total_amount));
        }
        const m = run.master;
        const wh = (s: string) => parseFixed(s, 3)!;
        expect(wh(m.loss_kwh)).toBe(wh(m.kwh) - wh(m.tenant_kwh) - wh(m.common_kwh));
      }),
      { numRuns: 60, seed: 4 },
    );
  });

  const calendars = new Map<string, ReturnType<typeof buildCalendar>>();
  it('1: per meter, the pieces over the calendar add up to the accepted deltas (conservation)', () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        const { site, rows } = build(sc);
        let cal = calendars.get(site.timezone);
        if (!cal) {
          cal = buildCalendar(site, '2026-03-26', '2026-04-20', 15);
          calendars.set(site.timezone, cal);
        }
        for (const meter of site.meters) {
          const mine = rows.filter((r) => r.meter === meter.id);
          const raw = sortSeries(Float64Array.from(mine, (r) => r.time), Float64Array.from(mine, (r) => r.wh));
          const acc = acceptReadings(meter, raw);
          const out = new Float64Array(cal.segments);
          splitSeries(acc, cal, out);
          let pieces = 0;
          let min = 0;
          for (const x of out) {
            if (x < min) min = x;
            pieces += x;
          }
          expect(min).toBe(0); // energy is never negative
          const deltas = acc.delta.reduce((s, d) => s + d, 0);
          expect(pieces).toBe(deltas);
        }
      }),
      { numRuns: 60, seed: 5 },
    );
  });

  it('2: per day and period, common shares sum to the pools and allocated + abnormal loss = max(L, 0)', () => {
    const wh = fc.integer({ min: 0, max: 2_000_000_000 });
    fc.assert(
      fc.property(siteSpec, fc.array(fc.tuple(wh, fc.array(wh, { minLength: 4, maxLength: 4 }), fc.array(wh, { minLength: 2, maxLength: 2 })), { minLength: 1, maxLength: 4 }), (spec, raw) => {
        const site: Site = parseSiteYaml(siteYaml(spec));
        const cells: CellEnergy[] = raw.map(([m, t, c], i) => ({
          date: '2026-10-01',
          period: PERIODS[i],
          firstInstant: 0,
          masterWh: m,
          tenantWh: new Map(site.accounts.map((a, j) => [a.id, t[j]])),
          poolWh: new Map(site.pools.map((p, k) => [p.id, c[k]])),
        }));
        const day = settleDay(site, '2026-10-01', cells);
        for (const cell of day.cells) {
          const src = cells.find((c) => c.period === cell.period)!;
          for (const pool of site.pools) {
            const shares = day.lines.filter((l) => l.kind === 'common' && l.pool === pool.id && l.period === cell.period).reduce((s, l) => s + l.wh, 0);
            expect(shares).toBe(src.poolWh.get(pool.id));
          }
          const loss = day.lines.filter((l) => l.kind === 'loss' && l.period === cell.period).reduce((s, l) => s + l.wh, 0);
          expect(loss).toBe(cell.lossAllocatedWh);
          expect(cell.lossAllocatedWh + cell.lossAbnormalWh).toBe(Math.max(cell.lossWh, 0));
          expect(day.lines.every((l) => l.wh > 0)).toBe(true);
        }
      }),
      { numRuns: 150, seed: 6 },
    );
  });

  it('largest remainder: shares sum to E, each within one Wh of its exact quota', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 ** 12 }), fc.array(fc.integer({ min: 0, max: 10 ** 9 }), { minLength: 1, maxLength: 12 }), (E, w) => {
        const ids = w.map((_, i) => `a${String(i).padStart(2, '0')}`);
        const s = largestRemainder(E, w, ids);
        expect(s.reduce((a, b) => a + b, 0)).toBe(E);
        const W = w.reduce((a, b) => a + b, 0);
        const ws = W === 0 ? w.map(() => 1) : w;
        const Ws = W === 0 ? w.length : W;
        s.forEach((x, i) => {
          const lo = (BigInt(E) * BigInt(ws[i])) / BigInt(Ws);
          expect(BigInt(x) === lo || BigInt(x) === lo + 1n).toBe(true);
        });
      }),
      { numRuns: 300, seed: 7 },
    );
  });
});

describe('zones', () => {
  it('calendar days are 23/24/25 h and segments tile [from midnight, to midnight)', () => {
    for (const tz of ZONES) {
      const site = parseSiteYaml(siteYaml({ zone: tz, accounts: [{ area: 1 }], pools: [], normalRate: 0, lossMethod: 'equal' }));
      for (const [from, to] of [['2026-03-20', '2026-04-10'], ['2026-10-20', '2026-11-10']]) {
      const cal = buildCalendar(site, from, to, 15);
      const z = zoneOf(tz);
      expect(cal.start[0]).toBe(z.midnight(from));
      expect(cal.start[cal.segments]).toBe(z.midnight(to));
      for (let k = 0; k < cal.segments; k++) expect(cal.start[k + 1]).toBeGreaterThan(cal.start[k]);
      for (const d of cal.days) {
        const next = new Date(Date.parse(`${d}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
        const len = (z.midnight(next) - z.midnight(d)) / HOUR;
        expect([23, 23.5, 24, 24.5, 25]).toContain(len);
      }
      }
    }
  });
});
