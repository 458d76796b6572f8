import { TARIFF_REGISTERS } from '../core/index.ts';
import type { RawSeries } from '../core/index.ts';
import { F } from '../influx/schema.ts';
import { parseLoggedReadings, READINGS_LOG_MAX, readingsLogKey } from '../lib/readings-log.ts';
import type { RedisClient } from '../lib/redis.ts';
import { redisKeys } from './keys.ts';
import { seriesOfRows } from './reading-series.ts';

/**
 * The rollup's side of a site's readings log (lib/readings-log.ts): each rollup batch keeps a
 * position in the log and takes the readings of the entries after it, when the log can
 * prove those are all the readings written since (the chain of `prev` ids). When it cannot
 * (no position yet, trimmed past it, a writer that started, a failed or refused append, an
 * import that does not log), the run is a `gap` run and reads every meter of the batch from
 * InfluxDB as before the log, from a log position taken before its InfluxDB statements, so
 * every entry up to that position was written to InfluxDB before the statement read it.
 *
 * Which meters may take their readings from the log: a meter is `synced` to a batch (its
 * rollup state names the batch) once a run of that batch read it from InfluxDB in full (no
 * answer cut at the run's limit) after reading the log, or took its readings from the log;
 * then every reading of it written after its position is in an entry after the batch's
 * position. A reset (late readings, a site change) makes it unsynced again.
 */

/** Entries a run reads at most (a drained spool logs ~5,000 readings an entry): the rest next run. */
export const LOG_ENTRIES_PER_RUN = 100;

const MARK = 'mark';

/** The gap of a batch's first run (or a lost position): no meter is synced, so it reads only the meters asked for. */
export const NO_POSITION = 'no position in the log yet';

export interface LogRead {
  /** The log cannot vouch for the readings since the position: read the batch from InfluxDB. */
  readonly gap: string | undefined;
  /** Readings of the entries read, per meter (when not a gap). */
  readonly readings: Map<string, RawSeries>;
  /** The position to store with the run's states. */
  readonly next: string;
  /**
   * The position's epoch: the entry at which the batch first took a position. A meter synced
   * names it (with the batch), so a position lost and taken again (Redis data lost, the hash
   * deleted) vouches for no meter synced before.
   */
  readonly epoch: string;
  /** Entries are left after `next` (the run read LOG_ENTRIES_PER_RUN). */
  readonly more: boolean;
  readonly entries: number;
}

/** Stream ids "ms-seq": a <= b. */
function idLE(a: string, b: string): boolean {
  const [am, as] = a.split('-').map(Number);
  const [bm, bs] = b.split('-').map(Number);
  return am < bm || (am === bm && as <= bs);
}

function cursorKey(keyPrefix: string | undefined, site: string): string {
  return redisKeys(keyPrefix, site).rollupLogPosition;
}

/** The hash field under which a batch keeps its position (and a synced meter names its batch). */
export function batchKey(batch: number, batches: number): string {
  return `${batch}/${batches}`;
}

/** The hash and fields to store after the run, in the run's state transaction: the position and its epoch. */
export function logPosition(keyPrefix: string | undefined, site: string, batch: string, read: LogRead): [string, Record<string, string>] {
  return [cursorKey(keyPrefix, site), { [batch]: read.next, [`${batch}@`]: read.epoch }];
}

/** What a synced meter's state names: the batch and its position's epoch. */
export function syncTag(batch: string, read: LogRead): string {
  return `${batch}@${read.epoch}`;
}

const COLUMNS = ['time', F.wh, ...TARIFF_REGISTERS.map((n) => F.whTariff(n))];

/** Reads the entries after the batch's position. Before any InfluxDB statement of the run. */
export async function readReadingsLog(redis: RedisClient, keyPrefix: string | undefined, site: string, batch: string): Promise<LogRead> {
  const key = readingsLogKey(keyPrefix, site);
  const [cursor, epoch] = await redis.hmget(cursorKey(keyPrefix, site), batch, `${batch}@`);
  const empty = new Map<string, RawSeries>();
  if (cursor === null || epoch === null) {
    // No meter can be synced to a position that does not exist yet: a fresh epoch.
    const start = await lastOrMark(redis, key);
    return { gap: NO_POSITION, readings: empty, next: start, epoch: start, more: false, entries: 0 };
  }
  const [oldest, after] = await Promise.all([redis.xrange(key, '-', '+', 'COUNT', 1), redis.xrange(key, `(${cursor}`, '+', 'COUNT', LOG_ENTRIES_PER_RUN)]);
  const next = after.length ? after[after.length - 1][0] : cursor;
  const more = after.length === LOG_ENTRIES_PER_RUN;
  // Trimmed past the position, or the log lost with Redis: entries may be missing.
  if (oldest.length === 0) return { gap: 'the log is gone', readings: empty, next: await lastOrMark(redis, key), epoch, more: false, entries: 0 };
  if (!idLE(oldest[0][0], cursor)) return { gap: 'the log was trimmed past the position', readings: empty, next, epoch, more, entries: after.length };
  const read = new Set<string>();
  // Per meter: time -> [wh, t1..t4], a later entry's fields over an earlier one's (InfluxDB keeps one point per time, fields merged).
  const rows = new Map<string, Map<number, (number | undefined)[]>>();
  for (const [id, flat] of after) {
    const f: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i]] = flat[i + 1];
    read.add(id);
    if (f.w === MARK) continue;
    const prev = f.prev;
    if (prev === undefined || prev === 'new' || prev === '?' || !/^\d+-\d+$/.test(prev) || !(idLE(prev, cursor) || read.has(prev))) {
      return { gap: prev === 'new' ? 'a writer started' : `an entry is missing before ${id}`, readings: empty, next, epoch, more, entries: after.length };
    }
    const logged = parseLoggedReadings(f.r ?? '');
    if (!logged) return { gap: `entry ${id} is not readable`, readings: empty, next, epoch, more, entries: after.length };
    for (const [meter, time, ...fields] of logged) {
      let m = rows.get(meter);
      if (!m) rows.set(meter, (m = new Map()));
      const had = m.get(time);
      m.set(time, had ? fields.map((v, i) => v ?? had[i]) : fields);
    }
  }
  const readings = new Map<string, RawSeries>();
  for (const [meter, m] of rows) readings.set(meter, seriesOfRows(COLUMNS, [...m].map(([t, fs]) => [t, ...fs])));
  return { gap: undefined, readings, next, epoch, more, entries: after.length };
}

/** The log's last entry id, or a mark appended to an empty log (a position whose trimming can be seen). */
async function lastOrMark(redis: RedisClient, key: string): Promise<string> {
  const last = await redis.xrevrange(key, '+', '-', 'COUNT', 1);
  if (last[0]) return last[0][0];
  return (await redis.xadd(key, 'MAXLEN', '~', READINGS_LOG_MAX, '*', 'w', MARK, 'prev', '?', 'r', ''))!;
}
