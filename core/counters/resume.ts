import type { AcceptedSeries, RawSeries } from '../types.ts';

/**
 * Resuming the counter rules of billing.md section 2 exactly, for the workers' incremental
 * rollup: the rules run forward, and once a reading is accepted the decision is final and
 * nothing before it matters for later readings except that reading (the new baseline) and
 * the readings dropped after it that may still become a spike run (a run is always the last
 * one or two dropped readings). So the accepted readings whose intervals reach a point,
 * plus those at most two pending readings, replayed with the next raw readings give the
 * same accepted readings and deltas as the rules run over the whole history
 * (core/counters/resume.test.ts proves it on random series).
 */
export interface CounterState {
  /** Accepted readings [time, Wh] from the anchor on, oldest first; the last is the baseline. */
  readonly accepted: readonly (readonly [number, number])[];
  /** Readings after the baseline, dropped so far, that may still start or continue a run (at most 2). */
  readonly pending: readonly (readonly [number, number])[];
}

/**
 * The state after a run of the rules: accepted readings from the last one at or before
 * `keepFrom` (so intervals reaching `keepFrom` can be split again) to the last one, and the
 * last (up to two) raw readings after it. `raw` is the series `accepted` was computed from.
 */
export function counterState(accepted: Pick<AcceptedSeries, 'time' | 'wh'>, raw: RawSeries, keepFrom: number): CounterState {
  const n = accepted.time.length;
  if (n === 0) return { accepted: [], pending: tailAfter(raw, -Infinity) };
  let a = n - 1;
  while (a > 0 && accepted.time[a] > keepFrom) a--;
  const kept: [number, number][] = [];
  for (let i = a; i < n; i++) kept.push([accepted.time[i], accepted.wh[i]]);
  return { accepted: kept, pending: tailAfter(raw, accepted.time[n - 1]) };
}

/** The last two distinct instants of raw readings after `t` (largest value per instant, as rule 1 keeps). */
function tailAfter(raw: RawSeries, t: number): [number, number][] {
  const out: [number, number][] = [];
  for (let i = raw.time.length - 1; i >= 0 && raw.time[i] > t; i--) {
    const last = out[0];
    if (last && last[0] === raw.time[i]) last[1] = Math.max(last[1], raw.wh[i]);
    else if (out.length === 2) break;
    else out.unshift([raw.time[i], raw.wh[i]]);
  }
  return out;
}

/** The state's readings followed by new raw readings (all later than the state's), as one series to run the rules on. */
export function resumeSeries(state: CounterState, next: RawSeries): RawSeries {
  const k = state.accepted.length + state.pending.length;
  const time = new Float64Array(k + next.time.length);
  const wh = new Float64Array(k + next.time.length);
  let i = 0;
  for (const [t, w] of [...state.accepted, ...state.pending]) {
    time[i] = t;
    wh[i] = w;
    i++;
  }
  time.set(next.time, k);
  wh.set(next.wh, k);
  return { time, wh };
}
