import { describe, expect, it } from 'vitest';
import type { Meter } from '../site/model.ts';
import { acceptReadings } from './accept.ts';

/** billing.md section 2, rule by rule, with the edge values the contract names. */
const H = 3_600_000;
const meter: Meter = { id: 'T', name: 'T', role: 'tenant', account: 'A', maxKw: '10', maxW: 10_000, registerModulusWh: 1_000_000, maxGapMs: H, pollIntervalMs: 60_000 };

function run(rows: [number, number][], m: Meter = meter) {
  const acc = acceptReadings(m, { time: Float64Array.from(rows, (r) => r[0]), wh: Float64Array.from(rows, (r) => r[1]) });
  return { time: [...acc.time].map((t) => t / H), delta: [...acc.delta], flags: acc.flags.map((f) => `${f.kind}@${f.time / H}`).sort() };
}

describe('counter rules', () => {
  it('a run broken by a lower reading restarts; its third reading makes the first the baseline', () => {
    const r = run([[0, 0], [H, 1000], [2 * H, 100_000], [3 * H, 50_000], [4 * H, 51_000], [5 * H, 52_000]]);
    expect(r.time).toEqual([0, 1, 3, 4, 5]);
    expect(r.delta).toEqual([0, 1000, 0, 1000, 1000]);
    expect(r.flags).toEqual(['gap@1', 'reset@3', 'spike@2', 'spike@3', 'spike@4', 'spike@5']);
  });

  it('a run of two followed by an accepted reading stays dropped', () => {
    const r = run([[0, 0], [H, 1000], [2 * H, 90_000], [3 * H, 91_000], [4 * H, 3000]]);
    expect(r.time).toEqual([0, 1, 4]);
    expect(r.delta).toEqual([0, 1000, 2000]);
    expect(r.flags).toEqual(['gap@1', 'spike@2', 'spike@3']);
  });

  it('exactly max_kw is not a spike (strictly above is)', () => {
    expect(run([[0, 0], [H, 10_000]]).flags).toEqual([]);
    expect(run([[0, 0], [H, 10_001]]).flags).toEqual(['spike@1']);
  });

  it('a rollover is not checked against max_kw; the 90 % / 10 % bounds are inclusive / exclusive', () => {
    const r = run([[0, 999_000], [H / 60, 500]]);
    expect(r.delta).toEqual([0, 1500]);
    expect(r.flags).toEqual(['rollover@' + 1 / 60]);
    expect(run([[0, 900_000], [H, 99_999]]).flags).toEqual(['rollover@1']);
    expect(run([[0, 899_999], [H, 99_999]]).flags).toEqual(['reset@1']);
    expect(run([[0, 900_000], [H, 100_000]]).flags).toEqual(['reset@1']);
  });

  it('a gap is strictly more than max_gap, flagged at the earlier reading', () => {
    expect(run([[0, 0], [H, 100]]).flags).toEqual([]);
    expect(run([[0, 0], [H + 1, 100]]).flags).toEqual(['gap@0']);
  });

  it('equal readings at one instant are one; differing ones keep the largest with one flag', () => {
    const r = run([[0, 0], [H, 500], [H, 700], [H, 600], [H, 700], [2 * H, 800]]);
    expect(r.delta).toEqual([0, 700, 100]);
    expect(r.flags).toEqual(['conflict@1']);
    expect(run([[0, 0], [H, 500], [H, 500]]).flags).toEqual([]);
  });
});
