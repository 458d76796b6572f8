import type { Site } from '../site/model.ts';
import { addDays, epochDay, fromEpochDay } from './local-date.ts';
import type { LocalDate } from './local-date.ts';
import { PERIODS, scheduleEntryOn, versionIndexOn } from './schedule.ts';
import type { Period, PeriodSpan } from './schedule.ts';
import { zoneOf } from './zone.ts';

/**
 * The cut calendar of billing.md section 3: the UTC timeline from local midnight of `from`
 * to local midnight of `to`, cut at every TOU period boundary and local midnight (and
 * optionally a wall-clock grid, e.g. the workers' 15-minute buckets). Tariff version
 * changes and bill edges fall on local midnights, so they are cuts too.
 *
 * Built on stretches of constant UTC offset: inside one, wall time = UTC + offset, so a
 * wall-clock boundary maps to exactly one instant. A fall-back hour is walked twice and each
 * pass gets the period its wall time names; a skipped hour has no instants at all.
 */
export interface TouCalendar {
  readonly timezone: string;
  /** Local dates [from, to). */
  readonly days: readonly LocalDate[];
  /** Segment k is [start[k], start[k+1]); length = segments + 1. */
  readonly start: Float64Array;
  /** Index into `days` of each segment. */
  readonly day: Int32Array;
  /** Index into PERIODS of each segment. */
  readonly period: Uint8Array;
  readonly segments: number;
}

export const PERIOD_INDEX: Readonly<Record<Period, number>> = Object.fromEntries(PERIODS.map((p, i) => [p, i])) as Record<Period, number>;

/** A date with no tariff in force has one period, flat (docs/billing.md amendment A1). */
const NO_TARIFF_LAYOUT: readonly PeriodSpan[] = [{ from: 0, to: 1440, period: 'flat' }];

/**
 * The site-wide period layout of a local date: the first tariff (by file order) with a
 * version in force; the site loader has checked all tariffs in force agree (section 1).
 */
export function layoutOn(site: Site, date: LocalDate): readonly PeriodSpan[] {
  for (const t of site.tariffs) {
    const vi = versionIndexOn(t, date);
    if (vi < 0) continue;
    const entry = scheduleEntryOn(t.versions[vi], date, site.holidays);
    if (entry) return entry.periods;
  }
  return NO_TARIFF_LAYOUT;
}

const DAY = 86_400_000;
const MIN = 60_000;

/**
 * @param gridMinutes extra wall-clock cuts every so many minutes after local midnight
 *   (0 = none). Extra cuts never change a day-period cell's energy: pieces telescope.
 */
export function buildCalendar(site: Site, from: LocalDate, to: LocalDate, gridMinutes = 0): TouCalendar {
  const d0 = epochDay(from);
  const d1 = epochDay(to);
  if (d0 === undefined || d1 === undefined || d1 < d0) throw new RangeError(`bad calendar range ${from}..${to}`);
  const zone = zoneOf(site.timezone);
  const days: LocalDate[] = [];
  for (let d = d0; d < d1; d++) days.push(fromEpochDay(d));
  if (d1 === d0) return { timezone: site.timezone, days, start: new Float64Array(1), day: new Int32Array(0), period: new Uint8Array(0), segments: 0 };
  const a = zone.midnight(from);
  const b = zone.midnight(to);
  const layouts = new Map<number, readonly PeriodSpan[]>();
  const layout = (epoch: number) => {
    let l = layouts.get(epoch);
    if (!l) {
      l = layoutOn(site, fromEpochDay(epoch));
      layouts.set(epoch, l);
    }
    return l;
  };
  // Wall-clock minutes after midnight where a segment starts, per layout (memoised).
  const cutsOf = new Map<readonly PeriodSpan[], number[]>();
  const cutMinutes = (l: readonly PeriodSpan[]) => {
    let c = cutsOf.get(l);
    if (!c) {
      const s = new Set<number>([0]);
      for (const p of l) s.add(p.from);
      if (gridMinutes > 0) for (let m = 0; m < 1440; m += gridMinutes) s.add(m);
      c = [...s].sort((x, y) => x - y);
      cutsOf.set(l, c);
    }
    return c;
  };

  const starts: number[] = [];
  const dayIdx: number[] = [];
  const periodIdx: number[] = [];
  const push = (utc: number, wall: number) => {
    const ep = Math.floor(wall / DAY);
    const minute = Math.floor((wall - ep * DAY) / MIN);
    const l = layout(ep);
    let p = l[l.length - 1].period;
    for (const s of l) {
      if (minute >= s.from && minute < s.to) {
        p = s.period;
        break;
      }
    }
    const di = Math.min(Math.max(ep - d0, 0), days.length - 1);
    const pi = PERIOD_INDEX[p];
    // Merge with the previous segment when nothing changes (e.g. a DST change in a period).
    const k = starts.length - 1;
    if (k >= 0 && dayIdx[k] === di && periodIdx[k] === pi && gridMinutes === 0) return;
    starts.push(utc);
    dayIdx.push(di);
    periodIdx.push(pi);
  };

  const edges = [a, ...zone.transitions(a + 1, b), b];
  for (let s = 0; s + 1 < edges.length; s++) {
    const sa = edges[s];
    const sb = edges[s + 1];
    const off = zone.offsetAt(sa);
    const wa = sa + off;
    const wb = sb + off;
    push(sa, wa);
    for (let ep = Math.floor(wa / DAY); ep * DAY < wb; ep++) {
      for (const m of cutMinutes(layout(ep))) {
        const w = ep * DAY + m * MIN;
        if (w > wa && w < wb) push(w - off, w);
      }
    }
  }
  const n = starts.length;
  const start = new Float64Array(n + 1);
  start.set(starts);
  start[n] = b;
  return { timezone: site.timezone, days, start, day: Int32Array.from(dayIdx), period: Uint8Array.from(periodIdx), segments: n };
}

/** Local dates [from, to) as a list (helper for callers iterating settlement days). */
export function datesBetween(from: LocalDate, to: LocalDate): LocalDate[] {
  const out: LocalDate[] = [];
  for (let d = from; d < to; d = addDays(d, 1)) out.push(d);
  return out;
}
