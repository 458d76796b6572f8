import { multiplierAt } from '../counters/meter-changes.ts';
import type { SpreadSeries } from '../counters/register-spread.ts';
import type { Meter } from '../site/model.ts';
import { energyAt, splitSeries } from '../split/split.ts';
import type { TouCalendar } from '../tou/calendar.ts';
import { PERIODS } from '../tou/schedule.ts';
import type { Period } from '../tou/schedule.ts';

/**
 * What a verifiable statement shows of one meter on one settled day (issue 10): its
 * register at the day's start and end (起码 / 止码, interpolated by billing.md section 3
 * where the day's bound falls between readings), its energy per period, and how much of
 * that energy was spread over an interval longer than max_gap across a cell boundary (an
 * estimate, marked on the statement). Computed by the settlement from the same accepted readings it settles.
 */

export interface RegisterAt {
  /** Register value, Wh (as the meter shows it: modulo its register modulus). */
  readonly wh: number;
  /** The instant, epoch ms: the day's bound when the readings cover it, else the first/last reading in the day. */
  readonly ms: number;
  /** Interpolated across a gap whose spread is an estimate there (billing.md section 2 rules 4-5). */
  readonly estimated: boolean;
}

export interface MeterDayFacts {
  readonly meter: string;
  /** Energy of the day, Wh. */
  readonly wh: number;
  readonly start?: RegisterAt;
  readonly end?: RegisterAt;
  /** Per period that has energy: Wh and the part spread over a gap. */
  readonly cells: readonly { readonly period: Period; readonly wh: number; readonly gapWh: number }[];
  /**
   * At each instant asked for inside the day (a move-in or move-out on this meter, billing.md
   * section 11): the register then and the meter's energy of the day before it, Wh, so an
   * occupant's part of the day is the difference of two of them.
   */
  readonly marks?: readonly (RegisterAt & { readonly whBefore: number })[];
}

/** What the registers are read from: the split series, or a bucket day's edge readings (no estimate). */
type RegisterSeries = Pick<SpreadSeries, 'time' | 'wh' | 'delta' | 'estimated'>;

/**
 * Register at instant t, when an accepted interval covers it (t0 < t <= t1), else undefined.
 * At a meter change both registers have a reading at t: `start` gives the new meter's
 * initial one, `end` the old meter's final one (billing.md section 11).
 */
function registerAt(meter: Meter, acc: RegisterSeries, t: number, side: 'start' | 'end' = 'end'): RegisterAt | undefined {
  const n = acc.time.length;
  if (n === 0 || t < acc.time[0] || t > acc.time[n - 1]) return undefined;
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (acc.time[mid] < t) lo = mid + 1;
    else hi = mid;
  }
  if (acc.time[lo] === t) {
    if (side === 'start') while (lo + 1 < n && acc.time[lo + 1] === t) lo++;
    return { wh: acc.wh[lo], ms: t, estimated: false };
  }
  const t0 = acc.time[lo - 1];
  const t1 = acc.time[lo];
  // The register is raw: the accepted delta is primary (raw x the multiplier of the piece
  // the interval starts in, billing.md section 11), so divide it back, exactly.
  const raw = acc.delta[lo] / multiplierAt(meter, t0);
  const wh = (acc.wh[lo - 1] + energyAt(raw, t0, t1, t)) % meter.registerModulusWh;
  return { wh, ms: t, estimated: acc.estimated?.[lo] === 1 };
}

/**
 * The registers at a day's start and end [a, b): interpolated where an accepted interval
 * covers the bound, else the first / last accepted reading inside the day.
 */
function dayRegisters(meter: Meter, acc: RegisterSeries, a: number, b: number): { start?: RegisterAt; end?: RegisterAt } {
  let start = registerAt(meter, acc, a, 'start');
  let end = registerAt(meter, acc, b);
  // Readings that start or end inside the day: the first / last reading in it.
  if (!start || !end) {
    let first = -1;
    let last = -1;
    for (let i = 0; i < acc.time.length; i++) {
      if (acc.time[i] < a || acc.time[i] >= b) continue;
      if (first < 0) first = i;
      last = i;
    }
    if (!start && first >= 0) start = { wh: acc.wh[first], ms: acc.time[first], estimated: false };
    if (!end && last >= 0) end = { wh: acc.wh[last], ms: acc.time[last], estimated: false };
  }
  return { ...(start ? { start } : {}), ...(end ? { end } : {}) };
}

/**
 * The facts of a meter's day settled from its 15-minute buckets (core/settle/bucket-day.ts):
 * the energy per period is the buckets', and the registers come from the raw readings around
 * the day's bounds, which are accepted readings of one register without a gap between them
 * (bucketSettlementProblem checks it), so they give what meterDayFacts gives from the
 * whole window: the same interpolation, no estimated part.
 * @param edges raw readings [time, Wh] around the bounds, sorted by time, one per instant
 */
export function meterDayFactsFromBuckets(meter: Meter, whByPeriod: ReadonlyMap<Period, number>, edges: readonly (readonly [number, number])[], a: number, b: number): MeterDayFacts {
  const n = edges.length;
  const time = new Float64Array(n);
  const wh = new Float64Array(n);
  const delta = new Float64Array(n);
  edges.forEach(([t, w], i) => {
    time[i] = t;
    wh[i] = w;
    // Primary Wh of the interval, as the counter rules give it for one register (section 11 rule 6).
    if (i > 0) delta[i] = (w - edges[i - 1][1]) * multiplierAt(meter, edges[i - 1][0]);
  });
  const cells = PERIODS.map((period) => ({ period, wh: whByPeriod.get(period) ?? 0, gapWh: 0 })).filter((c) => c.wh !== 0);
  const { start, end } = dayRegisters(meter, { time, wh, delta }, a, b);
  return { meter: meter.id, wh: cells.reduce((s, c) => s + c.wh, 0), ...(start ? { start } : {}), ...(end ? { end } : {}), cells };
}

/**
 * @param acc the series settleRange split (its onSegments): accepted readings, registers
 *   implied inside gaps by tariff registers, and which intervals are estimates
 * @param seg the meter's energy per calendar segment (settleRange's onSegments)
 * @param day index of the day in cal.days
 * @param marks instants inside the day to record the register at (the calendar is cut there)
 */
export function meterDayFacts(meter: Meter, acc: SpreadSeries, cal: TouCalendar, seg: Float64Array, day: number, marks: readonly number[] = []): MeterDayFacts {
  let a = NaN;
  let b = NaN;
  const wh = new Float64Array(PERIODS.length);
  for (let k = 0; k < cal.segments; k++) {
    if (cal.day[k] !== day) continue;
    if (Number.isNaN(a)) a = cal.start[k];
    b = cal.start[k + 1];
    wh[cal.period[k]] += seg[k];
  }
  // The estimated part: energy of gaps whose spread divides it between cells or occupants
  // by time (billing.md section 2 rules 4-5, amendments 11-12). A gap inside one cell and
  // one occupancy is not one, nor a period's energy between two of a DL/T 645 meter's
  // daily frozen tariff registers: spreadByRegisters marked which are.
  const gapDelta = new Float64Array(acc.delta.length);
  let anyGap = false;
  const est = acc.estimated;
  if (est) {
    for (let i = 1; i < acc.time.length; i++) {
      if (est[i] === 1 && acc.time[i] > a && acc.time[i - 1] < b) {
        gapDelta[i] = acc.delta[i];
        anyGap = true;
      }
    }
  }
  const gap = new Float64Array(PERIODS.length);
  if (anyGap) {
    const g = new Float64Array(cal.segments);
    splitSeries({ time: acc.time, delta: gapDelta }, cal, g);
    for (let k = 0; k < cal.segments; k++) if (cal.day[k] === day) gap[cal.period[k]] += g[k];
  }
  const cells = PERIODS.map((period, p) => ({ period, wh: wh[p], gapWh: gap[p] })).filter((c) => c.wh !== 0 || c.gapWh !== 0);
  if (Number.isNaN(a)) return { meter: meter.id, wh: 0, cells: [] };
  const { start, end } = dayRegisters(meter, acc, a, b);
  const out: (RegisterAt & { whBefore: number })[] = [];
  for (const t of marks) {
    if (!(t > a && t < b)) continue;
    let before = 0;
    for (let k = 0; k < cal.segments; k++) if (cal.day[k] === day && cal.start[k] < t) before += seg[k];
    const r = registerAt(meter, acc, t);
    if (r) out.push({ ...r, whBefore: before });
  }
  return { meter: meter.id, wh: cells.reduce((s, c) => s + c.wh, 0), ...(start ? { start } : {}), ...(end ? { end } : {}), cells, ...(out.length ? { marks: out } : {}) };
}
