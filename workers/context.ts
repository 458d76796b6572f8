import type { RawSeries, Site } from '../core/index.ts';
import type { InfluxV1 } from '../influx/client.ts';
import { quoteString } from '../influx/client.ts';
import { F, M, T } from '../influx/schema.ts';
import type { Logger } from '../lib/logger.ts';
import type { RedisClient } from '../lib/redis.ts';
import type { Queues } from './queues.ts';
import { joinSeries, READING_FIELDS, seriesOfRows } from './reading-series.ts';

/**
 * What every processor gets: the validated sites, the InfluxDB adapter, Redis for the
 * workers' small state, the queues (to enqueue follow-up jobs) and a clock. The clock is
 * injected so tests and the crash test can replay a month in seconds.
 */
export interface WorkerContext {
  readonly sites: ReadonlyMap<string, Site>;
  readonly influx: InfluxV1;
  readonly redis: RedisClient;
  readonly queues: Queues;
  readonly log: Logger;
  /** Redis key prefix of the workers' own state. */
  readonly keyPrefix: string;
  /** BullMQ base prefix (each queue adds its own hash tag; a site's relay queue its site's tag). */
  readonly queuePrefix: string;
  /** Epoch ms now. */
  now(): number;
  readonly tuning: Tuning;
}

export interface Tuning {
  /**
   * Raw readings loaded before a settlement day, so the counter rules (spike runs, the
   * baseline) see the same history the offline bill sees. @defaultValue 24 h
   */
  readonly settleLookbackMs: number;
  /** Readings loaded after a day's end, for the interval that crosses midnight. @defaultValue 6 h */
  readonly settleLookaheadMs: number;
  /**
   * Raw readings one rollup run takes per meter; a meter with more (its first run, a reset
   * after late data) continues in the next run, queued at once. @defaultValue 2000
   */
  readonly rollupMaxReadings: number;
  /**
   * Raw readings one rollup run takes over all its meters (their first runs, a catch-up after
   * downtime): each meter's share is this / the run's meters, at least 100 and at most
   * rollupMaxReadings, so a batch of 2,000 meters does not parse millions of readings at once.
   * @defaultValue 400,000
   */
  readonly rollupRunReadings: number;
  /** Days back that the rollup re-checks for late readings (fingerprints). @defaultValue 3 */
  readonly lateWindowDays: number;
  /**
   * How often the late-data fingerprints are compared. The comparison reads every reading
   * series of the batch's days (~0.2-0.7 s of InfluxDB for 1,000 meters); at every minute and
   * 100 sites that was more than a core, so late readings are found within five minutes
   * (they are late already; announced new readings are not waiting for this).
   * @defaultValue 5 min
   */
  readonly lateCheckEveryMs: number;
  /**
   * How often the safety tick reads a batch's synced meters from InfluxDB although the
   * readings log had nothing for them (workers/readings-cursor.ts): the net for a writer
   * that writes readings without logging them. Between, the tick reads only meters the log
   * cannot vouch for; at 100 sites a read of every site's meters on every 30 s tick kept
   * the rollup queue a tick behind. @defaultValue 5 min
   */
  readonly rollupResyncEveryMs: number;
  /** Settlement grace after local midnight (a day is due once midnight + grace has passed). @defaultValue 15 min */
  readonly settlementGraceMs: number;
  /**
   * Expiry of the per-site settlement lock, renewed before each day; a SIGKILLed holder
   * blocks its site at most this long. @defaultValue 120 s
   */
  readonly settleLockMs: number;
  /**
   * Settle each meter's day from its 15-minute buckets where they are exact (issue 15,
   * core/settle/bucket-day.ts), from raw readings elsewhere; false: every meter from raw
   * readings (the benchmark's baseline). @defaultValue true
   */
  readonly settleFromBuckets: boolean;
}

export const DEFAULT_TUNING: Tuning = {
  settleLookbackMs: 24 * 3_600_000,
  settleLookaheadMs: 6 * 3_600_000,
  rollupMaxReadings: 2000,
  rollupRunReadings: 400_000,
  lateWindowDays: 3,
  lateCheckEveryMs: 300_000,
  rollupResyncEveryMs: 300_000,
  settlementGraceMs: 15 * 60_000,
  settleLockMs: 120_000,
  settleFromBuckets: true,
};

/** The site of a job; an unknown site is bad data (the job can never succeed). */
export function siteOf(ctx: WorkerContext, id: string): Site {
  const s = ctx.sites.get(id);
  if (!s) throw new UnknownSiteError(`unknown site ${JSON.stringify(id)}: not in this worker's site files`);
  return s;
}

export class UnknownSiteError extends Error {
  override name = 'UnknownSiteError';
}

/** InfluxQL regex matching exactly these ids. */
export function idRegex(ids: readonly string[]): string {
  return `/^(${ids.map((i) => i.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|')})$/`;
}

/**
 * Raw readings of some meters in [fromMs, toMs), sorted per meter (equal instants kept:
 * the counter rules decide about them). Integer Wh as the collector wrote them, with the
 * tariff registers read with them (billing.md section 2 rule 5).
 */
export async function loadRaw(influx: InfluxV1, site: string, meters: readonly string[] | 'all', fromMs: number, toMs: number): Promise<Map<string, RawSeries>> {
  const out = new Map<string, RawSeries>();
  if (meters.length === 0 || toMs <= fromMs) return out;
  // 'all' (settlement): no meter regex, which InfluxDB 1.x evaluates slowly for 1,000 ids.
  const which = meters === 'all' ? '' : ` AND ${T.meter} =~ ${idRegex(meters)}`;
  const [series = []] = await influx.queryRaw(
    `SELECT ${READING_FIELDS} FROM ${M.reading} WHERE ${T.site} = ${quoteString(site)}${which} AND time >= ${fromMs}ms AND time < ${toMs}ms GROUP BY ${T.meter}`,
  );
  for (const s of series) {
    const meter = s.tags?.meter;
    if (!meter) continue;
    out.set(meter, seriesOfRows(s.columns, s.values));
  }
  return out;
}

/**
 * All meters' raw readings in [fromMs, toMs) plus each meter's last reading before it and
 * first at or after it (searched within `edgeMs`), sorted per meter: the settlement's
 * window, so an interval reaching into it from a silent meter is spread like the offline
 * bill spreads it.
 */
export async function loadWindow(influx: InfluxV1, site: string, fromMs: number, toMs: number, edgeMs = 400 * 86_400_000, meters: readonly string[] | 'all' = 'all'): Promise<Map<string, RawSeries>> {
  const out = await loadRaw(influx, site, meters, fromMs, toMs);
  const wanted = meters === 'all' ? undefined : new Set(meters);
  const sq = quoteString(site);
  // The edge readings as whole rows (not last()/first() of one field): a gap reaching into
  // the window is spread by the tariff registers read at its ends (billing.md section 2 rule 5).
  const [before = [], after = []] = await influx.queryRaw(
    [
      `SELECT ${READING_FIELDS} FROM ${M.reading} WHERE ${T.site} = ${sq} AND time < ${fromMs}ms AND time >= ${fromMs - edgeMs}ms GROUP BY ${T.meter} ORDER BY time DESC LIMIT 1`,
      `SELECT ${READING_FIELDS} FROM ${M.reading} WHERE ${T.site} = ${sq} AND time >= ${toMs}ms AND time < ${toMs + edgeMs}ms GROUP BY ${T.meter} LIMIT 1`,
    ].join(';\n'),
  );
  for (const s of [...before, ...after]) {
    const meter = s.tags?.meter;
    if (!meter || (wanted && !wanted.has(meter))) continue;
    out.set(meter, joinSeries(out.get(meter) ?? EMPTY_SERIES, seriesOfRows(s.columns, s.values)));
  }
  return out;
}

export const EMPTY_SERIES: RawSeries = { time: new Float64Array(0), wh: new Float64Array(0) };

/** Writes lines in chunks (one HTTP request each): InfluxDB answers 204 only after its WAL holds them. */
export async function writeChunked(influx: InfluxV1, lines: readonly string[], chunk = 5000): Promise<void> {
  for (let i = 0; i < lines.length; i += chunk) await influx.write(lines.slice(i, i + chunk));
}
