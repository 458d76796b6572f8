import type { LastInterval, RawSeries } from '../core/index.ts';

/**
 * Each meter's last two raw readings, kept by the rollup as it reads them (Redis hash
 * `lastReadings`, meter -> "t0,wh0,t1,wh1", oldest first), so the balance job has every
 * meter's last interval (billing.md section 5: power now and cost per hour) without a
 * statement over the site's reading series: InfluxDB 1.x costs such a statement per series
 * (~45 ms for a site of 1,000 meters, however short its range), a third of the balance job's
 * reads. A meter missing from the hash (a rollup that has not run since, a Redis that lost
 * it) is read from InfluxDB as before (workers/live-figures.ts).
 */

export type LastTwo = readonly [t0: number, wh0: number, t1: number, wh1: number];

export function parseLastTwo(text: string | null | undefined): LastTwo | undefined {
  if (!text) return undefined;
  const p = text.split(',').map(Number);
  return p.length === 4 && p.every(Number.isFinite) && p[0] < p[2] ? [p[0], p[1], p[2], p[3]] : undefined;
}

/**
 * The last two readings after a run that read `series` (time order) on top of `stored`: the
 * two newest of both (the series' reading wins at an equal instant), undefined when that is
 * the stored pair or fewer than two readings are known. A reset re-reading older history
 * leaves a newer stored pair as it is, and a late reading between the stored two takes the
 * older one's place when it is read. `prev`: with no stored pair, the newest raw reading
 * read before this run when the caller knows it (a meter that read once a run would never
 * make a pair from its runs alone).
 */
export function nextLastTwo(stored: LastTwo | undefined, series: RawSeries, prev?: readonly [number, number]): LastTwo | undefined {
  const at = new Map<number, number>();
  if (stored) {
    at.set(stored[0], stored[1]);
    at.set(stored[2], stored[3]);
  } else if (prev) at.set(prev[0], prev[1]);
  // The series' two newest instants (InfluxDB keeps one point per instant; kept general).
  const own = new Map<number, number>();
  for (let k = series.time.length - 1; k >= 0 && (own.size < 2 || own.has(series.time[k])); k--) if (!own.has(series.time[k])) own.set(series.time[k], series.wh[k]);
  for (const [t, wh] of own) at.set(t, wh);
  const times = [...at.keys()].sort((a, b) => a - b).slice(-2);
  if (times.length < 2) return undefined;
  const next: LastTwo = [times[0], at.get(times[0])!, times[1], at.get(times[1])!];
  return stored && next.every((v, i) => v === stored[i]) ? undefined : next;
}

export function lastTwoText(p: LastTwo): string {
  return p.join(',');
}

/**
 * The last interval as the InfluxDB statement would give it at `now` (the two newest readings
 * in (now - 25 h, now], none when the newer is an hour old or more): 'ask' when the pair
 * cannot tell (its newer reading is after `now`: the statement would take older ones).
 */
export function lastIntervalAt(p: LastTwo, now: number): LastInterval | undefined | 'ask' {
  if (p[2] > now) return 'ask';
  if (p[2] <= now - 3_600_000 || p[0] <= now - 25 * 3_600_000) return undefined;
  return { wh: p[3] - p[1], ms: p[2] - p[0], at: p[2] };
}
