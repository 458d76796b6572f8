import { randomBytes } from 'node:crypto';
import { parseReadingLines } from '../influx/reading-lines.ts';
import type { RedisClient } from './redis.ts';
import { siteTag } from './redis.ts';

/**
 * A site's readings log (issue 15): a Redis stream to which every writer of `reading` points
 * appends the billing fields of each batch InfluxDB acknowledged (the collector's forwarder,
 * the scale soak's writer), so the rollup takes new readings from Redis instead of asking
 * InfluxDB for them again. At 100 sites of 1,000 meters the rollup's InfluxDB statements for
 * readings it had just been told about were half of each run (docs/scaling.md).
 *
 * The log is a copy, never the record: InfluxDB stays the truth, and the rollup reads it
 * (as before the log) whenever the log cannot prove it holds every reading written since
 * its position (workers/readings-cursor.ts). The proof is a chain: each entry names the
 * entry its writer appended before it (`prev`). An entry whose `prev` is neither at or
 * before the reader's position nor read in the same pass means a missing entry; so does a
 * `prev` of `new` (a writer that started: an earlier process may have died between its
 * InfluxDB write and its append) or `?` (an append that failed or was dropped, or a batch
 * InfluxDB refused in part), and the reader falls back to InfluxDB for the whole batch of
 * meters.
 *
 * Entry fields: `w` the writer (random per process), `prev`, and `r` the readings, one per
 * line `meter \t time \t wh \t t1 \t t2 \t t3 \t t4` (ms, Wh; empty where the line had no such
 * integer field). Meter ids hold no tab or newline (core/site/schema.ts).
 */

/**
 * Entries kept per site at most (XADD MAXLEN ~). The rollup trims what it has read (XTRIM
 * MINID after each run of a one-batch site), so this bounds Redis only while the rollup lags:
 * about 5 minutes at a batch a second. A rollup further behind finds the log trimmed past
 * its position and reads InfluxDB once (exact, only slower), so a short log costs nothing
 * but that, and Redis holds at most 300 entries of at most LOG_ENTRY_MAX_READINGS a site.
 */
export const READINGS_LOG_MAX = 300;

/**
 * Readings an entry holds at most (the forwarder's largest batch, ~200 KB). A bigger one
 * breaks the chain instead, so the rollup reads it from InfluxDB in chunks as before the log.
 */
export const LOG_ENTRY_MAX_READINGS = 5000;

export function readingsLogKey(keyPrefix = 'submeter', site: string): string {
  return `${keyPrefix}:${siteTag(site)}:readings-log`;
}

/** Readings rows of one entry: meter, time, wh, then tariff registers 1-4 (undefined when absent). */
export type LoggedReading = readonly [meter: string, time: number, wh: number | undefined, ...reg: (number | undefined)[]];

export function formatReadings(rows: readonly LoggedReading[]): string {
  return rows.map((r) => r.map((v) => (v === undefined ? '' : String(v))).join('\t')).join('\n');
}

/** The rows of an entry's `r`, or undefined when one is not well formed (the reader then falls back). */
export function parseLoggedReadings(text: string): LoggedReading[] | undefined {
  if (text === '') return [];
  const out: LoggedReading[] = [];
  for (const line of text.split('\n')) {
    const f = line.split('\t');
    if (f.length !== 7 || f[0] === '') return undefined;
    const nums = f.slice(1).map((v) => (v === '' ? undefined : Number(v)));
    if (nums[0] === undefined || nums.some((n) => n !== undefined && !Number.isSafeInteger(n))) return undefined;
    out.push([f[0], nums[0], ...nums.slice(1)] as unknown as LoggedReading);
  }
  return out;
}

/** Appends in order, one at a time (the chain needs each entry's id before the next). */
export class ReadingsLogWriter {
  private readonly writer = randomBytes(6).toString('hex');
  /** The previous entry of this writer: `new` until the first append, `?` after a failure. */
  private readonly prev = new Map<string, string>();
  private chain: Promise<void> = Promise.resolve();
  private pending = 0;

  constructor(
    private readonly redis: Pick<RedisClient, 'xadd'>,
    private readonly keyPrefix: string | undefined,
    /** Appends waiting at most (Redis away): past it a batch is dropped and the chain broken (`?`). */
    private readonly maxPending = 1000,
  ) {}

  /**
   * Logs the `reading` lines of a body InfluxDB acknowledged (other lines ignored), each to
   * its site's log. A body that cannot be read for certain breaks `site`'s chain instead, so
   * its readers go to InfluxDB.
   */
  written(site: string, body: string): Promise<void> {
    const rows = parseReadingLines(body);
    if (rows === undefined) return this.broken(site);
    const bySite = new Map<string, LoggedReading[]>();
    for (const r of rows) {
      const list = bySite.get(r.site);
      const row = [r.meter, r.time, r.wh, ...r.reg] as LoggedReading;
      if (list) list.push(row);
      else bySite.set(r.site, [row]);
    }
    for (const [s, list] of bySite) this.append(s, list);
    return this.chain;
  }

  /** Rows of one site (a writer that builds them itself). */
  append(site: string, rows: readonly LoggedReading[]): Promise<void> {
    // Redis away and the queue full, or a backlog's batch: not logged, and the chain says so.
    if (this.pending >= this.maxPending || rows.length > LOG_ENTRY_MAX_READINGS) return this.broken(site);
    this.pending++;
    const text = formatReadings(rows);
    return this.step(async () => {
      const prev = this.prev.get(site) ?? 'new';
      try {
        const id = await this.redis.xadd(readingsLogKey(this.keyPrefix, site), 'MAXLEN', '~', READINGS_LOG_MAX, '*', 'w', this.writer, 'prev', prev, 'r', text);
        this.prev.set(site, id ?? '?');
      } catch {
        // Maybe appended, maybe not: the next entry cannot vouch for what is before it.
        this.prev.set(site, '?');
      } finally {
        this.pending--;
      }
    });
  }

  /** Readings of the site may have reached InfluxDB without an entry (refused in part, unreadable): the next entry says so. */
  broken(site: string): Promise<void> {
    return this.step(async () => {
      this.prev.set(site, '?');
    });
  }

  /** In call order: a break after appends still waiting must not be undone by them. */
  private step(f: () => Promise<void>): Promise<void> {
    this.chain = this.chain.then(f);
    return this.chain;
  }
}

/** For a writer that does not log its readings (an import): readers of the site go to InfluxDB once. */
export async function breakReadingsLog(redis: Pick<RedisClient, 'xadd'>, keyPrefix: string | undefined, site: string): Promise<void> {
  await redis.xadd(readingsLogKey(keyPrefix, site), 'MAXLEN', '~', READINGS_LOG_MAX, '*', 'w', 'break', 'prev', '?', 'r', '');
}
