import { registersAt } from '../readings/tariff-rows.ts';
import type { AcceptedSeries, RawSeries, TariffRows } from '../types.ts';

/**
 * Resuming the counter rules of billing.md section 2 exactly, for the workers' incremental
 * rollup: the rules run forward, and once a reading is accepted the decision is final and
 * nothing before it matters for later readings except that reading (the new baseline) and
 * the readings dropped after it that may still become a spike run (a run is always the last
 * one or two dropped readings). So the accepted readings whose intervals reach a point,
 * plus those at most two pending readings, replayed with the next raw readings give the
 * same accepted readings and deltas as the rules run over the whole history
 * (core/counters/resume.test.ts proves it on random series). Each carries the tariff
 * registers read with it, so a gap from it to a later reading is spread by them as the
 * settlement spreads it (section 2 rule 5).
 */

/**
 * A reading in the state: [time, Wh], or [time, Wh, r1, r2, r3, r4] when it carries tariff
 * registers (Wh; null where a register was not read: the state is JSON).
 */
export type StateReading = readonly [number, number] | readonly [number, number, number | null, number | null, number | null, number | null];

export interface CounterState {
  /** Accepted readings from the anchor on, oldest first; the last is the baseline. */
  readonly accepted: readonly StateReading[];
  /** Readings after the baseline, dropped so far, that may still start or continue a run (at most 2). */
  readonly pending: readonly StateReading[];
}

/** (t, wh) with the registers read with it, if any. */
function withRegisters(tariff: TariffRows | undefined, t: number, wh: number): StateReading {
  const r = registersAt(tariff, t, wh);
  if (!r) return [t, wh];
  const v = (x: number) => (Number.isNaN(x) ? null : x);
  return [t, wh, v(r[0]), v(r[1]), v(r[2]), v(r[3])];
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
  const kept: StateReading[] = [];
  for (let i = a; i < n; i++) kept.push(withRegisters(raw.tariff, accepted.time[i], accepted.wh[i]));
  return { accepted: kept, pending: tailAfter(raw, accepted.time[n - 1]) };
}

/** The last two distinct instants of raw readings after `t` (largest value per instant, as rule 1 keeps). */
function tailAfter(raw: RawSeries, t: number): StateReading[] {
  const out: [number, number][] = [];
  for (let i = raw.time.length - 1; i >= 0 && raw.time[i] > t; i--) {
    const last = out[0];
    if (last && last[0] === raw.time[i]) last[1] = Math.max(last[1], raw.wh[i]);
    else if (out.length === 2) break;
    else out.unshift([raw.time[i], raw.wh[i]]);
  }
  return out.map(([time, wh]) => withRegisters(raw.tariff, time, wh));
}

/** The state's readings followed by new raw readings (all later than the state's), as one series to run the rules on. */
export function resumeSeries(state: CounterState, next: RawSeries): RawSeries {
  const carried = [...state.accepted, ...state.pending];
  const k = carried.length;
  const time = new Float64Array(k + next.time.length);
  const wh = new Float64Array(k + next.time.length);
  carried.forEach(([t, w], i) => {
    time[i] = t;
    wh[i] = w;
  });
  time.set(next.time, k);
  wh.set(next.wh, k);
  const withRegs = carried.filter((r) => r.length === 6);
  if (withRegs.length === 0) return next.tariff ? { time, wh, tariff: next.tariff } : { time, wh };
  const m = next.tariff?.time.length ?? 0;
  const tariff = { time: new Float64Array(withRegs.length + m), wh: new Float64Array(withRegs.length + m), reg: new Float64Array((withRegs.length + m) * 4) };
  withRegs.forEach((r, i) => {
    tariff.time[i] = r[0];
    tariff.wh[i] = r[1];
    for (let j = 0; j < 4; j++) tariff.reg[i * 4 + j] = r[2 + j] ?? NaN;
  });
  if (next.tariff) {
    tariff.time.set(next.tariff.time, withRegs.length);
    tariff.wh.set(next.tariff.wh, withRegs.length);
    tariff.reg.set(next.tariff.reg, withRegs.length * 4);
  }
  return { time, wh, tariff };
}
