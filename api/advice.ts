import { addDays, Dec, kwhText, moneyText, PERIODS, priceText, siteIndex, zoneOf } from '../core/index.ts';
import type { AccountAdvice, Account, Period, QualityKind, Site } from '../core/index.ts';
import type { InfluxV1 } from '../influx/client.ts';
import { quoteIdent as qi, quoteString as qs, rowsOf } from '../influx/client.ts';
import { F, M, T } from '../influx/schema.ts';
import { int } from './format.ts';

/** The data-quality flag kinds (core/types.ts), as events the workers write. */
export const QUALITY_KINDS: readonly QualityKind[] = ['conflict', 'spike', 'rollover', 'reset', 'gap', 'incomplete', 'negative_loss', 'payment_conflict', 'meter_change', 'estimated'];

const SHIFT_SHARE = '0.2';
const NIGHT: readonly [number, number] = [0, 5];

export interface AdviceOut extends AccountAdvice {
  readonly from: string;
  readonly to: string;
  readonly currency: string;
  readonly days: number;
  readonly shift_share: string;
  readonly tips: readonly string[];
}

/**
 * Load-shift advice for one account in the shape and with the formulas of the core's
 * computeAdvice (core/advice/advise.ts, docs/billing.md section 9), fed from what the
 * workers stored instead of raw readings: own energy per period from the settled `own`
 * charge lines (the core's settlement output, adjustments included) and the night base
 * load from the 15-minute TOU buckets (00:00-05:00 is whole buckets). computeAdvice itself
 * needs every meter's raw readings of the range, too heavy for a request on a large site.
 */
export async function adviceFor(influx: InfluxV1, site: Site, account: Account, from: string, to: string): Promise<AdviceOut> {
  const zone = zoneOf(site.timezone);
  const t0 = zone.midnight(from);
  const t1 = zone.midnight(to);
  // The account's buckets by the occupant they carry (billing.md section 10), whichever meter.
  const meterCond = `${qi(T.account)} = ${qs(account.id)} AND ${qi(T.role)} = 'tenant'`;
  const [ownRows, nightRows] = (
    await influx.queryRaw(
      [
        `SELECT sum(${qi(F.wh)}) AS wh FROM ${qi(M.charge)} WHERE ${qi(T.site)} = ${qs(site.id)} AND ${qi(T.account)} = ${qs(account.id)} AND ${qi(T.kind)} = 'own' AND time >= ${t0}ms AND time < ${t1}ms GROUP BY ${qi(T.period)}`,
        `SELECT sum(${qi(F.wh)}) AS wh FROM ${qi(M.touBucket)} WHERE ${qi(T.site)} = ${qs(site.id)} AND ${meterCond} AND time >= ${t0}ms AND time < ${t1}ms GROUP BY time(1h) fill(none) tz(${qs(site.timezone)})`,
      ].join(';\n'),
    )
  ).map(rowsOf);
  const own = new Map<Period, number>(ownRows.map((r) => [r[T.period] as Period, int(r.wh)]));
  let nightWh = 0;
  let nightMs = 0;
  const days = Math.round((Date.parse(to) - Date.parse(from)) / 86_400_000);
  for (let d = from; d < to; d = addDays(d, 1)) {
    const m = zone.midnight(d);
    const a = zone.firstInstantAtOrAfter(zone.wall(m) + NIGHT[0] * 3_600_000);
    const b = zone.firstInstantAtOrAfter(zone.wall(m) + NIGHT[1] * 3_600_000);
    nightMs += b - a;
  }
  for (const r of nightRows) {
    const hour = Math.floor((((zone.wall(Number(r.time)) % 86_400_000) + 86_400_000) % 86_400_000) / 3_600_000);
    if (hour >= NIGHT[0] && hour < NIGHT[1]) nightWh += int(r.wh);
  }

  // From here the core's formulas (advise.ts), on the same inputs.
  const share = new Dec(SHIFT_SHARE);
  const idx = siteIndex(site);
  const lastDay = addDays(to, -1);
  const prices = PERIODS.map((p) => [p, idx.price(account.tariff, lastDay, p)] as const).filter((x): x is readonly [Period, number] => x[1] !== undefined);
  const cheapest = prices.reduce((best, x) => (x[1] < best[1] ? x : best), prices[0] ?? (['valley', 0] as const));
  let peakWh = 0;
  let saving = new Dec(0);
  for (const [p, micro] of prices) {
    if (p !== 'sharp' && p !== 'peak') continue;
    const wh = own.get(p) ?? 0;
    peakWh += wh;
    if (micro > cheapest[1]) saving = saving.plus(new Dec(wh).mul(share).mul(micro - cheapest[1]).div(1e9));
  }
  const savingText = moneyText(saving.mul(100).toDecimalPlaces(0, Dec.ROUND_HALF_UP).toNumber());
  const nightKw = nightMs > 0 ? new Dec(nightWh).mul(3600).div(nightMs).toFixed(3, Dec.ROUND_HALF_UP) : '0.000';
  const tips: string[] = [];
  if (saving.gt(0)) tips.push(`把尖峰和高峰用电的 ${share.mul(100).toString()}% 移到${cheapest[0] === 'valley' ? '低谷' : cheapest[0]}时段，约可节省 ${savingText} 元。Moving ${share.mul(100).toString()}% of sharp and peak use to ${cheapest[0]} hours would save about ${savingText} ${site.currency}.`);
  if (new Dec(nightKw).gt(0)) tips.push(`夜间（00:00-05:00）平均功率 ${nightKw} kW，请检查无人时仍在运行的设备。At night (00:00-05:00) you draw ${nightKw} kW on average: check what stays on when nobody is there.`);
  return {
    account: account.id,
    from,
    to,
    currency: site.currency,
    days,
    shift_share: share.toString(),
    periods: prices.map(([p, micro]) => {
      const wh = own.get(p) ?? 0;
      return { period: p, kwh: kwhText(wh), kwh_per_day: new Dec(wh).div(1000).div(Math.max(days, 1)).toFixed(3, Dec.ROUND_HALF_UP), price: priceText(micro) };
    }),
    peak_kwh: kwhText(peakWh),
    shift_kwh: new Dec(peakWh).mul(share).div(1000).toFixed(3, Dec.ROUND_HALF_UP),
    shift_to: cheapest[0],
    saving: savingText,
    night_base_kw: nightKw,
    tips,
  };
}
