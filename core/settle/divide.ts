import { byteOrder } from '../units.ts';

/**
 * billing.md section 4, "Division of energy": the largest remainder method in whole Wh.
 * share_i = floor(E * w_i / W); the leftover Wh go one each to the largest fractional
 * remainders, ties broken by larger weight, then by id ascending (byte order). If all
 * weights are 0 the split is equal. Shares always sum to E exactly.
 *
 * Weights are non-negative integers (Wh, area in 10^-4 m2, or 1 for equal). Number
 * arithmetic while E * w stays safe, BigInt otherwise.
 */
export function largestRemainder(total: number, weights: readonly (number | bigint)[], ids: readonly string[]): number[] {
  // Occupancy-prorated weights (area x occupied ms, billing.md section 11) may pass 2^53.
  if (weights.some((x) => typeof x === 'bigint')) return largestRemainderBig(total, weights.map((x) => BigInt(x)), ids);
  return largestRemainderNumber(total, weights as readonly number[], ids);
}

function largestRemainderNumber(total: number, weights: readonly number[], ids: readonly string[]): number[] {
  const n = weights.length;
  if (n === 0) {
    if (total !== 0) throw new RangeError('cannot divide energy among no accounts');
    return [];
  }
  let w = weights;
  let sum = 0;
  let max = 0;
  for (const x of w) {
    sum += x;
    if (x > max) max = x;
  }
  if (sum === 0) {
    w = weights.map(() => 1);
    sum = n;
    max = 1;
  }
  const shares = new Array<number>(n);
  let given = 0;
  if (total * max <= Number.MAX_SAFE_INTEGER && Number.isSafeInteger(sum)) {
    const rem = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      const p = total * w[i];
      let q = Math.floor(p / sum);
      let r = p - q * sum;
      if (r < 0) {
        q--;
        r += sum;
      } else if (r >= sum) {
        q++;
        r -= sum;
      }
      shares[i] = q;
      rem[i] = r;
      given += q;
    }
    const left = total - given;
    if (left > 0) giveLeftovers(shares, rem, w, ids, left);
    return shares;
  }
  return largestRemainderBig(total, w.map((x) => BigInt(x)), ids);
}

/**
 * One more Wh each to the `left` largest remainders (0 < left < n), ties by larger weight,
 * then id ascending: the threshold remainder from a numeric sort of a copy (a typed array's
 * own sort, no comparator), every remainder above it, and only the tied ones at it ordered
 * by the rule. The same result as sorting every index by the rule, at a fraction of the cost
 * on divisions among thousands of accounts (a site's loss every period, every few seconds
 * in the live balance).
 */
function giveLeftovers(shares: number[], rem: readonly number[], w: readonly number[], ids: readonly string[], left: number): void {
  const n = rem.length;
  const sorted = Float64Array.from(rem).sort();
  const threshold = sorted[n - left];
  const tied: number[] = [];
  for (let i = 0; i < n; i++) {
    if (rem[i] > threshold) {
      shares[i]++;
      left--;
    } else if (rem[i] === threshold) tied.push(i);
  }
  if (left === tied.length) {
    for (const i of tied) shares[i]++;
    return;
  }
  tied.sort((a, b) => (w[a] !== w[b] ? w[b] - w[a] : byteOrder(ids[a], ids[b])));
  for (let k = 0; k < left; k++) shares[tied[k]]++;
}

/** The same rule with BigInt weights (each share still a safe integer: it is at most total). */
function largestRemainderBig(total: number, weights: readonly bigint[], ids: readonly string[]): number[] {
  const n = weights.length;
  if (n === 0) {
    if (total !== 0) throw new RangeError('cannot divide energy among no accounts');
    return [];
  }
  let w = weights;
  let sum = w.reduce((a, x) => a + x, 0n);
  if (sum === 0n) {
    w = weights.map(() => 1n);
    sum = BigInt(n);
  }
  const E = BigInt(total);
  const shares = new Array<number>(n);
  const rem = new Array<bigint>(n);
  let given = 0;
  for (let i = 0; i < n; i++) {
    const p = E * w[i];
    shares[i] = Number(p / sum);
    rem[i] = p % sum;
    given += shares[i];
  }
  let left = total - given;
  if (left > 0) {
    const order = [...Array(n).keys()].sort((a, b) => {
      if (rem[a] !== rem[b]) return rem[a] > rem[b] ? -1 : 1;
      if (w[a] !== w[b]) return w[b] > w[a] ? 1 : -1;
      return byteOrder(ids[a], ids[b]);
    });
    for (let k = 0; left > 0; k++, left--) shares[order[k]]++;
  }
  return shares;
}
