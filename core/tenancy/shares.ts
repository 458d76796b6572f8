import { largestRemainder } from '../settle/divide.ts';
import type { SiteIndex } from '../settle/site-index.ts';
import type { ShareMethod } from '../site/model.ts';

/**
 * Common-pool and loss shares when accounts come and go (billing.md section 10, rule 3).
 * In a (day, period) cell of D ms an account that occupied O_i ms of it weighs
 * `area`: area_i x O_i, `equal`: O_i, `consumption`: its own energy T_i (as in section 4).
 * All weights 0: O_i (equal, prorated); all O_i 0 too (no member there at all): the
 * landlord account takes the whole amount. Weights that only scale section 4's (everyone
 * there the whole cell) give the same shares, so a site without moves bills as before.
 */

export interface Occupancy {
  /** Per account (SiteIndex order): ms of the cell it occupied. */
  readonly occupiedMs: ArrayLike<number>;
}

/** [account position, Wh] of a division of `total` Wh among `members` (account positions, ascending). */
export function divideAmong(
  idx: SiteIndex,
  method: ShareMethod,
  members: readonly number[],
  tenantWh: ArrayLike<number>,
  total: number,
  occupancy: Occupancy | undefined,
): [number, number][] {
  const ids = members.map((m) => idx.accountIds[m]);
  if (!occupancy) {
    const w = method === 'area' ? members.map((m) => idx.area[m]) : method === 'consumption' ? members.map((m) => tenantWh[m]) : members.map(() => 1);
    return largestRemainder(total, w, ids).map((s, j) => [members[j], s]);
  }
  const occ = members.map((m) => occupancy.occupiedMs[m]);
  let w: (number | bigint)[];
  if (method === 'consumption') w = members.map((m) => tenantWh[m]);
  else if (method === 'area') w = members.map((m, j) => weight(idx.area[m], occ[j]));
  else w = occ;
  if (w.every((x) => x === 0 || x === 0n)) {
    if (occ.every((x) => x === 0)) {
      if (idx.landlord === undefined) throw new RangeError('no account of the division occupies the cell and the site has no landlord account (the site loader refuses such a file)');
      return [[idx.landlord, total]];
    }
    w = occ;
  }
  return largestRemainder(total, w, ids).map((s, j) => [members[j], s]);
}

/** area (10^-4 m2) x ms exactly: a Number while safe, else BigInt. */
function weight(area: number, ms: number): number | bigint {
  const p = area * ms;
  return p <= Number.MAX_SAFE_INTEGER ? p : BigInt(area) * BigInt(ms);
}
