/**
 * Local calendar dates as 'YYYY-MM-DD' strings: what site files, bills and settlement
 * days are written in. Pure arithmetic on the proleptic Gregorian calendar; no time zone.
 */

export type LocalDate = string;

const LOCAL_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];
export type DayType = Weekday | 'holiday';
export const DAY_TYPES: readonly DayType[] = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun', 'holiday'];

/** Days since 1970-01-01 of a valid local date, or undefined if the text is not one. */
export function epochDay(date: string): number | undefined {
  const m = LOCAL_DATE.exec(date);
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (mo < 1 || mo > 12 || d < 1 || d > 31) return undefined;
  const ms = Date.UTC(y, mo - 1, d);
  const back = new Date(ms);
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d) return undefined;
  return ms / 86_400_000;
}

export function isLocalDate(date: string): boolean {
  return epochDay(date) !== undefined;
}

export function fromEpochDay(day: number): LocalDate {
  return new Date(day * 86_400_000).toISOString().slice(0, 10);
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
