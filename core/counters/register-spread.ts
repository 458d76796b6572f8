import { registersAt } from '../readings/tariff-rows.ts';
import { largestRemainder } from '../settle/divide.ts';
import type { Meter, Site } from '../site/model.ts';
import { tariffMappingOf } from '../site/tariff-mapping.ts';
import { energyAt } from '../split/split.ts';
import { cutCalendar } from '../tenancy/cuts.ts';
import { buildCalendar } from '../tou/calendar.ts';
import { addDays } from '../tou/local-date.ts';
import { PERIODS } from '../tou/schedule.ts';
import { zoneOf } from '../tou/zone.ts';
import type { AcceptedSeries, QualityFlag, TariffRows } from '../types.ts';
import { occupantChanges, spansCells } from './gap-cells.ts';

/**
 * billing.md section 2 rules 4 and 5 (amendments 11 and 12): how the energy of each gap (an
 * interval between accepted readings longer than max_gap) is spread, and whether anything
 * billed from it is an estimate.
 *
 * Rule 5: when both ends of a gap carry the meter's tariff registers for every TOU period in
 * it, its energy (the total register's delta, as always) is divided among the periods in
 * proportion to the registers' deltas, and within a period linearly in time. It is written
 * here as readings the registers imply: the total register at each instant inside the gap
 * where the period changes (E0 plus each period's share of its energy up to then). Section 3
 * then spreads each sub-interval linearly like any interval, so the splitter, the workers'
 * buckets and the statement's registers need no second rule: they get a series with those
 * points in it. Every other gap keeps the linear spread of section 3.
 *
 * Rule 4: a gap is flagged, and its energy marked estimated, only where the spread divides
 * energy between settlement cells or occupants by time: the linear spread across a cell
 * boundary or a move (amendment 11); the register split where the time in the gap of one
 * period with energy lies on two local days or on both sides of a move; never a gap without
 * energy (amendment 12).
 */

/** The accepted series to split: points implied by tariff registers inserted into gaps. */
export interface SpreadSeries extends AcceptedSeries {
  /**
   * Per interval i (time[i-1], time[i]]: 1 when its energy is an estimate (spread between
   * cells or occupants by time across a gap). Absent: none is. Flags (`flags`) are the
   * accepted series' without the gaps that estimate nothing billed.
   */
  readonly estimated?: Uint8Array;
}

/** The tariff and total registers show 0.01 kWh (XXXXXX.XX, DL/T 645-2007 appendix A). */
export const REGISTER_RESOLUTION_WH = 10;

const NP = PERIODS.length;

/** The points rule 5 adds inside interval i, and which of its sub-intervals are estimates. */
interface RegisterSplit {
  /** Instants strictly inside the interval where the period changes, in order. */
  readonly time: number[];
  /** The raw total register implied there (Wh). */
  readonly wh: number[];
  /** Per sub-interval (time.length + 1 of them): 1 = estimate. */
  readonly est: number[];
  /** Primary Wh per raw Wh of the interval (the multiplier in force, section 11 rule 6). */
  readonly mult: number;
}

/**
 * The series billing splits for one meter position (after acceptMeterSeries), with its
 * billable flags. A series without gaps is returned as it is.
 * @param tariff the tariff registers of the raw readings (RawSeries.tariff)
 */
export function spreadByRegisters(site: Site, meter: Meter, acc: AcceptedSeries, tariff: TariffRows | undefined): SpreadSeries {
  if (!acc.flags.some((f) => f.kind === 'gap')) return acc;
  const n = acc.time.length;
  const linearEst = new Uint8Array(n);
  const splits = new Map<number, RegisterSplit>();
  const flags: QualityFlag[] = [];
  const cuts = occupantChanges(site, meter);
  let anyEst = false;
  for (const f of acc.flags) {
    if (f.kind !== 'gap' || f.until === undefined) {
      flags.push(f);
      continue;
    }
    const i = intervalIndex(acc, f.time, f.until);
    // Rule 4 (amendment 12): a gap over which the total register did not move (E1 = E0,
    // accepted by rule 2) has 0 Wh in every cell and for every occupant, exactly, whichever
    // spread: nothing billed from it is an estimate, so it is not flagged. (A reset or a
    // spike run's new baseline also bills 0, but the energy there is unknown: they keep it.)
    if (i > 0 && acc.wh[i] === acc.wh[i - 1] && acc.delta[i] === 0) continue;
    const split = i > 0 ? registerSplit(site, meter, acc, i, tariff, cuts) : undefined;
    let estimated: boolean;
    if (split) {
      splits.set(i, split);
      estimated = split.est.some((x) => x === 1);
    } else {
      // Section 3's linear spread: an estimate where it divides energy between cells or occupants.
      estimated = spansCells(site, f.time, f.until, meter);
      if (estimated && i > 0) linearEst[i] = 1;
    }
    if (estimated) {
      flags.push(f);
      anyEst = true;
    }
  }
  if (splits.size === 0) return { ...acc, flags, ...(anyEst ? { estimated: linearEst } : {}) };

  let extra = 0;
  for (const s of splits.values()) extra += s.time.length;
  const time = new Float64Array(n + extra);
  const wh = new Float64Array(n + extra);
  const delta = new Float64Array(n + extra);
  const estimated = new Uint8Array(n + extra);
  let k = 0;
  for (let i = 0; i < n; i++) {
    const s = splits.get(i);
    if (s) {
      // The interval's primary delta is its raw delta x mult (section 11 rule 6); so is each part.
      let prev = acc.wh[i - 1];
      for (let j = 0; j < s.time.length; j++, k++) {
        time[k] = s.time[j];
        wh[k] = s.wh[j];
        delta[k] = (s.wh[j] - prev) * s.mult;
        estimated[k] = s.est[j];
        prev = s.wh[j];
      }
      time[k] = acc.time[i];
      wh[k] = acc.wh[i];
      delta[k] = (acc.wh[i] - prev) * s.mult;
      estimated[k] = s.est[s.time.length];
      k++;
      continue;
    }
    time[k] = acc.time[i];
    wh[k] = acc.wh[i];
    delta[k] = acc.delta[i];
    estimated[k] = linearEst[i];
    k++;
  }
  return { meter: acc.meter, time, wh, delta, flags, ...(anyEst ? { estimated } : {}) };
}

/** The index i of the accepted interval (t0, t1] (time[i-1] = t0, time[i] = t1), or -1. */
function intervalIndex(acc: AcceptedSeries, t0: number, t1: number): number {
  const time = acc.time;
  let lo = 1;
  let hi = time.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (time[mid] < t1) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < time.length && time[i] === t1; i++) if (time[i - 1] === t0) return i;
  return -1;
}

/**
 * Rule 5 on interval i, or undefined where it does not apply (then section 3's linear
 * spread does): see billing.md section 2 rule 5 for each condition.
 */
function registerSplit(site: Site, meter: Meter, acc: AcceptedSeries, i: number, tariff: TariffRows | undefined, cuts: readonly number[]): RegisterSplit | undefined {
  const t0 = acc.time[i - 1];
  const t1 = acc.time[i];
  const e0 = acc.wh[i - 1];
  const e1 = acc.wh[i];
  // Accepted by rule 2 with energy: a rollover or a reset (the raw register went down)
  // and a spike run's new baseline (no energy billed into it) keep the linear rule; so does
  // a gap without energy (D = 0), which is 0 Wh in every cell whichever spread (rule 4).
  const d = e1 - e0;
  if (!(d > 0) || acc.delta[i] === 0) return undefined;
  const mult = acc.delta[i] / d;
  if (!Number.isInteger(mult)) return undefined;
  // (d) a declared final register of a meter change (section 11 rule 5) carries no tariff
  // registers, whatever was read at that instant by the new meter.
  if ((meter.changes ?? []).some((c) => c.at === t1)) return undefined;
  const r0 = registersAt(tariff, t0, e0);
  const r1 = registersAt(tariff, t1, e1);
  if (!r0 || !r1) return undefined;

  // The periods of the interval by the site's calendar (section 3; a DST day's hours as
  // they pass), cut at the meter's occupant changes: each period's time, and whether it lies
  // in more than one (local day, occupancy).
  const zone = zoneOf(site.timezone);
  const cal = cutCalendar(buildCalendar(site, zone.dateOf(t0), addDays(zone.dateOf(t1 - 1), 1)), cuts);
  const len = new Float64Array(NP);
  const place = new Float64Array(NP).fill(NaN);
  const spread = new Uint8Array(NP);
  for (let k = 0; k < cal.segments; k++) {
    const lo = Math.max(cal.start[k], t0);
    const hi = Math.min(cal.start[k + 1], t1);
    if (hi <= lo) continue;
    const p = cal.period[k];
    len[p] += hi - lo;
    let piece = 0;
    while (piece < cuts.length && cuts[piece] <= lo) piece++;
    const where = cal.day[k] * (cuts.length + 1) + piece;
    if (Number.isNaN(place[p])) place[p] = where;
    else if (place[p] !== where) spread[p] = 1;
  }

  // (a) every period there has its own register, read at both ends; (b) none went down.
  const mapping = tariffMappingOf(meter);
  const periods: number[] = [];
  const weights: number[] = [];
  const used = new Set<number>();
  for (let p = 0; p < NP; p++) {
    if (len[p] === 0) continue;
    const reg = (mapping as Partial<Record<string, number>>)[PERIODS[p]];
    if (reg === undefined || reg < 1 || reg > 4 || used.has(reg)) return undefined;
    used.add(reg);
    const a = r0[reg - 1];
    const b = r1[reg - 1];
    if (Number.isNaN(a) || Number.isNaN(b) || b < a) return undefined;
    periods.push(p);
    weights.push(b - a);
  }
  // (c) they account for the total within their resolution: each of the k + 1 registers is
  // truncated to 0.01 kWh at both ends, so honest registers differ by less than 10 Wh each.
  // (R = 0 with D > 0, e.g. 10 Wh of total and no register digit moved: nothing to divide by.)
  let sum = 0;
  for (const w of weights) sum += w;
  if (sum <= 0 || Math.abs(d - sum) > REGISTER_RESOLUTION_WH * (periods.length + 1)) return undefined;

  // The raw delta divided by the registers' deltas (largest remainder, section 4: ties by the
  // larger delta, then period order: the ids '0'..'4' sort as PERIODS).
  const share = largestRemainder(d, weights, periods.map((p) => String(p)));
  const shareOf = new Float64Array(NP);
  periods.forEach((p, j) => (shareOf[p] = share[j]));
  // Rule 4: only a period with energy (D_p > 0) can have it divided between days or
  // occupants; a period whose share is 0 Wh is 0 in each of its cells, exactly.
  for (let p = 0; p < NP; p++) if (shareOf[p] === 0) spread[p] = 0;

  // The register where the period changes: E0 + each period's share of its energy so far,
  // linear in that period's elapsed time (round half up, as section 3).
  const out: RegisterSplit = { time: [], wh: [], est: [], mult };
  const sofar = new Float64Array(NP);
  let current = -1;
  for (let k = 0; k < cal.segments; k++) {
    const lo = Math.max(cal.start[k], t0);
    const hi = Math.min(cal.start[k + 1], t1);
    if (hi <= lo) continue;
    const p = cal.period[k];
    if (current >= 0 && p !== current) {
      let e = e0;
      for (const q of periods) e += energyAt(shareOf[q], 0, len[q], sofar[q]);
      out.time.push(lo);
      out.wh.push(e);
      out.est.push(spread[current]);
    }
    current = p;
    sofar[p] += hi - lo;
  }
  out.est.push(spread[current]);
  return out;
}
