import { settleRange, storeReadings } from '../bill/run.ts';
import { bucketCalendars, rollupStep } from '../counters/rollup-step.ts';
import type { CounterState } from '../counters/resume.ts';
import type { MeterEnergy } from '../live/provisional.ts';
import type { ReadingRow } from '../readings/csv.ts';
import { ReadingStore } from '../readings/store.ts';
import type { Site } from '../site/model.ts';
import type { MeterDayFacts } from '../statement/meter-facts.ts';
import { addDays } from '../tou/local-date.ts';
import type { LocalDate } from '../tou/local-date.ts';
import type { Period } from '../tou/schedule.ts';
import { zoneOf } from '../tou/zone.ts';
import type { DaySettlement, QualityFlag } from '../types.ts';
import { byteOrder } from '../units.ts';
import { occupancyPieces } from './attribution.ts';
import { bucketSettlementProblem, COUNTER_FLAG_KINDS, moveMarks, settleDayMixed } from './bucket-day.ts';
import type { BucketMeterDay, MixedDay } from './bucket-day.ts';
import { meterDayFacts } from '../statement/meter-facts.ts';

/**
 * Test support for the bucket-settlement proof (issue 15), pure: replays a site's readings
 * through the workers' rollup (the core's rollupStep, readings arriving in time order in
 * deliveries of a few minutes), and settles each day the two ways the workers can, once
 * its grace has passed (with the readings delivered by then) and again at the end (with
 * all of them):
 *
 * - `raw`: settleRange over the raw window, exactly as workers/settlement.ts loads it before
 *   issue 15 (lookback and lookahead, plus each meter's last reading before the window and
 *   first after it);
 * - `mixed`: settleDayMixed, each meter from its buckets when bucketSettlementProblem says
 *   the buckets are exact (evidence: the rollup's flags and the readings delivered), else
 *   from its raw window.
 */

export interface ProofOptions {
  /** @defaultValue 24 h (the workers' settleLookbackMs) */
  readonly lookbackMs?: number;
  /** @defaultValue 6 h (settleLookaheadMs) */
  readonly lookaheadMs?: number;
  /** Settlement grace after midnight. @defaultValue 15 min */
  readonly graceMs?: number;
  /** Minutes between deliveries, cycled (the rollup runs after each). @defaultValue [7, 1, 31, 3] */
  readonly deliveryMinutes?: readonly number[];
  /** Settle every day whose grace has passed (and again at the end). */
  readonly days: readonly LocalDate[];
  /** Settle every meter from its buckets, evidence or not (to show where that would be wrong). */
  readonly forceBuckets?: boolean;
}

export interface RawDay {
  readonly settlement: DaySettlement;
  readonly flags: readonly QualityFlag[];
  readonly facts: readonly MeterDayFacts[];
}

export interface DayProof {
  readonly day: LocalDate;
  /** 'grace': settled once its grace passed, with the readings delivered then; 'end': with all readings. */
  readonly when: 'grace' | 'end';
  readonly bucketMeters: readonly string[];
  readonly rawMeters: readonly { readonly meter: string; readonly why: string }[];
  readonly mixed: MixedDay;
  readonly raw: RawDay;
}

const EDGE_MS = 400 * 86_400_000; // loadWindow's search for the readings around a window

export function proveBucketSettlement(site: Site, rows: readonly ReadingRow[], opts: ProofOptions): DayProof[] {
  const zone = zoneOf(site.timezone);
  const LB = opts.lookbackMs ?? 24 * 3_600_000;
  const LA = opts.lookaheadMs ?? 6 * 3_600_000;
  const grace = opts.graceMs ?? 15 * 60_000;
  const steps = opts.deliveryMinutes ?? [7, 1, 31, 3];
  const sorted = [...rows].sort((x, y) => x.time - y.time || byteOrder(x.meter, y.meter) || x.wh - y.wh);
  const calendar = bucketCalendars(site);
  const meters = new Map(site.meters.map((m) => [m.id, m]));
  const state = new Map<string, { counter: CounterState }>();
  // Per meter: bucket key -> bucket (a later run overwrites a bucket, as the InfluxDB point is overwritten).
  const buckets = new Map<string, Map<string, { period: Period; start: number; wh: number }>>();
  const flags = new Map<string, QualityFlag>();
  const byMeter = new Map<string, ReadingRow[]>();
  const out: DayProof[] = [];
  let next = 0;
  const pending = [...opts.days].sort();

  const deliver = (t: number) => {
    const fresh = new Map<string, ReadingRow[]>();
    while (next < sorted.length && sorted[next].time <= t) {
      const r = sorted[next++];
      const list = byMeter.get(r.meter) ?? [];
      list.push(r);
      byMeter.set(r.meter, list);
      fresh.set(r.meter, [...(fresh.get(r.meter) ?? []), r]);
    }
    for (const [id, list] of fresh) {
      const meter = meters.get(id)!;
      const st = state.get(id) ?? { counter: { accepted: [], pending: [] } };
      // With the tariff registers read with the readings (billing.md section 2 rule 5), as the
      // workers' rollup selects them (workers/reading-series.ts).
      const one = new ReadingStore(1);
      for (const r of list) {
        one.add(0, r.time, r.wh);
        const tw = r.tariffWh;
        if (tw) one.addTariff(0, r.time, r.wh, tw[1] ?? NaN, tw[2] ?? NaN, tw[3] ?? NaN, tw[4] ?? NaN);
      }
      const series = one.series(0);
      const step = rollupStep(site, meter, st.counter, series, calendar);
      const mine = buckets.get(id) ?? new Map();
      buckets.set(id, mine);
      for (const b of step.buckets) mine.set(`${b.period}|${b.start}`, { period: b.period, start: b.start, wh: b.wh });
      for (const f of step.flags) flags.set(`${f.kind}|${f.meter}|${f.time}|${f.detail}`, f);
      state.set(id, { counter: step.next });
    }
  };

  const settle = (day: LocalDate, when: 'grace' | 'end') => {
    const a = zone.midnight(day);
    const b = zone.midnight(addDays(day, 1));
    const windowStart = a - LB;
    // The raw window, as workers/context.ts loadWindow reads it.
    const windowRows = (ids: ReadonlySet<string>) => {
      const outRows: ReadingRow[] = [];
      for (const [id, list] of byMeter) {
        if (!ids.has(id)) continue;
        const i0 = lowerBound(list, windowStart);
        const i1 = lowerBound(list, b + LA);
        // last() / first() in InfluxDB: one point (one per instant in a series there).
        if (i0 > 0 && list[i0 - 1].time >= windowStart - EDGE_MS) outRows.push(list[i0 - 1]);
        outRows.push(...list.slice(i0, i1));
        if (i1 < list.length && list[i1].time < b + LA + EDGE_MS) outRows.push(list[i1]);
      }
      return outRows;
    };
    const all = new Set(site.meters.map((m) => m.id));
    const rawFacts: MeterDayFacts[] = [];
    const range = settleRange(site, storeReadings(site, windowRows(all)), day, addDays(day, 1), {
      gridMinutes: 15,
      historyFromMs: windowStart,
      onSegments: (mi, cal, seg, acc) => rawFacts.push(meterDayFacts(site.meters[mi], acc, cal, seg, cal.days.indexOf(day), moveMarks(site, site.meters[mi], a, b))),
    });
    const raw: RawDay = { settlement: range.days[range.fromDay], flags: range.flags, facts: rawFacts };

    const fromBuckets: BucketMeterDay[] = [];
    const rawMeters: { meter: string; why: string }[] = [];
    const pieceStarts = occupancyPieces(site, a, b).map((p) => p[0]);
    const pieceOf = (t: number) => {
      let i = pieceStarts.length - 1;
      while (i > 0 && pieceStarts[i] > t) i--;
      return pieceStarts[i];
    };
    for (const meter of site.meters) {
      const list = byMeter.get(meter.id) ?? [];
      // Around each bound: the last reading before it and the first at or after it (largest value at an instant, as InfluxDB keeps one).
      // The largest value at an instant (InfluxDB keeps one point per instant; rule 1 keeps the largest).
      const at = (i: number) => {
        if (i < 0 || i >= list.length) return undefined;
        let wh = list[i].wh;
        for (let j = i - 1; j >= 0 && list[j].time === list[i].time; j--) wh = Math.max(wh, list[j].wh);
        for (let j = i + 1; j < list.length && list[j].time === list[i].time; j++) wh = Math.max(wh, list[j].wh);
        return { time: list[i].time, wh };
      };
      const lastBefore = (t: number) => at(lowerBound(list, t) - 1);
      const firstFrom = (t: number) => at(lowerBound(list, t));
      const edgeMap = new Map<number, number>();
      for (const r of [lastBefore(a), firstFrom(a), lastBefore(b), firstFrom(b)]) if (r) edgeMap.set(r.time, r.wh);
      const edges = [...edgeMap.entries()].sort((x, y) => x[0] - y[0]) as [number, number][];
      const w0 = lowerBound(list, windowStart);
      const before = w0 > 0 && list[w0 - 1].time >= windowStart - EDGE_MS ? list[w0 - 1] : undefined;
      const windowFirst = before?.time ?? (w0 < list.length && list[w0].time < b + LA + EDGE_MS ? list[w0].time : undefined);
      const i1 = lowerBound(list, b + LA);
      const windowLast = i1 < list.length && list[i1].time < b + LA + EDGE_MS ? list[i1].time : Infinity;
      const evidence = {
        caughtUp: true,
        ...(windowFirst !== undefined ? { windowFirst } : {}),
        ...(list.length ? { rollupFrom: list[0].time } : {}),
        flags: windowFirst === undefined ? 0 : [...flags.values()].filter((f) => f.meter === meter.id && COUNTER_FLAG_KINDS.includes(f.kind) && f.time >= windowFirst && f.time <= windowLast).length,
        edges,
      };
      const why = opts.forceBuckets ? undefined : bucketSettlementProblem(site, meter, day, evidence);
      if (why) {
        rawMeters.push({ meter: meter.id, why });
        continue;
      }
      const sums = new Map<string, MeterEnergy>();
      for (const bk of buckets.get(meter.id)?.values() ?? []) {
        if (bk.start < a || bk.start >= b) continue;
        const at = pieceOf(bk.start);
        const key = `${bk.period}|${at}`;
        sums.set(key, { meter: meter.id, period: bk.period, at, wh: (sums.get(key)?.wh ?? 0) + bk.wh });
      }
      fromBuckets.push({ meter: meter.id, energy: [...sums.values()], edges });
    }
    const rawIds = new Set(rawMeters.map((m) => m.meter));
    const mixed = settleDayMixed(site, day, { fromBuckets, raw: storeReadings(site, windowRows(rawIds)), historyFromMs: windowStart, gridMinutes: 15 });
    out.push({ day, when, bucketMeters: fromBuckets.map((m) => m.meter), rawMeters, mixed, raw });
  };

  if (sorted.length === 0) return out;
  let t = sorted[0].time;
  for (let i = 0; ; i++) {
    deliver(t);
    while (pending.length && zone.midnight(addDays(pending[0], 1)) + grace <= t) settle(pending.shift()!, 'grace');
    if (next >= sorted.length) break;
    t += steps[i % steps.length] * 60_000;
  }
  for (const d of opts.days) settle(d, 'end');
  return out;
}

/** First index whose reading is at or after t (rows sorted by time). */
function lowerBound(rows: readonly ReadingRow[], t: number): number {
  let lo = 0;
  let hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (rows[mid].time < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Flags in section 6's order, for comparing two settlements. */
export function sortedFlags(flags: readonly QualityFlag[]): QualityFlag[] {
  return [...flags].sort((a, b) => a.time - b.time || byteOrder(a.meter, b.meter) || byteOrder(a.kind, b.kind) || byteOrder(a.detail, b.detail));
}
