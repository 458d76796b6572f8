import { siteCuts } from '../settle/attribution.ts';
import type { Meter, Site } from '../site/model.ts';
import { touBuckets } from '../split/split.ts';
import type { TouBucket } from '../split/split.ts';
import { cutCalendar } from '../tenancy/cuts.ts';
import { buildCalendar } from '../tou/calendar.ts';
import type { TouCalendar } from '../tou/calendar.ts';
import { addDays } from '../tou/local-date.ts';
import type { LocalDate } from '../tou/local-date.ts';
import { zoneOf } from '../tou/zone.ts';
import type { QualityFlag, RawSeries } from '../types.ts';
import { acceptMeterSeries } from './meter-changes.ts';
import { spreadByRegisters } from './register-spread.ts';
import { counterState, resumeSeries } from './resume.ts';
import type { CounterState } from './resume.ts';

/**
 * One run of the workers' rollup for one meter (billing.md section 5: the 15-minute TOU
 * buckets), pure: the carried counter state plus the meter's new raw readings -> the
 * counter rules of section 2 resumed exactly (core/counters/resume.ts), the section-3 split
 * on the 15-minute wall-clock grid cut at moves and meter changes (section 11) -> the buckets
 * from the one holding the last reading before this run on, the flags first seen now, and
 * the state to carry. workers/rollup.ts runs it per meter of a batch; the bucket-settlement
 * proof (core/settle/bucket-settlement.test.ts) runs it over every testcase, so the
 * nightly settlement may read the buckets where they are exact.
 */

export const BUCKET_MINUTES = 15;

/** A memoised calendar factory for the buckets of a site: 15-minute grid, cut like the settlement's. */
export function bucketCalendars(site: Site): (from: LocalDate, to: LocalDate) => TouCalendar {
  const cache = new Map<string, TouCalendar>();
  const cuts = siteCuts(site);
  return (a, b) => {
    let cal = cache.get(`${a}|${b}`);
    if (!cal) cache.set(`${a}|${b}`, (cal = cutCalendar(buildCalendar(site, a, b, BUCKET_MINUTES), cuts)));
    return cal;
  };
}

/** Start of the calendar segment holding instant t (segments are sorted). */
export function segmentStart(cal: TouCalendar, t: number): number {
  let lo = 0;
  let hi = cal.segments - 1;
  if (cal.segments === 0 || t < cal.start[0]) return t;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (cal.start[mid] <= t) lo = mid;
    else hi = mid - 1;
  }
  return cal.start[lo];
}

export interface RollupStep {
  /** Buckets from the one holding the last accepted reading before this run (recomputed whole) on, and not before `fromMs`. */
  readonly buckets: readonly TouBucket[];
  /** Flags whose instant (a gap's end) is after the last accepted reading before this run, not before `fromMs`. */
  readonly flags: readonly QualityFlag[];
  /** The state to carry to the next run. */
  readonly next: CounterState;
  /** The last accepted reading before this run, if any. */
  readonly prev?: number;
  /** The last accepted reading after it (undefined: none accepted yet). */
  readonly last?: number;
  /** Whether `fromMs` must be kept (the run did not reach past the bucket holding it). */
  readonly keepFrom: boolean;
}

/**
 * @param state the carried state (empty: the meter's first run, from its first reading)
 * @param series the new raw readings, sorted, every one after the state's
 * @param fromMs buckets and flags are kept only from here (a state reset to a day)
 */
export function rollupStep(site: Site, meter: Meter, state: CounterState, series: RawSeries, calendar: (from: LocalDate, to: LocalDate) => TouCalendar, fromMs = -Infinity): RollupStep {
  const zone = zoneOf(site.timezone);
  const window = resumeSeries(state, series);
  // A carried state starts where the history it stands for starts: a meter change at or
  // before its first reading is already in it (billing.md section 11), later ones are framed
  // once a reading after them has arrived (a change entered ahead of time waits for it).
  const lastT = window.time[window.time.length - 1];
  const accepted = acceptMeterSeries(meter, window, state.accepted.length ? state.accepted[0][0] : -Infinity, lastT);
  // Gaps spread by tariff registers where both ends carry them (billing.md section 2 rule
  // 5), with the gap flags that estimate something: the settlement's own series.
  const acc = spreadByRegisters(site, meter, accepted, window.tariff);
  const prev = state.accepted.length ? state.accepted[state.accepted.length - 1][0] : undefined;
  const n = acc.time.length;
  const cal = calendar(zone.dateOf(window.time[0]), addDays(zone.dateOf(Math.max(lastT, acc.time[n - 1] ?? lastT)), 1));
  // The bucket holding `prev` is recomputed whole (its earlier part comes from the carried
  // accepted readings); buckets before it are left alone.
  const cut = Math.max(prev === undefined ? -Infinity : segmentStart(cal, prev), fromMs);
  const buckets = n > 1 ? touBuckets(acc, cal).filter((b) => b.start >= cut) : [];
  const after = prev ?? -Infinity;
  // Gaps that estimate nothing billed (billing.md section 2 rules 4-5, amendments 11-12)
  // are not flagged (spreadByRegisters left them out), as the settlement does not flag them.
  const flags = acc.flags.filter((f) => (f.kind === 'gap' ? (f.until ?? f.time) > after : f.time > after) && f.time >= fromMs);
  const last = n ? acc.time[n - 1] : undefined;
  // The state carries the accepted readings (with their registers), not the points the
  // register spread implied inside gaps: the next run spreads its gaps again from them.
  const next = last === undefined ? { accepted: [], pending: counterState(accepted, window, Infinity).pending } : counterState(accepted, window, segmentStart(cal, last));
  return { buckets, flags, next, ...(prev !== undefined ? { prev } : {}), ...(last !== undefined ? { last } : {}), keepFrom: Number.isFinite(fromMs) && (last === undefined || segmentStart(cal, last) <= fromMs) };
}
