import { settleRange, storeReadings } from '../bill/run.ts';
import { dedupePayments } from '../bill/payments.ts';
import type { PaymentRow, ReadingRow } from '../readings/csv.ts';
import { occupancyPieces } from '../settle/attribution.ts';
import type { Site } from '../site/model.ts';
import { addDays } from '../tou/local-date.ts';
import type { LocalDate } from '../tou/local-date.ts';
import { PERIODS } from '../tou/schedule.ts';
import { zoneOf } from '../tou/zone.ts';
import { moneyFen } from '../units.ts';
import type { LastInterval } from './balance.ts';
import type { DayEnergy, LiveInputs } from './figures.ts';
import type { MeterEnergy } from './provisional.ts';

/**
 * The inputs of the live figures (section 5) re-derived from raw readings and payments,
 * without the workers: what the balance worker reads from InfluxDB (settled charges, the
 * 15-minute buckets of unsettled days and of the trailing 24 h, each meter's last interval)
 * computed here from the readings known at `now`. The hand-worked live testcases and the
 * pipeline tests hold the workers to it.
 *
 * @param settledThrough the last settled local date (none: nothing settled yet)
 */
export function liveInputsFromReadings(site: Site, readings: Iterable<ReadingRow>, payments: Iterable<PaymentRow>, now: number, settledThrough?: LocalDate): LiveInputs {
  const zone = zoneOf(site.timezone);
  const known = [...readings].filter((r) => r.time <= now);
  const today = zone.dateOf(now);
  const trailingFrom = now - 86_400_000;
  const firstUnsettled = settledThrough ? addDays(settledThrough, 1) : undefined;
  let from = zone.dateOf(trailingFrom);
  if (firstUnsettled && firstUnsettled < from) from = firstUnsettled;
  const meters = site.meters.map((m) => m.id);
  const perDay = new Map<LocalDate, Map<string, number>>(); // date -> "meter|period" -> Wh (unsettled days)
  const trailing = new Map<LocalDate, Map<string, number>>();
  // Energy is summed per occupancy piece (as the workers' loader sums buckets), keyed by its first instant.
  const pieceStarts = occupancyPieces(site, -Infinity, Infinity).map((p) => p[0]);
  const pieceOf = (t: number) => {
    let i = pieceStarts.length - 1;
    while (i > 0 && pieceStarts[i] > t) i--;
    return pieceStarts[i];
  };
  const add = (m: Map<LocalDate, Map<string, number>>, date: LocalDate, key: string, wh: number) => {
    let d = m.get(date);
    if (!d) m.set(date, (d = new Map()));
    d.set(key, (d.get(key) ?? 0) + wh);
  };
  const range = settleRange(site, storeReadings(site, known), from, addDays(today, 1), {
    gridMinutes: 15,
    onSegments: (mi, cal, wh) => {
      for (let k = 0; k < cal.segments; k++) {
        if (wh[k] === 0 || cal.start[k] > now) continue;
        const date = cal.days[cal.day[k]];
        const at = Math.max(pieceOf(cal.start[k]), zone.midnight(date));
        const key = `${meters[mi]}|${PERIODS[cal.period[k]]}|${at}`;
        if (!settledThrough || date > settledThrough) add(perDay, date, key, wh[k]);
        if (cal.start[k] >= trailingFrom) add(trailing, date, key, wh[k]);
      }
    },
  });

  const charged = new Map<string, number>();
  for (const day of range.days) {
    if (!settledThrough || day.date > settledThrough) continue;
    for (const l of day.lines) charged.set(l.account, (charged.get(l.account) ?? 0) + l.fen);
  }
  const paid = new Map<string, number>();
  for (const p of dedupePayments(payments).payments) if (p.time <= now) paid.set(p.account, (paid.get(p.account) ?? 0) + p.fen);
  const closingFen = new Map(site.accounts.map((a) => [a.id, moneyFen(a.openingBalance) + (paid.get(a.id) ?? 0) - (charged.get(a.id) ?? 0)]));

  const days = (m: Map<LocalDate, Map<string, number>>): DayEnergy[] =>
    [...m.entries()]
      .sort((a, b) => (a[0] < b[0] ? -1 : 1))
      .map(([date, e]) => ({
        date,
        energy: [...e.entries()].map(([key, wh]): MeterEnergy => {
          const [meter, period, at] = key.split('|');
          return { meter, period: period as MeterEnergy['period'], wh, at: Number(at) };
        }),
      }));
  const unsettled: DayEnergy[] = [];
  for (let d = firstUnsettled ?? range.days[0]?.date ?? today; d <= today; d = addDays(d, 1)) unsettled.push(days(new Map([[d, perDay.get(d) ?? new Map()]]))[0]);

  // Each meter's last interval: its last two readings at or before now (one per instant, the largest).
  const last = new Map<string, [number, number][]>();
  for (const r of known) {
    const l = last.get(r.meter) ?? [];
    l.push([r.time, r.wh]);
    last.set(r.meter, l);
  }
  const lastInterval = new Map<string, LastInterval>();
  for (const [meter, rows] of last) {
    const byTime = new Map<number, number>();
    for (const [t, wh] of rows) byTime.set(t, Math.max(wh, byTime.get(t) ?? -Infinity));
    const times = [...byTime.keys()].sort((a, b) => a - b);
    if (times.length < 2) continue;
    const t1 = times[times.length - 1];
    const t0 = times[times.length - 2];
    if (t1 <= now - 3_600_000) continue; // not reported within the hour: no current power
    lastInterval.set(meter, { wh: byTime.get(t1)! - byTime.get(t0)!, ms: t1 - t0, at: t1 });
  }
  return { now, closingFen, unsettled, trailing: days(trailing), lastInterval };
}
