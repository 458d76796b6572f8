import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { largestRemainder } from '../index.ts';

/**
 * billing.md section 4 "Division of energy": the leftover Wh go one each to the largest
 * remainders, ties by larger weight, then id ascending. The division picks them by a
 * threshold (core/settle/divide.ts giveLeftovers); this holds it to the rule written out as a
 * sort of every member, on weights drawn from small ranges so that remainders and weights tie.
 */
function reference(total: number, weights: readonly number[], ids: readonly string[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  const w = sum === 0 ? weights.map(() => 1) : weights;
  const W = sum === 0 ? weights.length : sum;
  const E = BigInt(total);
  const shares = w.map((x) => Number((E * BigInt(x)) / BigInt(W)));
  const rem = w.map((x) => (E * BigInt(x)) % BigInt(W));
  let left = total - shares.reduce((a, b) => a + b, 0);
  const order = w.map((_, i) => i).sort((a, b) => (rem[a] !== rem[b] ? (rem[a] > rem[b] ? -1 : 1) : w[a] !== w[b] ? w[b] - w[a] : ids[a] < ids[b] ? -1 : ids[a] > ids[b] ? 1 : 0));
  for (let k = 0; left > 0; k++, left--) shares[order[k]]++;
  return shares;
}

describe('largest remainder: the threshold pick = the rule as a full sort', () => {
  it('on random weights with many ties, ids in any order', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 100_000 }),
        fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 300 }),
        fc.integer({ min: 1, max: 1000 }),
        (E, w, seed) => {
          // Ids not in index order, so the id tie-break is exercised apart from the position.
          const ids = w.map((_, i) => `a${String((i * seed) % 1009).padStart(4, '0')}-${i}`);
          expect(largestRemainder(E, w, ids)).toEqual(reference(E, w, ids));
        },
      ),
      { numRuns: 500, seed: 21 },
    );
  });

  it('a site-sized division (1,000 members) with every remainder tied', () => {
    const w = Array.from({ length: 1000 }, () => 3);
    const ids = w.map((_, i) => `A${String(i).padStart(4, '0')}`);
    expect(largestRemainder(1999, w, ids)).toEqual(reference(1999, w, ids));
    expect(largestRemainder(1999, w, ids).slice(0, 3)).toEqual([2, 2, 2]);
  });
});
