import type { Site } from '../site/model.ts';
import type { QualityFlag } from '../types.ts';
import { buildCalendar } from '../tou/calendar.ts';
import type { TouCalendar } from '../tou/calendar.ts';
import { addDays } from '../tou/local-date.ts';
import { zoneOf } from '../tou/zone.ts';

/**
 * billing.md section 2 rule 4 (amendment 11, issue 16): whether the energy of the interval
 * between two readings at t0 < t1 is divided between settlement cells (local day x TOU
 * period). Only then does its linear spread (section 3) decide anything billed; an
 * interval inside one cell belongs to that cell whole, however it is spread.
 */
export function spansCells(site: Site, t0: number, t1: number): boolean {
  const zone = zoneOf(site.timezone);
  // The interval's energy lies in [t0, t1): its last instant is t1 - 1 ms.
  const day = zone.dateOf(t0);
  if (zone.dateOf(t1 - 1) !== day) return true;
  return spansCellsIn(buildCalendar(site, day, addDays(day, 1)), t0, t1);
}

/**
 * The same rule on a calendar already built (the settlement's): a cell boundary strictly
 * inside (t0, t1). The calendar starts and ends at local midnights, so an interval that
 * reaches past either end crosses one.
 */
export function spansCellsIn(cal: TouCalendar, t0: number, t1: number): boolean {
  const first = cal.start[0];
  const end = cal.start[cal.segments];
  if ((t0 < first && t1 > first) || (t0 < end && t1 > end)) return true;
  for (let k = 1; k < cal.segments; k++) {
    const b = cal.start[k];
    if (b > t0 && b < t1 && (cal.period[k] !== cal.period[k - 1] || cal.day[k] !== cal.day[k - 1])) return true;
  }
  return false;
}

/** The flags without `gap` flags whose interval lies inside one cell (nothing billed was estimated). */
export function billableFlags(site: Site, flags: readonly QualityFlag[]): QualityFlag[] {
  return flags.filter((f) => f.kind !== 'gap' || f.until === undefined || spansCells(site, f.time, f.until));
}
