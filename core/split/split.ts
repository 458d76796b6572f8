import type { TouCalendar } from '../tou/calendar.ts';
import { PERIODS } from '../tou/schedule.ts';
import type { Period } from '../tou/schedule.ts';
import type { AcceptedSeries } from '../types.ts';
import { divRoundHalfUp } from '../units.ts';

/**
 * billing.md section 3: energy between two accepted readings spread linearly in time,
 * cut at the calendar's instants. E(t) = E0 + round_half_up(delta * (t - t0) / (t1 - t0))
 * in integer Wh; a piece is the difference of E at its ends, so the pieces of an interval
 * add up to its delta exactly. This is the hot path: typed arrays, no allocation.
 */

/** The interpolated energy (Wh after t0) at instant t of an interval (t0, t1] of delta Wh. */
export function energyAt(delta: number, t0: number, t1: number, t: number): number {
  if (t <= t0) return 0;
  if (t >= t1) return delta;
  return mulDivHalfUp(delta, t - t0, t1 - t0);
}

function mulDivHalfUp(a: number, b: number, den: number): number {
  const p = a * b;
  if (p <= 4_000_000_000_000_000) return divRoundHalfUp(p, den);
  return Number((2n * BigInt(a) * BigInt(b) + BigInt(den)) / (2n * BigInt(den)));
}

/**
 * Adds the series' energy inside the calendar to `out[segment]` (length >= segments).
 * Energy before the first or after the last accepted reading is unknown: not added.
 */
export function splitSeries(series: Pick<AcceptedSeries, 'time' | 'delta'>, cal: Pick<TouCalendar, 'start' | 'segments'>, out: Float64Array): void {
  const time = series.time;
  const delta = series.delta;
  const start = cal.start;
  const segs = cal.segments;
  if (segs === 0) return;
  const calA = start[0];
  const calB = start[segs];
  const n = time.length;
  let j = 0;
  for (let i = 1; i < n; i++) {
    const d = delta[i];
    const t1 = time[i];
    if (d === 0 || t1 <= calA) continue;
    const t0 = time[i - 1];
    if (t0 >= calB) break;
    while (start[j + 1] <= t0) j++;
    if (t0 >= calA && t1 <= start[j + 1]) {
      out[j] += d; // the common case: the whole interval inside one segment
      continue;
    }
    const lo = t0 > calA ? t0 : calA;
    const hi = t1 < calB ? t1 : calB;
    const dt = t1 - t0;
    let prev = lo === t0 ? 0 : mulDivHalfUp(d, lo - t0, dt);
    let k = j;
    while (k < segs && start[k] < hi) {
      const end = start[k + 1] < hi ? start[k + 1] : hi;
      const e = end >= t1 ? d : mulDivHalfUp(d, end - t0, dt);
      out[k] += e - prev;
      prev = e;
      k++;
    }
  }
}

/** One workers' rollup bucket: a calendar segment of one meter with its energy. */
export interface TouBucket {
  /** Epoch ms of the segment's start (a 15-minute grid mark or a period boundary). */
  readonly start: number;
  readonly period: Period;
  readonly wh: number;
}

/**
 * The meter's non-zero energy per calendar segment. With a calendar built with
 * gridMinutes = 15 these are the workers' 15-minute TOU buckets (a quarter hour that
 * contains a period boundary gives two buckets).
 */
export function touBuckets(series: Pick<AcceptedSeries, 'time' | 'delta'>, cal: TouCalendar): TouBucket[] {
  const out = new Float64Array(cal.segments);
  splitSeries(series, cal, out);
  const buckets: TouBucket[] = [];
  for (let k = 0; k < cal.segments; k++) {
    if (out[k] !== 0) buckets.push({ start: cal.start[k], period: PERIODS[cal.period[k]], wh: out[k] });
  }
  return buckets;
}
