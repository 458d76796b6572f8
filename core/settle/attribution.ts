import { BillingInputError } from '../errors.ts';
import type { Site } from '../site/model.ts';
import type { TouCalendar } from '../tou/calendar.ts';
import { PERIODS } from '../tou/schedule.ts';
import { zoneOf } from '../tou/zone.ts';
import { meterTimeline } from '../tenancy/occupancy.ts';
import { siteIndex } from './site-index.ts';

/**
 * Whose energy a meter's is (billing.md sections 4 and 11): the master sum M, a pool's C_k,
 * or, for a tenant meter, the own energy T_i of the account occupying its unit at the
 * instant (section 11 rule 1: the listed occupant then, else the landlord account, the
 * energy then also counting as vacant). The offline settlement (settleRange, per calendar
 * piece of raw readings) and the provisional one (per piece of the workers' 15-minute
 * buckets) both attribute through this, so the two always build the same cells. Both cut
 * their pieces at every move instant (siteCuts), so a piece has one occupant: the one at
 * its first instant.
 */

/** A stretch of a tenant meter's occupancy, the account as a siteIndex position. */
export interface TenantSpan {
  /** Epoch ms, inclusive (-Infinity: since always). */
  readonly from: number;
  /** Epoch ms, exclusive (Infinity: open). */
  readonly to: number;
  /** Account position; -1 for a vacant span on a site without a landlord account (the loader refuses energy there). */
  readonly account: number;
  readonly vacant: boolean;
}

export type MeterTarget =
  | { readonly kind: 'master' }
  | { readonly kind: 'tenant'; readonly spans: readonly TenantSpan[] }
  | { readonly kind: 'pool'; readonly pool: number };

const cache = new WeakMap<Site, readonly MeterTarget[]>();

/** Per meter (site.meters order): its target, accounts and pools as positions in siteIndex order. */
export function meterTargets(site: Site): readonly MeterTarget[] {
  const hit = cache.get(site);
  if (hit) return hit;
  const idx = siteIndex(site);
  const poolPos = new Map(idx.pools.map((p, k) => [p.id, k]));
  const out = site.meters.map((m): MeterTarget => {
    if (m.role === 'master') return { kind: 'master' };
    if (m.role === 'tenant') {
      const spans = meterTimeline(site, m).map((s) => ({ from: s.from, to: s.to, account: idx.accountPos.get(s.account) ?? -1, vacant: s.vacant }));
      return { kind: 'tenant', spans };
    }
    return { kind: 'pool', pool: poolPos.get(m.pool!)! };
  });
  cache.set(site, out);
  return out;
}

/** The span of a tenant target holding instant t. */
export function spanAt(spans: readonly TenantSpan[], t: number): TenantSpan {
  if (spans.length === 1) return spans[0];
  let lo = 0;
  let hi = spans.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (spans[mid].from <= t) lo = mid;
    else hi = mid - 1;
  }
  return spans[lo];
}

/**
 * Every instant at which a settlement or a bucket must be cut (a cut changes no cell's
 * energy: pieces telescope, section 3): move-ins and move-outs (a piece has one occupant)
 * and meter changes (a piece has one register and one multiplier, so the workers' counter
 * state can resume at a change; section 11 rule 5). Sorted, distinct.
 */
export function siteCuts(site: Site): number[] {
  const s = new Set<number>();
  for (const a of site.accounts) {
    if (a.moveIn !== undefined) s.add(a.moveIn);
    if (a.moveOut !== undefined) s.add(a.moveOut);
  }
  for (const m of site.meters) for (const c of m.changes ?? []) s.add(c.at);
  return [...s].sort((x, y) => x - y);
}

/**
 * Cell energies being summed: per cell index c, the master energy, each account's own,
 * each pool's, and (sites with a landlord account) the vacant part of tenant energy.
 */
export class CellSums {
  readonly master: Float64Array;
  readonly tenant: Float64Array[];
  readonly pool: Float64Array[];
  readonly vacant: Float64Array | undefined;
  private readonly targets: readonly MeterTarget[];

  constructor(
    private readonly site: Site,
    nCells: number,
  ) {
    const idx = siteIndex(site);
    this.targets = meterTargets(site);
    this.master = new Float64Array(nCells);
    this.tenant = idx.accountIds.map(() => new Float64Array(nCells));
    this.pool = idx.pools.map(() => new Float64Array(nCells));
    this.vacant = site.landlordAccount !== undefined ? new Float64Array(nCells) : undefined;
  }

  /**
   * Adds `wh` of meter `mi` (site.meters position) to cell `c`, for a piece starting at
   * instant `t` (its occupant is the one at t). Throws a BillingInputError naming the meter when
   * the unit has no occupant then and the site no landlord account (the loader refuses such a
   * file: this is a guard).
   */
  add(mi: number, c: number, t: number, wh: number): void {
    if (wh === 0) return;
    const to = this.targets[mi];
    if (to.kind === 'master') this.master[c] += wh;
    else if (to.kind === 'pool') this.pool[to.pool][c] += wh;
    else {
      const span = spanAt(to.spans, t);
      if (span.account < 0) throw new BillingInputError(`meter ${this.site.meters[mi].id} has ${wh} Wh at ${zoneOf(this.site.timezone).format(t)} and no occupant: name a site.landlord_account`);
      this.tenant[span.account][c] += wh;
      if (span.vacant && this.vacant) this.vacant[c] += wh;
    }
  }

  /** Adds a meter's energy per segment of a calendar (cells day x NP + period), the calendar cut at siteCuts. */
  addSegments(mi: number, cal: TouCalendar, seg: ArrayLike<number>): void {
    const to = this.targets[mi];
    // One target for the whole calendar: the plain loop (most meters).
    const fixed = to.kind === 'master' ? this.master : to.kind === 'pool' ? this.pool[to.pool] : to.spans.length === 1 && !to.spans[0].vacant ? this.tenant[to.spans[0].account] : undefined;
    if (fixed) {
      for (let k = 0; k < cal.segments; k++) if (seg[k] !== 0) fixed[cal.day[k] * NP + cal.period[k]] += seg[k];
      return;
    }
    for (let k = 0; k < cal.segments; k++) if (seg[k] !== 0) this.add(mi, cal.day[k] * NP + cal.period[k], cal.start[k], seg[k]);
  }
}

const NP = PERIODS.length;

/**
 * [fromMs, toMs) cut at every move-in and move-out inside it: within one piece every
 * tenant meter has one occupant, so energy summed over a piece (the workers sum buckets per
 * piece) can be attributed at the piece's first instant (MeterEnergy.at).
 */
export function occupancyPieces(site: Site, fromMs: number, toMs: number): [number, number][] {
  const cuts = new Set<number>();
  for (const a of site.accounts) {
    if (a.moveIn !== undefined && a.moveIn > fromMs && a.moveIn < toMs) cuts.add(a.moveIn);
    if (a.moveOut !== undefined && a.moveOut > fromMs && a.moveOut < toMs) cuts.add(a.moveOut);
  }
  const bounds = [fromMs, ...[...cuts].sort((x, y) => x - y), toMs];
  const out: [number, number][] = [];
  for (let i = 0; i + 1 < bounds.length; i++) out.push([bounds[i], bounds[i + 1]]);
  return out;
}
