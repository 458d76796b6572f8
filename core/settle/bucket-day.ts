import { incompleteFlag, settleRange } from '../bill/run.ts';
import type { SettleRangeOptions } from '../bill/run.ts';
import { settleMeterEnergy } from '../live/provisional.ts';
import type { MeterEnergy } from '../live/provisional.ts';
import type { ReadingStore } from '../readings/store.ts';
import type { Meter, Site } from '../site/model.ts';
import { meterDayFacts, meterDayFactsFromBuckets } from '../statement/meter-facts.ts';
import type { MeterDayFacts } from '../statement/meter-facts.ts';
import { meterTimeline } from '../tenancy/occupancy.ts';
import { addDays } from '../tou/local-date.ts';
import type { LocalDate } from '../tou/local-date.ts';
import { PERIODS } from '../tou/schedule.ts';
import type { Period } from '../tou/schedule.ts';
import { zoneOf } from '../tou/zone.ts';
import type { DaySettlement, QualityFlag, QualityKind } from '../types.ts';
import { occupancyPieces } from './attribution.ts';

/**
 * The nightly settlement of a day from the workers' 15-minute buckets where they are exact
 * (issue 15; billing.md section 5, "Settlement from buckets"), from raw readings elsewhere.
 *
 * The settlement of section 4 needs each meter's energy per (day, period) cell and
 * occupancy piece; the buckets are section-3 pieces of the same accepted readings on a finer
 * grid, so they telescope to those cells, and section 4 run on them (settleMeterEnergy, the
 * provisional settlement) gives the lines, cells and shares of settleRange. What can differ
 * is the accepted readings themselves: the rollup runs the counter rules over the meter's
 * whole history, the raw settlement over its window (a lookback before the day, the last
 * reading before it, a lookahead and the first reading after it). From the window's first
 * reading on, both run the same rules on the same readings, so they agree exactly when that
 * reading is one the whole history accepted with nothing pending, and the rollup has taken
 * every reading there is. bucketSettlementProblem decides it per meter from evidence the
 * workers have without reading the raw day; a meter it refuses is settled from raw readings
 * as before (e.g. a spike right before a silence longer than the lookback: the window then
 * starts at the spike). core/settle/bucket-settlement.test.ts proves the equality on every
 * testcase and on random sites.
 */

/** Counter flags of section 2 and section 11 (the rollup raises them): any near a day sends its meter to the raw path. */
export const COUNTER_FLAG_KINDS: readonly QualityKind[] = ['conflict', 'spike', 'rollover', 'reset', 'gap', 'meter_change', 'estimated'];

export interface BucketEvidence {
  /**
   * The rollup has taken every raw reading stored for the meter (its position is its newest
   * reading) and is not working through a reset (late data, a site change).
   */
  readonly caughtUp: boolean;
  /** The first instant the rollup's buckets of the meter stand for (its first reading, or a reset's start); none: all history. */
  readonly rollupFrom?: number;
  /**
   * The raw settlement window's first reading of the meter: its last reading before the
   * window's start (within the window's edge search), else its first in the window; none
   * when the window holds no reading of it.
   */
  readonly windowFirst?: number;
  /**
   * Counter flags (COUNTER_FLAG_KINDS) the rollup raised for the meter from windowFirst to
   * the window's last reading (its first at or after the lookahead's end; none: up to now).
   * A flag is raised at the instant of the reading it is about, so later ones do not touch
   * the window's readings.
   */
  readonly flags: number;
  /**
   * Raw readings [time, Wh] around the day's bounds, sorted: the last before and the first
   * at or after each local midnight (those that exist).
   */
  readonly edges: readonly (readonly [number, number])[];
}

/**
 * Why a meter's day cannot be settled from its buckets, or undefined when it can: the
 * window's first reading is one the rollup accepted with nothing pending (no counter flag
 * from it on: a dropped reading is always flagged `spike`, a new baseline `reset`, a pair
 * at one instant `conflict`), no meter change frames the two differently, and the rollup
 * has taken every reading.
 */
export function bucketSettlementProblem(site: Site, meter: Meter, day: LocalDate, ev: BucketEvidence): string | undefined {
  const zone = zoneOf(site.timezone);
  const a = zone.midnight(day);
  const b = zone.midnight(addDays(day, 1));
  if (!ev.caughtUp) return 'the rollup has not taken all its readings';
  if (ev.windowFirst === undefined) return 'no reading in the settlement window';
  if (ev.rollupFrom !== undefined && ev.rollupFrom > ev.windowFirst) return 'the rollup\'s buckets start after the window\'s first reading (a reset, or readings older than its start)';
  if (ev.flags > 0) return 'counter flags since the window\'s first reading';
  // A change frames the window differently from the carried state (billing.md section 11).
  if ((meter.changes ?? []).some((c) => c.at >= ev.windowFirst!)) return 'a meter change since the window\'s first reading';
  // Registers at a move on the meter need the readings around it (the statement's marks).
  if (meter.role === 'tenant' && meterTimeline(site, meter).some((s) => s.from > a && s.from < b)) return 'a move on the meter that day';
  for (let i = 1; i < ev.edges.length; i++) if (ev.edges[i][1] < ev.edges[i - 1][1] || ev.edges[i][0] <= ev.edges[i - 1][0]) return 'raw readings around the bounds go down';
  // A gap across a midnight: its register there is the one section 2 rule 5 implies from the
  // tariff registers where the readings carry them (not the linear interpolation of the
  // edges), and only the raw path sees those registers.
  for (let i = 1; i < ev.edges.length; i++) {
    const [t0] = ev.edges[i - 1];
    const [t1] = ev.edges[i];
    if (t1 - t0 > meter.maxGapMs && ((t0 < a && t1 > a) || (t0 < b && t1 > b))) return 'a gap across the day\'s bound';
  }
  return undefined;
}

export interface BucketMeterDay {
  readonly meter: string;
  /** The meter's bucket energy of the day per period and occupancy piece (`at` = the piece's first instant in the day). */
  readonly energy: readonly MeterEnergy[];
  /** BucketEvidence.edges. */
  readonly edges: readonly (readonly [number, number])[];
}

export interface MixedDayInput {
  /** Meters bucketSettlementProblem accepted, with their buckets' energy. */
  readonly fromBuckets: readonly BucketMeterDay[];
  /** The raw settlement window's readings of the other meters (site.meters positions; the bucket meters' are ignored). */
  readonly raw: ReadingStore;
  /** The window's first instant (settleRange's historyFromMs). */
  readonly historyFromMs: number;
  /** Grid of the raw meters' segments (15: the day's buckets, which the workers compare). */
  readonly gridMinutes?: number;
  /** Sees each raw meter's segments and accepted readings (settleRange's onSegments). */
  readonly onSegments?: SettleRangeOptions['onSegments'];
}

export interface MixedDay {
  readonly settlement: DaySettlement;
  /** The day's flags as settleRange gives them for [day, day + 1): the raw meters' counter flags, every meter's `incomplete`, the day's negative_loss. */
  readonly flags: readonly QualityFlag[];
  /** Per meter, site.meters order: what the statement shows (meterDayFacts). */
  readonly facts: readonly MeterDayFacts[];
}

/** Move instants on a tenant meter strictly inside (a, b): the statement records the register there. */
export function moveMarks(site: Site, meter: Meter, a: number, b: number): number[] {
  return meter.role === 'tenant' ? meterTimeline(site, meter).map((x) => x.from).filter((t) => t > a && t < b) : [];
}

/**
 * Settles one local day: the bucket meters' energy as given, the others' from their raw
 * readings through settleRange (counter rules, split, occupancy pieces), then section 4 on
 * all of it (settleMeterEnergy). Equal to settleRange over the raw window of every meter
 * when each bucket meter passed bucketSettlementProblem.
 */
export function settleDayMixed(site: Site, day: LocalDate, input: MixedDayInput): MixedDay {
  const zone = zoneOf(site.timezone);
  const a = zone.midnight(day);
  const b = zone.midnight(addDays(day, 1));
  const bucketMeters = new Map(input.fromBuckets.map((m) => [m.meter, m]));
  const pieceStarts = occupancyPieces(site, a, b).map((p) => p[0]);
  const pieceOf = (t: number) => {
    let i = pieceStarts.length - 1;
    while (i > 0 && pieceStarts[i] > t) i--;
    return pieceStarts[i];
  };
  const energy: MeterEnergy[] = [];
  const facts: (MeterDayFacts | undefined)[] = site.meters.map(() => undefined);
  const range = settleRange(site, input.raw, day, addDays(day, 1), {
    gridMinutes: input.gridMinutes ?? 0,
    historyFromMs: input.historyFromMs,
    onSegments: (mi, cal, seg, acc) => {
      const meter = site.meters[mi];
      if (bucketMeters.has(meter.id)) return;
      input.onSegments?.(mi, cal, seg, acc);
      const d = cal.days.indexOf(day);
      // Per (period, occupancy piece), as the workers sum buckets (billing.md section 11).
      const sums = new Map<string, MeterEnergy>();
      for (let k = 0; k < cal.segments; k++) {
        if (cal.day[k] !== d || seg[k] === 0) continue;
        const period = PERIODS[cal.period[k]];
        const at = pieceOf(cal.start[k]);
        const key = `${period}|${at}`;
        const e = sums.get(key);
        sums.set(key, { meter: meter.id, period, at, wh: (e?.wh ?? 0) + seg[k] });
      }
      energy.push(...sums.values());
      facts[mi] = meterDayFacts(meter, acc, cal, seg, d, moveMarks(site, meter, a, b));
    },
  });
  const format = zone.format.bind(zone);
  const flags: QualityFlag[] = range.flags.filter((f) => f.meter === '' ? false : !bucketMeters.has(f.meter));
  site.meters.forEach((meter, mi) => {
    const m = bucketMeters.get(meter.id);
    if (!m) return;
    energy.push(...m.energy);
    const byPeriod = new Map<Period, number>();
    for (const e of m.energy) byPeriod.set(e.period, (byPeriod.get(e.period) ?? 0) + e.wh);
    facts[mi] = meterDayFactsFromBuckets(meter, byPeriod, m.edges, a, b);
    // The window's first and last readings: the first and last edges (the window's first is
    // before the day when the meter has a reading before midnight, which the first edge then is).
    const inc = incompleteFlag(meter.id, m.edges[0]?.[0], m.edges.at(-1)?.[0], a, b, format);
    if (inc) flags.push(inc);
  });
  const settlement = settleMeterEnergy(site, day, energy);
  flags.push(...settlement.flags);
  return { settlement, flags, facts: facts.map((f, mi) => f ?? { meter: site.meters[mi].id, wh: 0, cells: [] }) };
}
