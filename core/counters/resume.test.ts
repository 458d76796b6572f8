import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseSiteYaml } from '../site/index.ts';
import { sortSeries } from '../readings/store.ts';
import { acceptReadings } from './accept.ts';
import { counterState, resumeSeries } from './resume.ts';
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
