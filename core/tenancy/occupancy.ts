import type { Account, Meter, Site } from '../site/model.ts';

/**
 * Who a tenant meter's energy belongs to at each instant (billing.md section 11, rule 1):
 * the listed account whose occupancy [move_in, move_out) contains the instant, else the
 * site's landlord account (the unit is vacant then). Pure, instants in epoch ms, with
 * -Infinity / Infinity for "always" ends.
 */

export interface OccupancySpan {
  /** Epoch ms, inclusive (-Infinity: since always). */
  readonly from: number;
  /** Epoch ms, exclusive (Infinity: open). */
  readonly to: number;
  /** The occupant; for a vacant span the landlord account ('' when the site has none). */
  readonly account: string;
  readonly vacant: boolean;
}

/** [move_in, move_out) of an account; an absent end is open. */
export function occupancyOf(a: Pick<Account, 'moveIn' | 'moveOut'>): readonly [number, number] {
  return [a.moveIn ?? -Infinity, a.moveOut ?? Infinity];
}

/** True when the account occupies at instant t. */
export function occupiesAt(a: Pick<Account, 'moveIn' | 'moveOut'>, t: number): boolean {
  return (a.moveIn === undefined || t >= a.moveIn) && (a.moveOut === undefined || t < a.moveOut);
}

/** The parts of (-Infinity, Infinity) that none of the intervals cover, in order. */
export function uncovered(intervals: readonly (readonly [number, number])[]): [number, number][] {
  const sorted = intervals.filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  const out: [number, number][] = [];
  let cursor = -Infinity;
  for (const [a, b] of sorted) {
    if (a > cursor) out.push([cursor, a]);
    if (b > cursor) cursor = b;
  }
  if (cursor < Infinity) out.push([cursor, Infinity]);
  return out;
}

const timelines = new WeakMap<Site, Map<string, readonly OccupancySpan[]>>();

/**
 * The occupancy timeline of a tenant meter: contiguous spans covering all time, occupied
 * spans in order with the vacant gaps between them given to the landlord account. The site
 * loader has refused overlapping occupants, so the spans never overlap. Other roles: [].
 */
export function meterTimeline(site: Site, meter: Meter): readonly OccupancySpan[] {
  let bySite = timelines.get(site);
  if (!bySite) timelines.set(site, (bySite = new Map()));
  const hit = bySite.get(meter.id);
  if (hit) return hit;
  const spans: OccupancySpan[] = [];
  if (meter.role === 'tenant') {
    const listed = meter.accounts ?? (meter.account ? [meter.account] : []);
    const occ = listed
      .map((id) => site.accounts.find((a) => a.id === id))
      .filter((a): a is Account => a !== undefined)
      .map((a) => ({ account: a.id, range: occupancyOf(a) }))
      .sort((x, y) => x.range[0] - y.range[0]);
    const landlord = site.landlordAccount ?? '';
    let cursor = -Infinity;
    for (const o of occ) {
      const [a, b] = o.range;
      if (a > cursor) spans.push({ from: cursor, to: a, account: landlord, vacant: true });
      spans.push({ from: Math.max(a, cursor), to: b, account: o.account, vacant: false });
      cursor = Math.max(cursor, b);
    }
    if (cursor < Infinity) spans.push({ from: cursor, to: Infinity, account: landlord, vacant: true });
  }
  bySite.set(meter.id, spans);
  return spans;
}

/** The span of a tenant meter's timeline that contains instant t. */
export function occupantAt(site: Site, meter: Meter, t: number): OccupancySpan {
  const spans = meterTimeline(site, meter);
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
 * Every move-in and move-out instant of the site's accounts, sorted and distinct: the
 * extra calendar cuts of section 11 (a meter's occupant and every account's occupied share
 * of a cell are constant between two of them).
 */
export function tenancyCuts(site: Site): number[] {
  const s = new Set<number>();
  for (const a of site.accounts) {
    if (a.moveIn !== undefined) s.add(a.moveIn);
    if (a.moveOut !== undefined) s.add(a.moveOut);
  }
  return [...s].sort((x, y) => x - y);
}

/**
 * The tenant meters whose energy belongs to the account during some part of [fromMs, toMs)
 * (the landlord account also gets the meters vacant then).
 */
export function metersOf(site: Site, account: string, fromMs = -Infinity, toMs = Infinity): Meter[] {
  return site.meters.filter((m) => m.role === 'tenant' && meterTimeline(site, m).some((s) => s.account === account && s.from < toMs && s.to > fromMs));
}

/**
 * The tenant meters an account occupies at instant t (billing.md section 11): the units it
 * is the listed occupant of then. A vacant unit is nobody's here (its energy is the
 * landlord's, but the landlord does not occupy it), and an account that moved out has none:
 * what follows an account's balance at t (a prepaid relay, power now) uses this, never a
 * meter's listed `account` alone.
 */
export function metersOccupiedBy(site: Site, account: string, t: number): Meter[] {
  return site.meters.filter((m) => {
    if (m.role !== 'tenant') return false;
    const s = occupantAt(site, m, t);
    return !s.vacant && s.account === account;
  });
}
