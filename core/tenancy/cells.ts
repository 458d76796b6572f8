import type { SiteIndex } from '../settle/site-index.ts';
import type { Site } from '../site/model.ts';
import type { TouCalendar } from '../tou/calendar.ts';
import { PERIODS } from '../tou/schedule.ts';
import { occupiesAt } from './occupancy.ts';

const NP = PERIODS.length;

/** How long each account was there in one (day, period) cell (billing.md section 11, rule 3). */
export interface CellOccupancy {
  /** The cell's length, s. */
  readonly cellS: number;
  /** Per account (SiteIndex order): seconds of the cell it occupied. */
  readonly occupiedS: readonly number[];
}

/**
 * Per cell index (day x NP + period) of a calendar: each account's occupied seconds, on a
 * site where some account has a move_in or move_out; undefined on other sites (section 4
 * weights as they are). The calendar must be cut at every move instant (siteCuts), so an
 * account occupies a segment whole or not at all. Move instants and cell bounds are whole
 * seconds (the site loader refuses fractions), so the seconds are exact integers.
 */
export function cellOccupancy(site: Site, idx: SiteIndex, cal: TouCalendar, nCells: number): ((c: number) => CellOccupancy) | undefined {
  const byId = new Map(site.accounts.map((a) => [a.id, a]));
  const dated = idx.accountIds.map((id, pos) => ({ a: byId.get(id)!, pos })).filter(({ a }) => a.moveIn !== undefined || a.moveOut !== undefined);
  if (dated.length === 0) return undefined;
  const cellMs = new Float64Array(nCells);
  const occupied = new Map<number, Float64Array>(dated.map((d) => [d.pos, new Float64Array(nCells)]));
  for (let k = 0; k < cal.segments; k++) {
    const c = cal.day[k] * NP + cal.period[k];
    const len = cal.start[k + 1] - cal.start[k];
    cellMs[c] += len;
    for (const d of dated) if (occupiesAt(d.a, cal.start[k])) occupied.get(d.pos)![c] += len;
  }
  return (c) => {
    const cellS = Math.round(cellMs[c] / 1000);
    return { cellS, occupiedS: idx.accountIds.map((_, a) => (occupied.has(a) ? Math.round(occupied.get(a)![c] / 1000) : cellS)) };
  };
}
