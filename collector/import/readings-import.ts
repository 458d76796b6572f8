import { statSync } from 'node:fs';
import { addDays, parseReadingLine, parseReadingsHeader, zoneOf } from '../../core/index.ts';
import type { CsvHeader, Site } from '../../core/index.ts';
import type { InfluxV1 } from '../../influx/client.ts';
import { sampleLine, writeWithRetry } from '../../influx/lines.ts';
import { utf8Lines } from '../../lib/utf8-lines.ts';

export interface ImportProblem {
  /** 1-based line number in the file (the header is line 1). */
  readonly line: number;
  readonly message: string;
}

export interface ImportResult {
  /** Rows written to InfluxDB (acknowledged). */
  readonly written: number;
  /** Rows skipped: malformed, or for a meter not in the site file. */
  readonly skipped: number;
  readonly problems: readonly ImportProblem[];
  /** Meter ids in the file that the site file does not know, with their row counts. */
  readonly unknownMeters: Readonly<Record<string, number>>;
  /** Set when a write failed for good: rows from this line on were not written. */
  readonly stoppedAtLine?: number;
  /** Local dates (site zone) of the rows written, sorted: the days whose settlement they may change. */
  readonly days: readonly string[];
}

export interface ImportOptions {
  /** Rows per validated batch and write request. @defaultValue 5000 */
  readonly batchRows?: number;
  /** Called after each batch with bytes of the file consumed so far (progress bar). */
  readonly onProgress?: (bytes: number, written: number) => void;
  /** Keep at most this many problems in the result (counts stay exact). @defaultValue 1000 */
  readonly maxProblems?: number;
}

/**
 * Loads a readings CSV (billing.md section 1, parsed by the core's one line parser) into
 * InfluxDB as `reading` lines of the site. Every row is validated before its batch is
 * written: malformed rows and rows of unknown meters are reported with their line
 * number and left out; a batch is written only once all of its rows are known good, so
 * no row is ever half-written. Re-running an import is harmless: a row lands on the
 * same series and time and overwrites itself.
 */
export async function importReadings(site: Site, file: string, influx: InfluxV1, opts: ImportOptions = {}): Promise<ImportResult> {
  const batchRows = opts.batchRows ?? 5000;
  const maxProblems = opts.maxProblems ?? 1000;
  const meters = new Set(site.meters.map((m) => m.id));
  const problems: ImportProblem[] = [];
  const unknownMeters: Record<string, number> = {};
  let header: CsvHeader | undefined;
  let lineNo = 0;
  let bytes = 0;
  let written = 0;
  let skipped = 0;
  let batch: string[] = [];
  let batchFirstLine = 0;
  const days = new Set<string>();
  let batchDays = new Set<string>();
  // dateOf goes through Intl: look it up only when a row leaves the last row's day.
  const zone = zoneOf(site.timezone);
  let day = { date: '', start: 0, end: -1 };
  const dayOf = (t: number): string => {
    if (t < day.start || t >= day.end) {
      const date = zone.dateOf(t);
      day = { date, start: zone.midnight(date), end: zone.midnight(addDays(date, 1)) };
    }
    return day.date;
  };
  const problem = (line: number, message: string) => {
    skipped++;
    if (problems.length < maxProblems) problems.push({ line, message });
  };
  const flush = async () => {
    if (batch.length === 0) return;
    try {
      await writeWithRetry(influx, batch, 5, 300);
    } catch (err) {
      throw Object.assign(new Error(`writing rows from line ${batchFirstLine} failed: ${(err as Error).message}`), { stoppedAtLine: batchFirstLine });
    }
    written += batch.length;
    for (const d of batchDays) days.add(d);
    batchDays = new Set();
    batch = [];
    opts.onProgress?.(bytes, written);
  };

  statSync(file); // a missing file fails here with its name, before anything is written
  const lines = utf8Lines(file);
  try {
    for await (const next of lines) {
      lineNo = next.lineNo;
      bytes = next.bytes;
      const line = next.text;
      if (line === undefined) {
        // Never repaired with U+FFFD: a meter id that differs in one byte would become another.
        if (header === undefined) throw new Error(`${file}:${lineNo}: the header is not valid UTF-8 text`);
        problem(lineNo, 'line is not valid UTF-8 text');
        continue;
      }
      if (header === undefined) {
        const h = parseReadingsHeader(line);
        if (!h.ok) throw new Error(`${file}:1: ${h.error.message}`);
        header = h.value;
        continue;
      }
      if (line.trim() === '') continue;
      const r = parseReadingLine(line, header);
      if (!r.ok) {
        problem(lineNo, `${r.error.field}: ${r.error.message}`);
        continue;
      }
      if (!meters.has(r.value.meter)) {
        unknownMeters[r.value.meter] = (unknownMeters[r.value.meter] ?? 0) + 1;
        problem(lineNo, `meter '${r.value.meter}' is not in site ${site.id}`);
        continue;
      }
      if (batch.length === 0) batchFirstLine = lineNo;
      // The tariff registers too (billing.md section 2 rule 5): the stored readings bill as the file does.
      const { meter, time, wh, tariffWh } = r.value;
      batch.push(sampleLine(site.id, { meter, time, wh, ...(tariffWh ? { tariffWh } : {}) }));
      batchDays.add(dayOf(r.value.time));
      if (batch.length >= batchRows) await flush();
    }
    if (header === undefined) throw new Error(`${file}: empty file (expected a header time,meter,kwh)`);
    await flush();
  } catch (err) {
    const stoppedAtLine = (err as { stoppedAtLine?: number }).stoppedAtLine;
    if (stoppedAtLine === undefined) throw err;
    return { written, skipped, problems, unknownMeters, stoppedAtLine, days: [...days].sort() };
  } finally {
    await lines.return(undefined);
  }
  return { written, skipped, problems, unknownMeters, days: [...days].sort() };
}
