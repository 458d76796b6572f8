import { createWriteStream } from 'node:fs';
import type { Site } from '../core/index.ts';
import { simulateReadings } from './load-model.ts';
import type { ReadingRow, SimulateReadingsOptions } from './load-model.ts';

/**
 * Simulated history as a readings CSV in billing.md's format (section 1, "Readings"):
 * header `time,meter,kwh,kw,kwh_t1..kwh_t4`, RFC 3339 UTC times, `kwh` the cumulative
 * register with exactly 3 decimals (integer Wh, so no rounding happens on import), `kw` an
 * extra column billing ignores, and a DL/T 645 meter's tariff registers 1..4 (empty for
 * other meters), which bill a gap (billing.md section 2 rule 5). What the demo imports to
 * have history before the collector starts.
 */

export const READINGS_CSV_HEADER = 'time,meter,kwh,kw,kwh_t1,kwh_t2,kwh_t3,kwh_t4';

/** Integer Wh as kWh text with exactly 3 decimals, by integer arithmetic (no float formatting). */
export function whToKwhText(wh: number): string {
  if (!Number.isInteger(wh) || wh < 0) throw new RangeError(`not a non-negative integer Wh: ${wh}`);
  return `${Math.floor(wh / 1000)}.${String(wh % 1000).padStart(3, '0')}`;
}

export function readingCsvLine(r: ReadingRow): string {
  const t = r.tariffWh;
  const regs = ([1, 2, 3, 4] as const).map((n) => (t?.[n] === undefined ? '' : whToKwhText(t[n]))).join(',');
  return `${new Date(r.time).toISOString()},${r.meter},${whToKwhText(r.wh)},${whToKwhText(r.w)},${regs}`;
}

/** Writes simulateReadings(site, opts) to a CSV file; resolves with the number of rows. */
export async function writeReadingsCsv(site: Site, opts: SimulateReadingsOptions, path: string): Promise<number> {
  const out = createWriteStream(path);
  // events.once would reject with the bare error: wrap it so the message names the file.
  const failed = new Promise<never>((_, reject) => out.once('error', (err) => reject(new Error(`cannot write readings CSV ${path}: ${err.message}`))));
  failed.catch(() => {});
  let n = 0;
  let chunk = `${READINGS_CSV_HEADER}\n`;
  for (const r of simulateReadings(site, opts)) {
    chunk += `${readingCsvLine(r)}\n`;
    n++;
    if (chunk.length > 1 << 16) {
      if (!out.write(chunk)) await Promise.race([failed, new Promise<void>((r) => out.once('drain', () => r()))]);
      chunk = '';
    }
  }
  out.end(chunk);
  await Promise.race([failed, new Promise<void>((r) => out.once('finish', () => r()))]);
  return n;
}
