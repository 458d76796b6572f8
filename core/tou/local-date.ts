/**
 * Local calendar dates as 'YYYY-MM-DD' strings: what site files, bills and settlement
 * days are written in. Pure arithmetic on the proleptic Gregorian calendar; no time zone.
 */

import { civilFromDays, daysFromCivil, daysInMonth } from '../civil-date.ts';

export type LocalDate = string;

const LOCAL_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];
export type DayType = Weekday | 'holiday';
export const DAY_TYPES: readonly DayType[] = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun', 'holiday'];

/**
 * Days since 1970-01-01 of a valid local date, or undefined if the text is not one. Any
 * four-digit year is computed exactly (no `Date.UTC`, which maps years 0-99 to 1900-1999);
 * whether a date is in the supported range is the edges' question (core/date-range.ts).
 */
export function epochDay(date: string): number | undefined {
  const m = LOCAL_DATE.exec(date);
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo)) return undefined;
  return daysFromCivil(y, mo, d);
}

export function isLocalDate(date: string): boolean {
  return epochDay(date) !== undefined;
}

/** The local date of a day number, always YYYY-MM-DD with a zero-padded four-digit year. */
export function fromEpochDay(day: number): LocalDate {
  const { y, m, d } = civilFromDays(day);
  if (y < 0 || y > 9999) throw new RangeError(`day ${day} is not in a four-digit year`);
  return `${String(y).padStart(4, '0')}-${m < 10 ? '0' : ''}${m}-${d < 10 ? '0' : ''}${d}`;
}

export function addDays(date: LocalDate, n: number): LocalDate {
  const d = epochDay(date);
  if (d === undefined) throw new RangeError(`not a local date: ${date}`);
  return fromEpochDay(d + n);
}

export function monthOf(date: LocalDate): number {
  return Number(date.slice(5, 7));
}

export function weekdayOf(date: LocalDate): Weekday {
  const d = epochDay(date);
  if (d === undefined) throw new RangeError(`not a local date: ${date}`);
  // 1970-01-01 was a Thursday.
  return WEEKDAYS[(((d + 4) % 7) + 7) % 7];
}

/** billing.md section 1: a date listed in site.holidays is day type `holiday`, whatever its weekday. */
export function dayTypeOf(date: LocalDate, holidays: ReadonlySet<string>): DayType {
  return holidays.has(date) ? 'holiday' : weekdayOf(date);
}
