import type { Meter, Site } from '../site/model.ts';
import { meterTimeline } from '../tenancy/occupancy.ts';
import { buildCalendar } from '../tou/calendar.ts';
import type { TouCalendar } from '../tou/calendar.ts';
import { addDays } from '../tou/local-date.ts';
import { zoneOf } from '../tou/zone.ts';

/**
 * billing.md section 2 rule 4 (amendment 11, issue 16): whether the energy of the interval
 * between two readings at t0 < t1 is divided by its linear spread (section 3) between
 * settlement cells (local day x TOU period) or, on a tenant meter, between occupants (a
 * move-in or move-out of the meter's occupants, section 11 rule 1). Only then does the
 * spread decide anything billed; an interval inside one cell and one occupancy belongs to
 * that cell and that occupant whole, however it is spread.
 */
export function spansCells(site: Site, t0: number, t1: number, meter?: Meter): boolean {
  const zone = zoneOf(site.timezone);
  // The interval's energy lies in [t0, t1): its last instant is t1 - 1 ms.
  const day = zone.dateOf(t0);
  if (zone.dateOf(t1 - 1) !== day) return true;
  return spansCellsIn(buildCalendar(site, day, addDays(day, 1)), t0, t1, meter ? occupantChanges(site, meter) : []);
}
// A gap spread by its tariff registers (section 2 rule 5) is judged per period instead:
// counters/register-spread.ts.

/**
 * The same rule on a calendar already built (the settlement's): a cell boundary, or one of
 * `cuts` (the meter's occupant changes), strictly inside (t0, t1). The calendar starts and
 * ends at local midnights, so an interval that reaches past either end crosses one.
 */
export function spansCellsIn(cal: TouCalendar, t0: number, t1: number, cuts: readonly number[] = []): boolean {
  const first = cal.start[0];
  const end = cal.start[cal.segments];
  if ((t0 < first && t1 > first) || (t0 < end && t1 > end)) return true;
  if (cuts.some((c) => c > t0 && c < t1)) return true;
  for (let k = 1; k < cal.segments; k++) {
    const b = cal.start[k];
    if (b > t0 && b < t1 && (cal.period[k] !== cal.period[k - 1] || cal.day[k] !== cal.day[k - 1])) return true;
  }
  return false;
}

/** The instants a tenant meter's occupant changes (its timeline's span starts); none for other roles. */
export function occupantChanges(site: Site, meter: Meter): number[] {
  return meterTimeline(site, meter)
    .map((s) => s.from)
    .filter((t) => Number.isFinite(t));
}
