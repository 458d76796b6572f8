import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chargeFen, divRoundHalfUp, mulDivFloor } from '../units.ts';
import { energyAt, splitSeries } from './split.ts';

/** billing.md section 3: E(t) = E0 + round_half_up(delta * (t - t0) / (t1 - t0)), exact at any size. */
const ref = (d: number, t0: number, t1: number, t: number) => Number((2n * BigInt(d) * BigInt(t - t0) + BigInt(t1 - t0)) / (2n * BigInt(t1 - t0)));

describe('interpolation and integer money helpers', () => {
  it('energyAt matches the BigInt formula, also where delta x dt exceeds 2^53', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 9_000_000_000_000 }), fc.integer({ min: 1, max: 40_000_000_000 }), fc.double({ min: 0, max: 1, noNaN: true }), (d, dt, f) => {
        const t = Math.floor(dt * f);
        expect(energyAt(d, 0, dt, t)).toBe(t <= 0 ? 0 : t >= dt ? d : ref(d, 0, dt, t));
      }),
      { numRuns: 2000, seed: 21 },
    );
    expect(energyAt(3, 0, 2, 1)).toBe(2); // 1.5 rounds half up
  });

  it('pieces of one interval add up to its delta whatever the cuts', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 ** 13 }), fc.uniqueArray(fc.integer({ min: 1, max: 10 ** 10 - 1 }), { maxLength: 20 }), (d, cuts) => {
        const start = Float64Array.from([0, ...cuts.sort((a, b) => a - b), 10 ** 10]);
        const out = new Float64Array(start.length - 1);
        splitSeries({ time: Float64Array.from([0, 10 ** 10]), delta: Float64Array.from([0, d]) }, { start, segments: start.length - 1 }, out);
        expect(out.reduce((a, b) => a + b, 0)).toBe(d);
        out.forEach((x) => expect(x).toBeGreaterThanOrEqual(0));
      }),
      { numRuns: 300, seed: 22 },
    );
  });

  it('charges round half-up to fen exactly, BigInt beyond 2^53', () => {
    expect(chargeFen(10_285, 1_000_000)).toBe(1029); // 10.285 kWh x 1.000000 = 10.285 -> 10.29
    expect(chargeFen(25, 1_000_000)).toBe(3); // 0.025 -> 0.03
    expect(chargeFen(9_000_000_000_000, 9_999_999)).toBe(Number((2n * 9_000_000_000_000n * 9_999_999n + 10_000_000n) / 20_000_000n));
    expect(divRoundHalfUp(5, 10)).toBe(1);
    expect(divRoundHalfUp(4, 10)).toBe(0);
    expect(mulDivFloor(2 ** 40, 2 ** 20, 3)).toBe(Number((2n ** 60n) / 3n));
  });
});
