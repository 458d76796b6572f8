import { siteIndex } from '../settle/site-index.ts';
import type { Account, Site } from '../site/model.ts';
import { layoutOn } from './calendar.ts';
import type { LocalDate } from './local-date.ts';
import type { Period } from './schedule.ts';
import { zoneOf } from './zone.ts';

/**
 * Time rules at one instant (billing.md sections 1 and 3), for the live figures, the API
 * and the simulator: which local date and minute it is, which TOU period is in force, and
 * an account's price for it. One implementation; apps never re-derive them.
 */

const DAY = 86_400_000;
const MIN = 60_000;

/** Minutes after local midnight on the wall clock (0..1439); a repeated fall-back hour gives its wall minutes twice. */
export function minuteOfDay(timezone: string, utc: number): number {
  const wall = zoneOf(timezone).wall(utc);
  return Math.floor((((wall % DAY) + DAY) % DAY) / MIN);
}

/**
 * The local date an InfluxDB day bucket (`GROUP BY time(1d) tz('<zone>')`) belongs to.
 * Such a bucket starts at the local day's first instant (InfluxDB 1.6 on Santiago, Havana,
 * Beirut and Berlin DST days: workers/day-bucket.test.ts); the date is read 12 h after it,
 * so a server that aligned a DST day's bucket an hour off still names the same date.
 */
export function dateOfDayBucket(timezone: string, bucketStart: number): LocalDate {
  return zoneOf(timezone).dateOf(bucketStart + 12 * 3_600_000);
}

/**
 * The TOU period in force at an instant: the site-wide layout of its local date at its
 * wall-clock minute. Before every tariff's first version the day is one `flat` period
 * (amendment 1).
 */
export function periodAt(site: Site, utc: number): Period {
  const zone = zoneOf(site.timezone);
  const layout = layoutOn(site, zone.dateOf(utc));
  const minute = minuteOfDay(site.timezone, utc);
  for (const s of layout) if (minute >= s.from && minute < s.to) return s.period;
  return layout[layout.length - 1].period;
}

/** An account's price of a period on a local date, micro-CNY/kWh; undefined when its tariff has no such price that day. */
export function priceOn(site: Site, account: Pick<Account, 'tariff'>, date: LocalDate, period: Period): number | undefined {
  return siteIndex(site).price(account.tariff, date, period);
}

/** The period in force at an instant and the account's price for it (undefined before its tariff's first version). */
export function priceAt(site: Site, account: Pick<Account, 'tariff'>, utc: number): { readonly period: Period; readonly micro: number | undefined } {
  const period = periodAt(site, utc);
  return { period, micro: priceOn(site, account, zoneOf(site.timezone).dateOf(utc), period) };
}
