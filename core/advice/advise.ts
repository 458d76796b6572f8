import { settleRange } from '../bill/run.ts';
import type { ReadingSource } from '../bill/run.ts';
import { Dec } from '../decimal.ts';
import { BillingInputError } from '../errors.ts';
import { occupantAt } from '../tenancy/occupancy.ts';
import { siteIndex } from '../settle/site-index.ts';
import type { Site } from '../site/model.ts';
import { addDays } from '../tou/local-date.ts';
import type { LocalDate } from '../tou/local-date.ts';
import { PERIODS } from '../tou/schedule.ts';
import type { Period } from '../tou/schedule.ts';
import { zoneOf } from '../tou/zone.ts';
import { kwhText, moneyText, priceText } from '../units.ts';

/**
 * Load-shift advice (issue 3, docs/billing.md section 9): per account, own energy by TOU
 * period over [from, to), a typical day (kWh per day by period), the saving if a share of
 * the sharp and peak energy moved to the cheapest period at the account's own prices, and
 * the night base load (mean power between local 00:00 and 05:00, what runs when nobody
 * is there). Plain numbers a tenant can act on.
 */
export interface AdviceOptions {
  /** Share of sharp + peak energy assumed movable, decimal text in [0, 1]. @defaultValue "0.2" */
  readonly shiftShare?: string;
  /** Night window for the base load, local hours [from, to). @defaultValue [0, 5] */
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
  readonly days: number;
  readonly shift_share: string;
  readonly accounts: readonly AccountAdvice[];
}

export function computeAdvice(site: Site, readings: ReadingSource, from: LocalDate, to: LocalDate, opts: AdviceOptions = {}): Advice {
  const share = new Dec(opts.shiftShare ?? '0.2');
  if (share.isNaN() || share.lt(0) || share.gt(1)) throw new BillingInputError(`must be a decimal between 0 and 1, got ${opts.shiftShare}`, { field: 'shift-share' });
  const [nightA, nightB] = opts.nightHours ?? [0, 5];
  const idx = siteIndex(site);
  const zone = zoneOf(site.timezone);
  const nightWh = new Array<number>(idx.accountIds.length).fill(0);
  let nightMs = -1;
  let night = new Uint8Array(0);
  const settled = settleRange(site, readings, from, to, {
    gridMinutes: 60,
    onSegments: (mi, cal, wh) => {
      if (nightMs < 0) {
        // Night segments of the range, once: the calendar is the same for every meter.
        const fromMs = zone.midnight(from);
        night = new Uint8Array(cal.segments);
        nightMs = 0;
        for (let k = 0; k < cal.segments; k++) {
          const hour = Math.floor((((zone.wall(cal.start[k]) % 86_400_000) + 86_400_000) % 86_400_000) / 3_600_000);
          if (cal.start[k] >= fromMs && hour >= nightA && hour < nightB) {
            night[k] = 1;
            nightMs += cal.start[k + 1] - cal.start[k];
          }
        }
      }
      const meter = site.meters[mi];
      if (meter.role !== 'tenant') return;
      for (let k = 0; k < cal.segments; k++) {
        if (night[k] !== 1 || wh[k] === 0) continue;
        // The occupant of that piece (billing.md section 10), the landlord when vacant.
        const a = idx.accountPos.get(occupantAt(site, meter, cal.start[k]).account);
        if (a !== undefined) nightWh[a] += wh[k];
      }
    },
  });
  const days = settled.days.length - settled.fromDay;
  const own = idx.accountIds.map(() => new Map<Period, number>());
  for (const day of settled.days.slice(settled.fromDay)) {
    for (const l of day.lines) {
      if (l.kind !== 'own') continue;
      const m = own[idx.accountPos.get(l.account)!];
      m.set(l.period, (m.get(l.period) ?? 0) + l.wh);
    }
  }
  const lastDay = addDays(to, -1);
  const accounts = idx.accountIds.map((id, a): AccountAdvice => {
    const tariff = idx.tariffOf[a];
    const prices = PERIODS.map((p) => [p, idx.price(tariff, lastDay, p)] as const).filter((x): x is readonly [Period, number] => x[1] !== undefined);
    const cheapest = prices.reduce((best, x) => (x[1] < best[1] ? x : best), prices[0] ?? (['valley', 0] as const));
    let peakWh = 0;
    let saving = new Dec(0);
    for (const [p, micro] of prices) {
      if (p !== 'sharp' && p !== 'peak') continue;
      const wh = own[a].get(p) ?? 0;
      peakWh += wh;
      if (micro > cheapest[1]) saving = saving.plus(new Dec(wh).mul(share).mul(micro - cheapest[1]).div(1e9));
    }
    const periods = prices.map(([p, micro]) => {
      const wh = own[a].get(p) ?? 0;
      return { period: p, kwh: kwhText(wh), kwh_per_day: new Dec(wh).div(1000).div(Math.max(days, 1)).toFixed(3, Dec.ROUND_HALF_UP), price: priceText(micro) };
    });
    return {
      account: id,
      periods,
      peak_kwh: kwhText(peakWh),
      shift_kwh: new Dec(peakWh).mul(share).div(1000).toFixed(3, Dec.ROUND_HALF_UP),
      shift_to: cheapest[0],
      saving: moneyText(saving.mul(100).toDecimalPlaces(0, Dec.ROUND_HALF_UP).toNumber()),
      // Wh over ms -> kW: wh * 3600 / ms.
      night_base_kw: nightMs > 0 ? new Dec(nightWh[a]).mul(3600).div(nightMs).toFixed(3, Dec.ROUND_HALF_UP) : '0.000',
    };
  });
  return { site: site.id, from, to, currency: site.currency, days, shift_share: share.toString(), accounts };
}
