import { settleRange } from '../bill/run.ts';
import type { ReadingSource } from '../bill/run.ts';
import { Dec } from '../decimal.ts';
import { BillingInputError } from '../errors.ts';
import { occupantAt } from '../tenancy/occupancy.ts';
import { siteIndex } from '../settle/site-index.ts';
import type { Account, Site } from '../site/model.ts';
import { minuteOfDay } from '../tou/instant.ts';
import { addDays, epochDay } from '../tou/local-date.ts';
import type { LocalDate } from '../tou/local-date.ts';
import { PERIODS } from '../tou/schedule.ts';
import type { Period } from '../tou/schedule.ts';
import { zoneOf } from '../tou/zone.ts';
import { kwhText, moneyText, priceText } from '../units.ts';

/**
 * Load-shift advice (issue 3, docs/billing.md section 9): per account, own energy by TOU
 * period over [from, to), a typical day (kWh per day by period over the days that have
 * data), the saving if a share of the sharp and peak energy moved to the cheapest period
 * at the account's own prices, and the night base load (mean power between local 00:00
 * and 05:00, what runs when nobody is there). The formulas live once, in adviceFromTotals:
 * `submeter advise` feeds it from raw readings, the API from the workers' buckets.
 */

/** Share of sharp + peak energy assumed movable when none is given (section 9). */
export const DEFAULT_SHIFT_SHARE = '0.2';
/** Local hours [from, to) of the night base load (section 9). */
export const NIGHT_HOURS: readonly [number, number] = [0, 5];

export interface AdviceOptions {
  /** Share of sharp + peak energy assumed movable, decimal text in [0, 1]. @defaultValue DEFAULT_SHIFT_SHARE */
  readonly shiftShare?: string;
  /** Night window for the base load, local hours [from, to). @defaultValue NIGHT_HOURS */
  readonly nightHours?: readonly [number, number];
}

export interface AccountAdvice {
  readonly account: string;
  readonly periods: readonly { readonly period: Period; readonly kwh: string; readonly kwh_per_day: string; readonly price: string }[];
  readonly peak_kwh: string;
  readonly shift_kwh: string;
  readonly shift_to: Period;
  readonly saving: string;
  readonly night_base_kw: string;
}

export interface Advice {
  readonly site: string;
  readonly from: LocalDate;
  readonly to: LocalDate;
  readonly currency: string;
  /** Days of the range that have data (the site recorded energy on them): what "per day" divides by. */
  readonly days: number;
  /** Days in [from, to). */
  readonly days_in_range: number;
  readonly shift_share: string;
  readonly accounts: readonly AccountAdvice[];
}

/** An account's totals over the days of a range that have data: what the advice is computed from. */
export interface AdviceTotals {
  /** Own energy per period, Wh. */
  readonly ownWh: ReadonlyMap<Period, number>;
  /** Own energy in the night hours (isNight) of those days, Wh. */
  readonly nightWh: number;
  /** Length of those night hours (nightMs summed over the days), ms. */
  readonly nightMs: number;
  /** Days that have data. */
  readonly days: number;
}

/** The shift share as a decimal in [0, 1] (default DEFAULT_SHIFT_SHARE), or a BillingInputError naming it. */
export function shiftShareOf(text: string | undefined): Dec {
  const share = new Dec(text ?? DEFAULT_SHIFT_SHARE);
  if (share.isNaN() || share.lt(0) || share.gt(1)) throw new BillingInputError(`must be a decimal between 0 and 1, got ${text}`, { field: 'shift-share' });
  return share;
}

/** True when an instant's local wall-clock hour is in the night window [from, to). */
export function isNight(timezone: string, utc: number, hours: readonly [number, number] = NIGHT_HOURS): boolean {
  const m = minuteOfDay(timezone, utc);
  return m >= hours[0] * 60 && m < hours[1] * 60;
}

/** Length (ms) of a local date's night window: from its first instant at wall hour `from` to its first at hour `to` (a skipped hour is not counted, a repeated one twice). */
export function nightMs(timezone: string, date: LocalDate, hours: readonly [number, number] = NIGHT_HOURS): number {
  const zone = zoneOf(timezone);
  const wall0 = epochDay(date)! * 86_400_000;
  return zone.firstInstantAtOrAfter(wall0 + hours[1] * 3_600_000) - zone.firstInstantAtOrAfter(wall0 + hours[0] * 3_600_000);
}

/** Section 9 for one account from its totals, at its prices on `lastDay` (the range's last day). */
export function adviceFromTotals(site: Site, account: Pick<Account, 'id' | 'tariff'>, lastDay: LocalDate, totals: AdviceTotals, share: Dec): AccountAdvice {
  const idx = siteIndex(site);
  const prices = PERIODS.map((p) => [p, idx.price(account.tariff, lastDay, p)] as const).filter((x): x is readonly [Period, number] => x[1] !== undefined);
  const cheapest = prices.reduce((best, x) => (x[1] < best[1] ? x : best), prices[0] ?? (['valley', 0] as const));
  let peakWh = 0;
  let saving = new Dec(0);
  for (const [p, micro] of prices) {
    if (p !== 'sharp' && p !== 'peak') continue;
    const wh = totals.ownWh.get(p) ?? 0;
    peakWh += wh;
    if (micro > cheapest[1]) saving = saving.plus(new Dec(wh).mul(share).mul(micro - cheapest[1]).div(1e9));
  }
  const periods = prices.map(([p, micro]) => {
    const wh = totals.ownWh.get(p) ?? 0;
    const perDay = totals.days > 0 ? new Dec(wh).div(1000).div(totals.days) : new Dec(0);
    return { period: p, kwh: kwhText(wh), kwh_per_day: perDay.toFixed(3, Dec.ROUND_HALF_UP), price: priceText(micro) };
  });
  return {
    account: account.id,
    periods,
    peak_kwh: kwhText(peakWh),
    shift_kwh: new Dec(peakWh).mul(share).div(1000).toFixed(3, Dec.ROUND_HALF_UP),
    shift_to: cheapest[0],
    saving: moneyText(saving.mul(100).toDecimalPlaces(0, Dec.ROUND_HALF_UP).toNumber()),
    // Wh over ms -> kW: wh * 3600 / ms.
    night_base_kw: totals.nightMs > 0 ? new Dec(totals.nightWh).mul(3600).div(totals.nightMs).toFixed(3, Dec.ROUND_HALF_UP) : '0.000',
  };
}

export function computeAdvice(site: Site, readings: ReadingSource, from: LocalDate, to: LocalDate, opts: AdviceOptions = {}): Advice {
  const share = shiftShareOf(opts.shiftShare);
  const hours = opts.nightHours ?? NIGHT_HOURS;
  const idx = siteIndex(site);
  const zone = zoneOf(site.timezone);
  const fromMs = zone.midnight(from);
  const nAcc = idx.accountIds.length;
  // Night energy per account and day (a day counts only if the site has data on it).
  const nightByDay = idx.accountIds.map(() => new Map<number, number>());
  let night: Uint8Array | undefined;
  let dayOf: Int32Array | undefined;
  const hasData = new Set<number>();
  const settled = settleRange(site, readings, from, to, {
    // Quarter hours, like the workers' buckets the API reads: the night test is on each piece's start.
    gridMinutes: 15,
    onSegments: (mi, cal, wh) => {
      if (!night) {
        // Night segments of the range, once: the calendar is the same for every meter.
        night = new Uint8Array(cal.segments);
        dayOf = cal.day;
        for (let k = 0; k < cal.segments; k++) if (cal.start[k] >= fromMs && isNight(site.timezone, cal.start[k], hours)) night[k] = 1;
      }
      for (let k = 0; k < cal.segments; k++) if (wh[k] !== 0 && cal.start[k] >= fromMs) hasData.add(cal.day[k]);
      const meter = site.meters[mi];
      if (meter.role !== 'tenant') return;
      for (let k = 0; k < cal.segments; k++) {
        if (night[k] !== 1 || wh[k] === 0) continue;
        // The occupant of that piece (billing.md section 11), the landlord when vacant.
        const a = idx.accountPos.get(occupantAt(site, meter, cal.start[k]).account);
        if (a === undefined) continue;
        const m = nightByDay[a];
        m.set(dayOf![k], (m.get(dayOf![k]) ?? 0) + wh[k]);
      }
    },
  });
  const calDays = settled.days.map((d) => d.date);
  const dataDays = [...hasData].sort((a, b) => a - b);
  const nightTotal = dataDays.reduce((s, d) => s + nightMs(site.timezone, calDays[d], hours), 0);
  const own = idx.accountIds.map(() => new Map<Period, number>());
  for (const day of settled.days.slice(settled.fromDay)) {
    for (const l of day.lines) {
      if (l.kind !== 'own') continue;
      const m = own[idx.accountPos.get(l.account)!];
      m.set(l.period, (m.get(l.period) ?? 0) + l.wh);
    }
  }
  const lastDay = addDays(to, -1);
  const byId = new Map(site.accounts.map((a) => [a.id, a]));
  const accounts: AccountAdvice[] = [];
  for (let a = 0; a < nAcc; a++) {
    let nightWh = 0;
    for (const d of dataDays) nightWh += nightByDay[a].get(d) ?? 0;
    accounts.push(adviceFromTotals(site, byId.get(idx.accountIds[a])!, lastDay, { ownWh: own[a], nightWh, nightMs: nightTotal, days: dataDays.length }, share));
  }
  return { site: site.id, from, to, currency: site.currency, days: dataDays.length, days_in_range: settled.days.length - settled.fromDay, shift_share: share.toString(), accounts };
}
