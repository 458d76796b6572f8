import { largestRemainder } from '../settle/divide.ts';
import type { SiteIndex } from '../settle/site-index.ts';
import type { ShareMethod } from '../site/model.ts';
import type { CellOccupancy } from './cells.ts';

/**
 * Common-pool and loss shares (billing.md section 4, and section 11 rule 3 when accounts
 * come and go). In a (day, period) cell an account that occupied O_i seconds of it weighs
 * `area`: area_i x O_i, `equal`: O_i, `consumption`: its own energy T_i (as in section 4).
 * All weights 0: O_i (equal, prorated); all O_i 0 too (no member there at all): the
 * landlord account takes the whole amount. Weights that only scale section 4's (everyone
 * there the whole cell) give the same shares, so a site without moves bills as before.
 */

/** A division and the weights it used (the statement shows them: share_basis). */
export interface Division {
  /** [account position, Wh], members in order. */
  readonly shares: readonly (readonly [number, number])[];
  /** The weights used, members in order: area in 10^-4 m2, own Wh, or 1 each (x occupied seconds when prorated). */
  readonly weights: readonly (number | bigint)[];
  /** The method's weights, `equal` when all were 0 (the fallback), `landlord` when nobody was there. */
  readonly basis: ShareMethod | 'landlord';
  /** Area and equal weights were multiplied by occupied seconds (section 11). */
  readonly prorated: boolean;
}

/** A division of `total` Wh among `members` (account positions, ascending). */
export function divideAmong(
  idx: SiteIndex,
  method: ShareMethod,
  members: readonly number[],
  tenantWh: ArrayLike<number>,
  total: number,
  occupancy: CellOccupancy | undefined,
): Division {
  const ids = idsOf(idx, members);
  const split = (w: readonly (number | bigint)[], basis: Division['basis'], prorated: boolean): Division => ({
    shares: largestRemainder(total, w, ids).map((s, j) => [members[j], s] as const),
    weights: w,
    basis,
    prorated,
  });
  if (!occupancy) {
    const w = method === 'area' ? members.map((m) => idx.area[m]) : method === 'consumption' ? members.map((m) => tenantWh[m]) : members.map(() => 1);
    return split(w, w.every((x) => x === 0) ? 'equal' : method, false);
  }
  const occ = members.map((m) => occupancy.occupiedS[m]);
  let w: (number | bigint)[];
  if (method === 'consumption') w = members.map((m) => tenantWh[m]);
  else if (method === 'area') w = members.map((m, j) => weight(idx.area[m], occ[j]));
  else w = occ;
  if (w.every((x) => x === 0 || x === 0n)) {
    if (occ.every((x) => x === 0)) {
      if (idx.landlord === undefined) throw new RangeError('no account of the division occupies the cell and the site has no landlord account (the site loader refuses such a file)');
      return { shares: [[idx.landlord, total]], weights: [1], basis: 'landlord', prorated: true };
    }
    return split(occ, 'equal', true);
  }
  return split(w, method, method !== 'consumption');
}

/** area (10^-4 m2) x s exactly: a Number while safe, else BigInt. */
function weight(area: number, s: number): number | bigint {
  const p = area * s;
  return p <= Number.MAX_SAFE_INTEGER ? p : BigInt(area) * BigInt(s);
}

/** The ids of a division's members (its tie-break), once per members array: a pool's and the loss's are the same arrays every cell. */
const memberIds = new WeakMap<SiteIndex, WeakMap<readonly number[], readonly string[]>>();
function idsOf(idx: SiteIndex, members: readonly number[]): readonly string[] {
  let byMembers = memberIds.get(idx);
  if (!byMembers) memberIds.set(idx, (byMembers = new WeakMap()));
  let ids = byMembers.get(members);
  if (!ids) byMembers.set(members, (ids = members.map((m) => idx.accountIds[m])));
  return ids;
}
