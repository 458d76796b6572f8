import { Dec } from '../core/decimal.ts';
import type { Account, Site } from '../core/site/index.ts';
import { PERIODS } from '../core/tou/schedule.ts';
import type { Period } from '../core/tou/schedule.ts';
import type { QualityKind } from '../core/types.ts';
import type { ReadModel } from './data/read-model.ts';
import { priceAt } from './data/read-model.ts';
import { parseFixed } from '../core/units.ts';
import { kwhText } from './format.ts';

/** The data-quality flag kinds (core/types.ts), as events the workers write. */
export const QUALITY_KINDS: readonly QualityKind[] = ['conflict', 'spike', 'rollover', 'reset', 'gap', 'incomplete', 'negative_loss', 'payment_conflict'];

/** Share of sharp and peak energy assumed movable to valley (a deliberately modest default). */
const SHIFT_SHARE = '0.2';

/**
 * Load-shift advice from the account's 15-minute TOU buckets: energy and cost per period,
 * what moving a share of sharp and peak use to valley would save at the account's own
 * prices, and the night base load. Interim: the billing core's advice (issue 3) replaces
 * this once it lands; the numbers here are estimates, never charges.
 */
export async function adviceFor(read: ReadModel, site: Site, account: Account, from: string, to: string) {
  const hourly = await read.usage(site, account, from, to, '1h');
  const whBy = new Map<Period, number>();
  let nightWh = 0;
  const nightHours = new Set<string>();
  for (const p of hourly) {
    const wh = parseFixed(p.kwh, 3) ?? 0;
    whBy.set(p.period, (whBy.get(p.period) ?? 0) + wh);
    const hour = Number(p.time.slice(11, 13));
    if (hour < 5) {
      nightWh += wh;
      nightHours.add(p.time.slice(0, 13));
    }
  }
  const days = Math.max(1, Math.round((Date.parse(to) - Date.parse(from)) / 86_400_000));
  const periods = PERIODS.filter((p) => whBy.has(p)).map((p) => {
    const wh = whBy.get(p)!;
    const price = priceAt(site, account, from, undefined, p)?.price ?? '0';
    return {
      period: p,
      kwh: kwhText(wh),
      price: new Dec(price).toFixed(6),
      cost: new Dec(wh).div(1000).times(price).toFixed(2, Dec.ROUND_HALF_UP),
      kwh_per_day: new Dec(wh).div(1000).div(days).toFixed(3, Dec.ROUND_HALF_UP),
    };
  });
  const valley = priceAt(site, account, from, undefined, 'valley')?.price;
  let shiftWh = new Dec(0);
  let saving = new Dec(0);
  for (const p of ['sharp', 'peak'] as const) {
    const price = priceAt(site, account, from, undefined, p)?.price;
    const wh = whBy.get(p) ?? 0;
    if (!price || !valley || wh === 0) continue;
    const moved = new Dec(wh).times(SHIFT_SHARE);
    shiftWh = shiftWh.plus(moved);
    saving = saving.plus(moved.div(1000).times(new Dec(price).minus(valley)));
  }
  const nightKw = nightHours.size ? new Dec(nightWh).div(1000).div(nightHours.size).toFixed(3, Dec.ROUND_HALF_UP) : null;
  const tips: string[] = [];
  if (saving.gt(0)) tips.push(`Moving ${new Dec(SHIFT_SHARE).times(100).toString()}% of sharp and peak use to valley hours would save about ${saving.toFixed(2, Dec.ROUND_HALF_UP)} ${site.currency} over this range.`);
  if (nightKw && new Dec(nightKw).gt(0)) tips.push(`At night (00:00-05:00) you draw ${nightKw} kW on average: check what stays on when the shop is closed.`);
  return {
    account: account.id,
    from,
    to,
    days,
    shift_share: SHIFT_SHARE,
    periods,
    shift: { kwh: shiftWh.div(1000).toFixed(3, Dec.ROUND_HALF_UP), saving: saving.toFixed(2, Dec.ROUND_HALF_UP) },
    night_base_kw: nightKw,
    tips,
  };
}
