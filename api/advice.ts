import { addDays, adviceFromTotals, dateOfDayBucket, datesBetween, Dec, isNight, nightMs, QUALITY_KINDS, shiftShareOf, zoneOf } from '../core/index.ts';
import type { Account, AccountAdvice, Period, Site } from '../core/index.ts';
import type { InfluxV1 } from '../influx/client.ts';
import { quoteIdent as qi, quoteString as qs, rowsOf } from '../influx/client.ts';
import { F, M, T } from '../influx/schema.ts';
import { int } from './format.ts';

/** The data-quality flag kinds (core/types.ts), as events the workers write. */
export { QUALITY_KINDS };

export interface AdviceOut extends AccountAdvice {
  readonly from: string;
  readonly to: string;
  readonly currency: string;
  /** Days of the range with data: what "per day" divides by (billing.md amendment 10). */
  readonly days: number;
  readonly days_in_range: number;
  readonly shift_share: string;
  readonly tips: readonly string[];
}

/**
 * Load-shift advice for one account: the core's adviceFromTotals (billing.md section 9, the
 * formulas `submeter advise` uses) fed from what the workers stored instead of raw readings:
 * own energy per period from the settled `own` charge lines (adjustments included) plus the
 * buckets of days not settled yet, the days with data from the settled cells and those
 * buckets, and the night base load from the 15-minute buckets (each bucket's start is night
 * or not by the core's isNight).
 */
/** The site's last settled day (its last `site_day` point), as adviceFor reads it. */
export async function settledThroughOf(influx: InfluxV1, site: Site): Promise<string | undefined> {
  const [rows] = (await influx.queryRaw(`SELECT last(${qi(F.masterWh)}) FROM ${qi(M.siteDay)} WHERE ${qi(T.site)} = ${qs(site.id)}`)).map(rowsOf);
  return rows[0] ? zoneOf(site.timezone).dateOf(Number(rows[0].time)) : undefined;
}

/**
 * True when advice over [from, to) reads buckets of days not settled yet: then its days with
 * data come from the site's buckets (every meter's), else only from the settled days and the
 * account's own buckets (api/app.ts keys the stored advice by this).
 */
export function adviceReadsOpenDays(to: string, settledThrough: string | undefined): boolean {
  return settledThrough === undefined || to > addDays(settledThrough, 1);
}

export async function adviceFor(influx: InfluxV1, site: Site, account: Account, from: string, to: string): Promise<AdviceOut> {
  const tz = site.timezone;
  const zone = zoneOf(tz);
  const t0 = zone.midnight(from);
  const t1 = zone.midnight(to);
  const sq = qs(site.id);
  // The account's buckets by the occupant they carry (billing.md section 11), whichever meter.
  const meterCond = `${qi(T.account)} = ${qs(account.id)} AND ${qi(T.role)} = 'tenant'`;
  const [settledRows, lastSettled] = (
    await influx.queryRaw(
      [
        `SELECT sum(${qi(F.masterWh)}) AS m, sum(${qi(F.tenantWh)}) AS t, sum(${qi(F.commonWh)}) AS c FROM ${qi(M.siteDay)} WHERE ${qi(T.site)} = ${sq} AND time >= ${t0}ms AND time < ${t1}ms GROUP BY time(1d) fill(none) tz(${qs(tz)})`,
        `SELECT last(${qi(F.masterWh)}) FROM ${qi(M.siteDay)} WHERE ${qi(T.site)} = ${sq}`,
      ].join(';\n'),
    )
  ).map(rowsOf);
  const settledThrough = lastSettled[0] ? zone.dateOf(Number(lastSettled[0].time)) : undefined;
  // Days not settled yet (normally today at most): their own energy and data come from buckets.
  const u0 = Math.max(t0, settledThrough ? zone.midnight(addDays(settledThrough, 1)) : t0);
  const [ownRows, openRows, openDays, quarterRows] = (
    await influx.queryRaw(
      [
        `SELECT sum(${qi(F.wh)}) AS wh FROM ${qi(M.charge)} WHERE ${qi(T.site)} = ${sq} AND ${qi(T.account)} = ${qs(account.id)} AND ${qi(T.kind)} = 'own' AND time >= ${t0}ms AND time < ${t1}ms GROUP BY ${qi(T.period)}`,
        `SELECT sum(${qi(F.wh)}) AS wh FROM ${qi(M.touBucket)} WHERE ${qi(T.site)} = ${sq} AND ${meterCond} AND time >= ${u0}ms AND time < ${t1}ms GROUP BY ${qi(T.period)}`,
        `SELECT sum(${qi(F.wh)}) AS wh FROM ${qi(M.touBucket)} WHERE ${qi(T.site)} = ${sq} AND time >= ${u0}ms AND time < ${t1}ms GROUP BY time(1d) fill(none) tz(${qs(tz)})`,
        `SELECT ${qi(F.wh)} FROM ${qi(M.touBucket)} WHERE ${qi(T.site)} = ${sq} AND ${meterCond} AND time >= ${t0}ms AND time < ${t1}ms`,
      ].join(';\n'),
    )
  ).map(rowsOf);
  const ownWh = new Map<Period, number>();
  for (const r of [...ownRows, ...openRows]) ownWh.set(r[T.period] as Period, (ownWh.get(r[T.period] as Period) ?? 0) + int(r.wh));
  const dataDays = new Set<string>();
  for (const r of settledRows) if (int(r.m) + int(r.t) + int(r.c) > 0) dataDays.add(dateOfDayBucket(tz, Number(r.time)));
  for (const r of openDays) if (int(r.wh) > 0) dataDays.add(dateOfDayBucket(tz, Number(r.time)));
  let nightWh = 0;
  for (const r of quarterRows) if (isNight(tz, Number(r.time)) && dataDays.has(zone.dateOf(Number(r.time)))) nightWh += int(r[F.wh]);
  const night = [...dataDays].reduce((s, d) => s + nightMs(tz, d), 0);

  const share = shiftShareOf(undefined);
  const advice = adviceFromTotals(site, account, addDays(to, -1), { ownWh, nightWh, nightMs: night, days: dataDays.size }, share);
  const daysInRange = datesBetween(from, to).length;
  const pct = share.mul(100).toString();
  const tips: string[] = [];
  if (new Dec(advice.saving).gt(0)) {
    tips.push(`把尖峰和高峰用电的 ${pct}% 移到${advice.shift_to === 'valley' ? '低谷' : advice.shift_to}时段，约可节省 ${advice.saving} 元。Moving ${pct}% of sharp and peak use to ${advice.shift_to} hours would save about ${advice.saving} ${site.currency}.`);
  }
  if (new Dec(advice.night_base_kw).gt(0)) {
    tips.push(`夜间（00:00-05:00）平均功率 ${advice.night_base_kw} kW，请检查无人时仍在运行的设备。At night (00:00-05:00) you draw ${advice.night_base_kw} kW on average: check what stays on when nobody is there.`);
  }
  if (dataDays.size < daysInRange) tips.push(`以上按有数据的 ${dataDays.size} 天计算（共 ${daysInRange} 天）。Worked out over the ${dataDays.size} of ${daysInRange} days that have data.`);
  return { ...advice, account: account.id, from, to, currency: site.currency, days: dataDays.size, days_in_range: daysInRange, shift_share: share.toString(), tips };
}
