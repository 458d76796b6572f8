import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseSiteYaml } from '../site/index.ts';
import { sortSeries } from '../readings/store.ts';
import { acceptReadings } from './accept.ts';
import { spreadByRegisters } from './register-spread.ts';
import { counterState, resumeSeries } from './resume.ts';
import { ReadingStore } from '../readings/store.ts';
import type { CounterState } from './resume.ts';

/**
 * The workers' rollup runs the counter rules a few readings at a time, carrying only a
 * CounterState between runs. Whatever the cut points, the accepted readings and their
 * energy must be those of the rules run once over the whole history (billing.md section 2),
 * spikes, spike runs, resets, rollovers and repeated instants included.
 */
const site = parseSiteYaml(
  `
site: { id: resume, timezone: Asia/Shanghai }
meters:
  - { id: M, role: master, max_kw: 10, register_modulus_kwh: 100 }
accounts: []
tariffs: []
`,
  'resume.yaml',
);
const meter = site.meters[0];

/** A raw series with every kind of event: steady use, spikes, persistent jumps, resets, rollovers, repeated instants. */
const rawSeries = fc
  .array(
    fc.record({
      dt: fc.constantFrom(0, 60_000, 60_000, 60_000, 900_000, 7_200_000),
      kind: fc.constantFrom('use', 'use', 'use', 'use', 'spike', 'jump', 'reset', 'nearModulus'),
      wh: fc.integer({ min: 0, max: 200 }),
    }),
    { minLength: 1, maxLength: 80 },
  )
  .map((steps) => {
    let t = Date.UTC(2026, 4, 1);
    let reg = 50_000;
    const time: number[] = [];
    const wh: number[] = [];
    for (const s of steps) {
      t += s.dt;
      if (s.kind === 'use') reg = (reg + s.wh) % 100_000;
      else if (s.kind === 'spike') {
        time.push(t, t + 1); // a lone spike right before the next reading
        wh.push(reg + 50_000, reg + s.wh);
        t += 1;
        reg += s.wh;
        continue;
      } else if (s.kind === 'jump') reg += 40_000 + s.wh;
      else if (s.kind === 'reset') reg = s.wh;
      else reg = 95_000 + s.wh;
      time.push(t);
      wh.push(reg);
    }
    return sortSeries(Float64Array.from(time), Float64Array.from(wh));
  });

function slice(raw: { time: Float64Array; wh: Float64Array }, a: number, b: number) {
  return { time: raw.time.subarray(a, b), wh: raw.wh.subarray(a, b) };
}

describe('resuming the counter rules', () => {
  it('gives the whole-history accepted readings and deltas, whatever the cut points and kept history', () => {
    fc.assert(
      fc.property(rawSeries, fc.array(fc.nat(), { maxLength: 6 }), fc.array(fc.nat(), { maxLength: 6 }), (raw, cuts, keeps) => {
        const whole = acceptReadings(meter, raw);
        const want = [...whole.time].map((t, i) => `${t}:${whole.delta[i]}`);
        // Cut only between distinct instants (InfluxDB keeps one point per instant; new readings are later ones).
        const bounds = [...new Set(cuts.map((c) => c % (raw.time.length + 1)))].filter((c) => c === 0 || c === raw.time.length || raw.time[c] !== raw.time[c - 1]).sort((a, b) => a - b);
        const parts = [0, ...bounds, raw.time.length].filter((x, i, a) => i === 0 || x !== a[i - 1]);
        let state: CounterState = { accepted: [], pending: [] };
        const got: string[] = [];
        for (let i = 0; i + 1 < parts.length; i++) {
          const series = resumeSeries(state, slice(raw, parts[i], parts[i + 1]));
          const acc = acceptReadings(meter, series);
          const base = state.accepted.length ? state.accepted[state.accepted.length - 1][0] : -Infinity;
          for (let k = 0; k < acc.time.length; k++) if (acc.time[k] > base) got.push(`${acc.time[k]}:${acc.delta[k]}`);
          // Keep the accepted readings from some point back (the rollup keeps its bucket's start).
          const last = acc.time.length ? acc.time[acc.time.length - 1] : 0;
          state = counterState(acc, series, last - (keeps[i] ?? 0) * 60_000);
        }
        expect(got).toEqual(want);
      }),
      { numRuns: 3000, seed: 1010 },
    );
  });

  it('keeps at most two pending readings and the accepted readings from the last one at or before keepFrom', () => {
    const raw = sortSeries(Float64Array.from([0, 60_000, 120_000, 180_000, 240_000]), Float64Array.from([1000, 1100, 90_000, 91_000, 1200]));
    const acc = acceptReadings(meter, raw);
    // 90,000 and 91,000 are above max_kw from 1,100 (dropped); 1,200 is accepted again.
    expect([...acc.time]).toEqual([0, 60_000, 240_000]);
    expect(counterState(acc, raw, 100_000)).toEqual({ accepted: [[60_000, 1100], [240_000, 1200]], pending: [] });
    const early = slice(raw, 0, 4);
    expect(counterState(acceptReadings(meter, early), early, 60_000)).toEqual({ accepted: [[60_000, 1100]], pending: [[120_000, 90_000], [180_000, 91_000]] });
  });
});

/**
 * The rollup spreads gaps by tariff registers (billing.md section 2 rule 5) on its window of
 * carried and new readings; the carried readings keep the registers read with them, so the
 * resumed series it splits is the whole history's.
 */
const tou = parseSiteYaml(
  `
site: { id: resume-tou, timezone: Asia/Shanghai }
meters:
  - { id: T, role: master, max_kw: 100, max_gap: 1h }
tariffs:
  - id: t
    versions:
      - effective_from: 2026-01-01
        prices: { sharp: 1, peak: 1, flat: 1, valley: 1 }
        schedule:
          - periods:
              - { from: "00:00", to: "07:00", period: valley }
              - { from: "07:00", to: "10:30", period: peak }
              - { from: "10:30", to: "18:00", period: flat }
              - { from: "18:00", to: "19:15", period: sharp }
              - { from: "19:15", to: "24:00", period: valley }
`,
  'resume-tou.yaml',
);
const touMeter = tou.meters[0];

/** Readings every 15 min to 30 h apart, each with registers or not, registers that sometimes go down. */
const registerSeries = fc
  .array(fc.record({ dtMin: fc.constantFrom(15, 15, 60, 240, 600, 1800), use: fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 4, maxLength: 4 }), regs: fc.constantFrom('all', 'all', 'all', 'none', 'some', 'down') }), { minLength: 1, maxLength: 40 })
  .map((steps) => {
    const store = new ReadingStore(1);
    let t = Date.UTC(2026, 4, 1, 3);
    const r = [1000, 2000, 3000, 4000];
    for (const s of steps) {
      t += s.dtMin * 60_000;
      s.use.forEach((u, k) => (r[k] += u));
      const total = r.reduce((a, b) => a + b, 0);
      store.add(0, t, total);
      if (s.regs === 'all') store.addTariff(0, t, total, r[0], r[1], r[2], r[3]);
      else if (s.regs === 'some') store.addTariff(0, t, total, r[0], NaN, r[2], r[3]);
      else if (s.regs === 'down') store.addTariff(0, t, total, r[0], r[1], r[2], 0);
    }
    return store.series(0);
  });

describe('resuming with tariff registers', () => {
  it('the resumed series split by registers is the whole history\'s, whatever the cut points', () => {
    fc.assert(
      fc.property(registerSeries, fc.array(fc.nat(), { maxLength: 6 }), (raw, cuts) => {
        const whole = spreadByRegisters(tou, touMeter, acceptReadings(touMeter, raw), raw.tariff);
        const want = [...whole.time].map((t, i) => `${t}:${whole.wh[i]}:${whole.delta[i]}:${whole.estimated?.[i] ?? 0}`);
        const bounds = [...new Set(cuts.map((c) => c % (raw.time.length + 1)))].sort((a, b) => a - b);
        const parts = [0, ...bounds, raw.time.length].filter((x, i, a) => i === 0 || x !== a[i - 1]);
        let state: CounterState = { accepted: [], pending: [] };
        const got: string[] = [];
        const sliceT = (a: number, b: number) => {
          const time = raw.time.subarray(a, b);
          const inPart = (x: number) => x >= (time[0] ?? Infinity) && x <= (time[time.length - 1] ?? -Infinity);
          const keep = raw.tariff ? [...raw.tariff.time].map((x, i) => (inPart(x) ? i : -1)).filter((i) => i >= 0) : [];
          const tariff = raw.tariff && keep.length ? { time: Float64Array.from(keep, (i) => raw.tariff!.time[i]), wh: Float64Array.from(keep, (i) => raw.tariff!.wh[i]), reg: Float64Array.from(keep.flatMap((i) => [...raw.tariff!.reg.subarray(i * 4, i * 4 + 4)])) } : undefined;
          return { time, wh: raw.wh.subarray(a, b), ...(tariff ? { tariff } : {}) };
        };
        for (let i = 0; i + 1 < parts.length; i++) {
          const series = resumeSeries(state, sliceT(parts[i], parts[i + 1]));
          const acc = acceptReadings(touMeter, series);
          const spread = spreadByRegisters(tou, touMeter, acc, series.tariff);
          const base = state.accepted.length ? state.accepted[state.accepted.length - 1][0] : -Infinity;
          for (let k = 0; k < spread.time.length; k++) if (spread.time[k] > base) got.push(`${spread.time[k]}:${spread.wh[k]}:${spread.delta[k]}:${spread.estimated?.[k] ?? 0}`);
          state = counterState(acc, series, acc.time.length ? acc.time[acc.time.length - 1] : 0);
        }
        expect(got).toEqual(want);
      }),
      { numRuns: 1000, seed: 1616 },
    );
  });
});
