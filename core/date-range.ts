import { daysFromCivil, daysInMonth } from './civil-date.ts';

/**
 * The one range of dates submeter supports, everywhere: local dates 2000-01-01 to
 * 2199-12-31 and the instants written in them. Every edge (API parameters and bodies, CLI
 * options, site-file dates, readings and payments CSV) checks it with the functions below,
 * so nothing inside ever meets a year that `Date.UTC` maps to 1900-1999 (years 0-99), a
 * five-digit year that breaks string order ("10000-01-01" < "2026-01-01"), or an instant
 * outside InfluxDB's int64 nanoseconds (1677-2262).
 *
 * Why 2000-2199: every date in it is four digits (so local-date strings sort as dates), it
 * starts before any meter this product will read and ends far after any bill it will run.
 */
export const FIRST_YEAR = 2000;
export const LAST_YEAR = 2199;
export const FIRST_DATE = '2000-01-01';
export const LAST_DATE = '2199-12-31';
/** How the range is named in error messages. */
export const DATE_RANGE_TEXT = `${FIRST_DATE} to ${LAST_DATE}`;

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
/**
 * Instants in the range: from local midnight of FIRST_DATE in the easternmost zone
 * (UTC+14) to local midnight after LAST_DATE in the westernmost (UTC-12), so that every
 * instant written with a date in the range, at any offset, is inside.
 */
export const FIRST_INSTANT_MS = daysFromCivil(FIRST_YEAR, 1, 1) * DAY_MS - 14 * HOUR_MS;
export const END_INSTANT_MS = daysFromCivil(LAST_YEAR + 1, 1, 1) * DAY_MS + 12 * HOUR_MS;

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const MONTH = /^(\d{4})-(\d{2})$/;

/** Why a text is not a supported local date YYYY-MM-DD, or undefined when it is one. */
export function dateProblem(text: string): string | undefined {
  const m = DATE.exec(text);
  if (!m) return `must be a local date YYYY-MM-DD, got ${JSON.stringify(text)}`;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo)) return `must be a local date YYYY-MM-DD, got ${JSON.stringify(text)} (no such day)`;
  if (y < FIRST_YEAR || y > LAST_YEAR) return `${text} is outside the supported dates ${DATE_RANGE_TEXT}`;
  return undefined;
}

export function isSupportedDate(text: string): boolean {
  return dateProblem(text) === undefined;
}

/** Why a text is not a supported month YYYY-MM, or undefined. */
export function monthProblem(text: string): string | undefined {
  const m = MONTH.exec(text);
  if (!m) return `must be a month YYYY-MM, got ${JSON.stringify(text)}`;
  const [y, mo] = [Number(m[1]), Number(m[2])];
  if (mo < 1 || mo > 12) return `must be a month YYYY-MM, got ${JSON.stringify(text)} (no such month)`;
  if (y < FIRST_YEAR || y > LAST_YEAR) return `${text} is outside the supported dates ${DATE_RANGE_TEXT}`;
  return undefined;
}

/** Why an instant (epoch ms) is outside the supported range, or undefined. */
export function instantProblem(ms: number): string | undefined {
  if (!Number.isFinite(ms)) return 'is not a time';
  if (ms < FIRST_INSTANT_MS || ms >= END_INSTANT_MS) return `is outside the supported dates ${DATE_RANGE_TEXT}`;
  return undefined;
}

/**
 * Why [from, to) is not a usable range of supported local dates, naming the option
 * (`from` or `to`) at fault, or undefined. `to` is exclusive and must be after `from`.
 */
export function dateRangeProblem(from: string, to: string): { field: 'from' | 'to'; message: string } | undefined {
  const f = dateProblem(from);
  if (f) return { field: 'from', message: f };
  const t = dateProblem(to);
  if (t) return { field: 'to', message: t };
  // Four-digit years: string order is date order.
  if (!(from < to)) return { field: 'to', message: `must be after from (${from}), got ${to}` };
  return undefined;
}
