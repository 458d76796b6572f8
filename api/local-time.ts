import { minuteOfDay, zoneOf } from '../core/index.ts';

/**
 * Local wall-clock helpers for one site zone (billing.md section 3: days and TOU periods
 * are local), in the shapes the routes use. The zone rules are the core's (core/tou/zone.ts,
 * cached per zone), so the API and the bills can never disagree about a local day.
 */

export interface LocalParts {
  readonly date: string;
  /** Minutes after local midnight (wall clock). */
  readonly minute: number;
  /** Offset (local - UTC) in ms. */
  readonly offsetMs: number;
}

export function localParts(utcMs: number, tz: string): LocalParts {
  const zone = zoneOf(tz);
  return { date: zone.dateOf(utcMs), minute: minuteOfDay(tz, utcMs), offsetMs: zone.offsetAt(utcMs) };
}

/** UTC instant of local midnight starting `date` (the earlier one if a fall-back repeats it). */
export function localMidnight(date: string, tz: string): number {
  return zoneOf(tz).midnight(date);
}

/** RFC 3339 at the local offset, seconds precision (billing.md section 6 style). */
export function formatLocal(utcMs: number, tz: string): string {
  return zoneOf(tz).format(Math.floor(utcMs / 1000) * 1000);
}

export function nextMonth(month: string): string {
  const [y, m] = month.split('-').map(Number);
  // Zero-padded four-digit years, so months compare as strings.
  return m === 12 ? `${String(y + 1).padStart(4, '0')}-01` : `${String(y).padStart(4, '0')}-${String(m + 1).padStart(2, '0')}`;
}

export function monthRange(month: string): { from: string; to: string } {
  return { from: `${month}-01`, to: `${nextMonth(month)}-01` };
}
