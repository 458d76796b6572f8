import type { Site } from '../core/index.ts';
import type { InfluxV1, Series } from '../influx/client.ts';
import type { RedisClient } from '../lib/redis.ts';
import { quoteString } from '../influx/client.ts';
import { F, M, T } from '../influx/schema.ts';
import { redisKeys } from './keys.ts';
import { stampBucketWrites } from './api-stamps.ts';

/**
 * A site's bucket change log and the balance's trailing-window cache (issue 15).
 *
 * InfluxDB 1.x pays per series a statement opens: the balance's bucket sums of a site of
 * 1,000 meters (~3,000 series) cost ~70 ms however short the range, on every run of every
 * site, and at 100 sites that was the limit of the live balance. Every writer of
 * `tou_bucket` (the rollup, the settlement's rewrite, a rollup restart's delete) appends the
 * meters it wrote to the site's log (a Redis stream) after writing; each worker process
 * keeps the trailing window's rows per site and, on its next run, reads again by name only
 * the meters logged since (InfluxDB then opens only their series). The rows are exactly the
 * statement's: a bucket of a meter not logged since the cache read has not changed.
 *
 * The whole site is read again when the window's 15-minute slot moves (the buckets leaving
 * its start, and a bucket stamped ahead of the clock entering its end, are in no log), when
 * the pieces of the window change (a move, a reload), when more than NAMED_MAX (500) meters
 * changed, or when the log was trimmed past the process's position.
 */

/** Entries kept per site (XADD MAXLEN ~): minutes of rollup runs at 100 a minute. */
const LOG_MAX = 5000;
/** Meters read again by name at most, in statements of NAMED_CHUNK (naming costs InfluxDB more than linearly: workers/rollup.ts); more: the site's statement. */
const NAMED_MAX = 500;
const NAMED_CHUNK = 100;
const SLOT_MS = 15 * 60_000;

/** Appends the meters whose buckets were written (or deleted); after the write, so a reader that missed the log entry reads the data at its next run. */
export async function logBucketWrites(redis: RedisClient, keyPrefix: string, site: string, meters: Iterable<string>): Promise<void> {
  const ids = [...new Set(meters)];
  if (ids.length === 0) return;
  // With the API's stamps of the meters (workers/api-stamps.ts): its stored usage and advice move with them.
  await Promise.all([redis.xadd(redisKeys(keyPrefix, site).bucketLog, 'MAXLEN', '~', LOG_MAX, '*', 'm', ids.join('\n')), stampBucketWrites(redis, keyPrefix, site, ids)]);
}

interface Entry {
  /** The site file the rows were read for: a reload reads the whole site again. */
  readonly site: Site;
  readonly key: string;
  /** The last log entry applied. */
  pos: string;
  /** Per piece, its statement's series (one per meter, period). */
  readonly series: Map<string, Series>[];
}

export interface WindowPiece {
  readonly a: number;
  readonly b: number;
}

/** Meter ids are tags; '\n' cannot be in one (the site file refuses control characters), so it separates them in a log entry. */
export class TrailingBucketCache {
  private readonly sites = new Map<string, Entry>();
  /** Statements sent by the last call (tests: the named path is taken). */
  lastRead: 'site' | 'named' | 'none' = 'none';

  constructor(
    private readonly redis: RedisClient,
    private readonly keyPrefix: string,
  ) {}

  /**
   * The series of `SELECT sum(wh) ... WHERE site AND time >= a AND time < b GROUP BY meter,
   * period, time(1d) fill(none) tz(...)` for each piece, as InfluxDB answers it now (up to
   * the writes whose log entries are in).
   */
  async pieces(influx: InfluxV1, site: Site, pieces: readonly WindowPiece[]): Promise<Series[][]> {
    const logKey = redisKeys(this.keyPrefix, site.id).bucketLog;
    // Which buckets the window holds: buckets start on slot bounds (or at a move, an inner
    // bound), so the first one it holds and the last one stand for its outer bounds, which
    // move with every run; the inner bounds are exact.
    const first = Math.ceil(pieces[0].a / SLOT_MS);
    const lastSlot = Math.floor((pieces[pieces.length - 1].b - 1) / SLOT_MS);
    const key = `${first}|${lastSlot}|${pieces.map((p, i) => `${i === 0 ? '' : p.a}-${i === pieces.length - 1 ? '' : p.b}`).join(',')}`;
    const hit = this.sites.get(site.id);
    let changed: Set<string> | undefined;
    let pos = hit?.pos;
    if (hit && hit.key === key && hit.site === site) {
      const [oldest, after] = await Promise.all([this.redis.xrange(logKey, '-', '+', 'COUNT', 1), this.redis.xrange(logKey, `(${hit.pos}`, '+')]);
      // Trimmed past our position (or the log lost with Redis): entries may be missing.
      const trimmed = oldest.length === 0 || streamIdLess(hit.pos, oldest[0][0]);
      if (!trimmed) {
        changed = new Set();
        for (const [id, fields] of after) {
          pos = id;
          const m = fields[fields.indexOf('m') + 1];
          for (const meter of m ? m.split('\n') : []) changed.add(meter);
        }
        if (changed.size > NAMED_MAX) changed = undefined;
      }
    }
    const tz = quoteString(site.timezone);
    const sq = quoteString(site.id);
    const statement = (p: WindowPiece, names?: readonly string[]) =>
      `SELECT sum(${F.wh}) FROM ${M.touBucket} WHERE ${T.site} = ${sq}${names ? ` AND (${names.map((id) => `${T.meter} = ${quoteString(id)}`).join(' OR ')})` : ''} AND time >= ${p.a}ms AND time < ${p.b}ms GROUP BY ${T.meter}, ${T.period}, time(1d) fill(none) tz(${tz})`;
    if (hit && changed) {
      this.lastRead = changed.size ? 'named' : 'none';
      if (changed.size) {
        const names = [...changed];
        const groups: string[][] = [];
        for (let i = 0; i < names.length; i += NAMED_CHUNK) groups.push(names.slice(i, i + NAMED_CHUNK));
        const res = await influx.queryRaw(pieces.flatMap((p) => groups.map((g) => statement(p, g))).join(';\n'));
        pieces.forEach((_, i) => {
          const bySeries = hit.series[i];
          for (const [k, s] of bySeries) if (changed!.has(s.tags?.[T.meter] ?? '')) bySeries.delete(k);
          for (let g = 0; g < groups.length; g++) for (const s of res[i * groups.length + g] ?? []) bySeries.set(seriesKey(s), s);
        });
      }
      hit.pos = pos!;
      return hit.series.map((m) => [...m.values()]);
    }
    // The whole site: the log's position first, so a write logged during the read is read again next time.
    this.lastRead = 'site';
    // An empty log gets an empty entry: a position to read from, whose trimming can be seen.
    const last = await this.redis.xrevrange(logKey, '+', '-', 'COUNT', 1);
    const mark = last[0]?.[0] ?? ((await this.redis.xadd(logKey, 'MAXLEN', '~', LOG_MAX, '*', 'm', '')) as string);
    const res = await influx.queryRaw(pieces.map((p) => statement(p)).join(';\n'));
    const series = pieces.map((_, i) => new Map((res[i] ?? []).map((s) => [seriesKey(s), s])));
    this.sites.set(site.id, { site, key, pos: mark, series });
    return series.map((m) => [...m.values()]);
  }
}

function seriesKey(s: Series): string {
  return `${s.tags?.[T.meter] ?? ''}\n${s.tags?.[T.period] ?? ''}`;
}

/** Stream ids "ms-seq": a < b. */
function streamIdLess(a: string, b: string): boolean {
  const [am, as] = a.split('-').map(Number);
  const [bm, bs] = b.split('-').map(Number);
  return am < bm || (am === bm && as < bs);
}
