import type { TariffRows } from '../types.ts';

/**
 * The tariff registers read with the reading (t, wh) of a meter: the rows at instant t that
 * carry that total. Several rows at one instant are one reading (billing.md section 2 rule
 * 1: the largest total is kept); of the rows with the kept total each register is the
 * largest read (registers only grow, so the larger is the later read), which does not depend
 * on the rows' order. Registers 1..4 in Wh, NaN where none of those rows has it; undefined
 * when no row at t carries that total.
 */
export function registersAt(rows: TariffRows | undefined, t: number, wh: number): Float64Array | undefined {
  if (rows === undefined) return undefined;
  const time = rows.time;
  let lo = 0;
  let hi = time.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (time[mid] < t) lo = mid + 1;
    else hi = mid;
  }
  let out: Float64Array | undefined;
  for (let i = lo; i < time.length && time[i] === t; i++) {
    if (rows.wh[i] !== wh) continue;
    out ??= new Float64Array(4).fill(NaN);
    for (let k = 0; k < 4; k++) {
      const r = rows.reg[i * 4 + k];
      if (!Number.isNaN(r) && !(r <= out[k])) out[k] = r;
    }
  }
  return out;
}
