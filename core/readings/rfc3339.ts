/**
 * RFC 3339 timestamps with an offset or Z (billing.md section 1), parsed by hand: the
 * readings file has tens of millions of them and Date.parse accepts too much (times
 * without an offset, in the process's zone). Fractions are truncated to whole ms.
 */
import { daysFromCivil, daysInMonth } from '../civil-date.ts';
import { FIRST_YEAR, LAST_YEAR, DATE_RANGE_TEXT } from '../date-range.ts';

export { daysFromCivil, daysInMonth } from '../civil-date.ts';

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/** Epoch milliseconds of an RFC 3339 time, or a reason it is not one. */
export function parseRfc3339(text: string): number | string {
  const m = RFC3339.exec(text);
  if (!m) return 'must be an RFC 3339 time with an offset or Z, like 2026-10-01T00:00:00+08:00';
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const d = Number(m[3]);
  const h = Number(m[4]);
  const mi = Number(m[5]);
  const s = Number(m[6]);
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo)) return 'has no such date';
  if (y < FIRST_YEAR || y > LAST_YEAR) return `is outside the supported dates ${DATE_RANGE_TEXT}`;
  if (h > 23 || mi > 59 || s > 59) return 'has no such time of day (leap seconds are not accepted)';
  const ms = m[7] ? Number(m[7].slice(0, 3).padEnd(3, '0')) : 0;
  let offsetMin = 0;
  if (m[9]) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return 'has an offset out of range';
    offsetMin = (oh * 60 + om) * (m[9] === '-' ? -1 : 1);
  }
  return daysFromCivil(y, mo, d) * 86_400_000 + ((h * 60 + mi - offsetMin) * 60 + s) * 1000 + ms;
}
