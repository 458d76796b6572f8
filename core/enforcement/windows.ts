import { addDays, weekdayOf } from '../tou/local-date.ts';
import type { LocalDate } from '../tou/local-date.ts';
import type { Zone } from '../tou/zone.ts';
import type { ProtectedWindow } from './config.ts';

/**
 * Protected windows in the site's local wall-clock time (DST included: a window is cut at
 * the local times it names). A window of a date covers [date from, date to) when to > from,
 * else [date from, next date to): a night belongs to the date it starts on.
 */

function matches(w: ProtectedWindow, date: LocalDate, holidays: ReadonlySet<string>): boolean {
  // A date matches by its weekday, or as a holiday when it is one: a holiday that falls on a
  // Saturday is protected by a weekend window and by a holiday window alike.
  return w.days.includes(weekdayOf(date)) || (holidays.has(date) && w.days.includes('holiday'));
}

const at = (zone: Zone, date: LocalDate, minutes: number): number => zone.firstInstantAtOrAfter(Date.parse(`${date}T00:00:00Z`) + minutes * 60_000);

/** The instance of window `w` covering instant t (its end), or undefined. */
function coveringEnd(w: ProtectedWindow, zone: Zone, holidays: ReadonlySet<string>, t: number): number | undefined {
  const today = zone.dateOf(t);
  // A night that started yesterday may still be running.
  for (const date of [addDays(today, -1), today]) {
    if (!matches(w, date, holidays)) continue;
    const start = at(zone, date, w.from);
    const end = w.to > w.from ? at(zone, date, w.to) : at(zone, addDays(date, 1), w.to);
    if (t >= start && t < end) return end;
  }
  return undefined;
}

export interface WindowHit {
  /** The windows that protect the instant, by name. */
  readonly names: readonly string[];
  /** The first instant after t that no window protects: when a deferred trip may go. */
  readonly until: number;
}

/**
 * Whether a trip at `t` falls in a protected window, and until when the protection lasts
 * when windows run into each other (Friday night -> weekend -> Monday morning). Bounded:
 * a site protected without end (windows covering every day) reports 60 days ahead.
 */
export function protectedAt(windows: readonly ProtectedWindow[], zone: Zone, holidays: ReadonlySet<string>, t: number): WindowHit | undefined {
  const names = new Set<string>();
  let until = t;
  for (let guard = 0; guard < 200; guard++) {
    let next = until;
    for (const w of windows) {
      const end = coveringEnd(w, zone, holidays, until);
      if (end !== undefined) {
        names.add(w.name);
        next = Math.max(next, end);
      }
    }
    if (next === until) break;
    until = next;
    if (until - t > 60 * 86_400_000) break;
  }
  return names.size > 0 ? { names: [...names], until } : undefined;
}
