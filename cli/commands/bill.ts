import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import type { Command } from 'commander';
import type { PaymentRow, ReadingStore, Site, MeterRowsData } from '../../core/index.ts';
import { zoneOf as zoneOfSync } from '../../core/index.ts';

/**
 * `submeter bill`: the bill run of billing.md section 6 on stdout, nothing else there.
 * Diagnostics go to stderr; bad input exits non-zero naming file, line and field.
 */

export interface BillingInputOptions {
  site: string;
  readings: string;
  payments?: string;
  from: string;
  to: string;
}

const CHUNK = 8 << 20;
/**
 * With SUBMETER_BILL_THREADS=2, files above this are parsed in two halves on two threads
 * (below it the worker start-up, ~1-2 s, costs more than it saves). Off by default: on the
 * shared 2-core machine the second thread cost more CPU (33 s vs 25 s for 45M rows) and
 * was slower under load; one thread already needs well under the 60 s goal in CPU time.
 * SUBMETER_BILL_SPLIT_BYTES overrides the size (tests).
 */
const PARALLEL_BYTES = Number(process.env.SUBMETER_BILL_SPLIT_BYTES ?? 512 << 20);

/**
 * Streams a readings file into the core's compact store (no object per row). Optionally a
 * large file is split at a line boundary near its middle: a worker thread parses the second half
 * while this thread parses the first, and the worker's rows are merged in without a copy.
 * Row order does not matter to billing, so the result is the same as one pass.
 */
export async function readReadingsFile(site: Site, path: string, siteFile?: string): Promise<ReadingStore> {
  const { ReadingsScanner, BillingInputError } = await import('../../core/index.ts');
  const scanner = new ReadingsScanner(site, path);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    const { fileProblem } = await import('../../lib/site-file.ts');
    throw Object.assign(new Error(fileProblem('readings file', path, err)), { exitCode: 2 });
  }
  try {
    const size = fstatSync(fd).size;
    const buf = new Uint8Array(CHUNK);
    const split = siteFile && size > PARALLEL_BYTES && process.env.SUBMETER_BILL_THREADS === '2' ? splitPoint(fd, size) : undefined;
    const worker = split ? startHalf(siteFile!, path, split.header, split.at, size) : undefined;
    const end = split ? split.at : size;
    // A month of readings takes seconds to read: show progress on a terminal (cli-progress
    // draws nothing when stderr is not a TTY, so logs and CI output stay clean).
    const { SingleBar, Presets } = (await import('cli-progress')).default;
    const MiB = 1 << 20;
    const bar = end > 64 * MiB ? new SingleBar({ stream: process.stderr, format: 'reading {bar} {percentage}% | {value}/{total} MiB | {eta_formatted} left', hideCursor: true }, Presets.shades_classic) : undefined;
    bar?.start(Math.ceil(end / MiB), 0);
    try {
      for (let pos = 0; pos < end; ) {
        const n = readSync(fd, buf, 0, Math.min(CHUNK, end - pos), pos);
        if (n === 0) break;
        scanner.push(buf.subarray(0, n));
        pos += n;
        bar?.update(Math.floor(pos / MiB));
      }
    } finally {
      bar?.stop();
    }
    const store = scanner.end();
    if (worker) {
      const half = await worker;
      if (!half.ok) {
        throw new BillingInputError(half.detail, { file: path, ...(half.line !== undefined ? { line: scanner.line + half.line } : {}), ...(half.field ? { field: half.field } : {}) });
      }
      half.meters.forEach((m, i) => store.importMeter(i, m, half.minTime, half.maxTime));
    }
    return store;
  } finally {
    closeSync(fd);
  }
}

type HalfResult = { ok: true; meters: MeterRowsData[]; minTime: number; maxTime: number } | { ok: false; detail: string; line?: number; field?: string };

/** The header text and the start of the first line after the middle of the file. */
function splitPoint(fd: number, size: number): { header: string; at: number } | undefined {
  const probe = new Uint8Array(1 << 16);
  const n0 = readSync(fd, probe, 0, probe.length, 0);
  const eol = probe.subarray(0, n0).indexOf(10);
  if (eol < 0) return undefined;
  const header = new TextDecoder().decode(probe.subarray(0, eol));
  const mid = Math.floor(size / 2);
  const n = readSync(fd, probe, 0, probe.length, mid);
  const lf = probe.subarray(0, n).indexOf(10);
  if (lf < 0 || mid + lf + 1 >= size || mid <= eol) return undefined;
  return { header, at: mid + lf + 1 };
}

async function startHalf(siteFile: string, readings: string, header: string, start: number, end: number): Promise<HalfResult> {
  const { Worker } = await import('node:worker_threads');
  // Worker threads do not inherit tsx's loader: register it before importing the worker.
  const api = import.meta.resolve('tsx/esm/api');
  const target = new URL('./bill-readings-worker.ts', import.meta.url).href;
  const w = new Worker(`import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(target)}); })`, {
    eval: true,
    workerData: { siteFile, readings, header, start, end },
  });
  return new Promise<HalfResult>((resolve, reject) => {
    w.once('message', (m: HalfResult) => {
      void w.terminate();
      resolve(m);
    });
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`readings worker exited (${code}) before sending its rows`)));
  });
}

/**
 * Reads a payments file (small: whole file, line by line through the core's parser).
 * With a site, a payment for an unknown account is an error naming its line (section 1).
 */
export async function readPaymentsFile(path: string, site?: Site): Promise<PaymentRow[]> {
  const { parsePaymentsHeader, parsePaymentLine, BillingInputError } = await import('../../core/index.ts');
  const { firstInvalidUtf8Line } = await import('../../lib/utf8-lines.ts');
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    const { fileProblem } = await import('../../lib/site-file.ts');
    throw Object.assign(new Error(fileProblem('payments file', path, err)), { exitCode: 2 });
  }
  // Strict UTF-8: repairing a bad byte with U+FFFD could make two references one and drop a payment.
  const bad = firstInvalidUtf8Line(bytes);
  if (bad !== undefined) throw new BillingInputError('line is not valid UTF-8 text (save the file as UTF-8)', { file: path, line: bad });
  const lines = bytes.toString('utf8').split('\n');
  const head = parsePaymentsHeader(lines[0] ?? '');
  if (!head.ok) throw new BillingInputError(head.error.message, { file: path, line: 1, field: head.error.field });
  const rows: PaymentRow[] = [];
  for (let i = 1; i < lines.length; i++) {
    if (lines[i].trim() === '') continue;
    const r = parsePaymentLine(lines[i], head.value);
    if (!r.ok) throw new BillingInputError(r.error.message, { file: path, line: i + 1, field: r.error.field });
    if (site && !site.accounts.some((a) => a.id === r.value.account)) {
      throw new BillingInputError(`unknown account '${r.value.account}' (not in the site file)`, { file: path, line: i + 1, field: 'account' });
    }
    rows.push(r.value);
  }
  return rows;
}

/** Site, readings and payments of a bill-like command, with the date options checked first. */
export async function loadBillingInputs(opts: BillingInputOptions): Promise<{ site: Site; store: ReadingStore; payments: PaymentRow[] }> {
  const { dateRangeProblem } = await import('../../core/index.ts');
  const { loadSiteFile } = await import('../../lib/site-file.ts');
  const problem = dateRangeProblem(opts.from, opts.to);
  if (problem) throw Object.assign(new Error(`--${problem.field}: ${problem.message}`), { exitCode: 2 });
  const site = loadSiteFile(opts.site);
  const started = performance.now();
  const store = await readReadingsFile(site, opts.readings, opts.site);
  const payments = opts.payments ? await readPaymentsFile(opts.payments, site) : [];
  let rows = 0;
  for (let i = 0; i < site.meters.length; i++) rows += store.count(i);
  process.stderr.write(`submeter: read ${rows} readings of ${site.meters.length} meters in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  warnIfNoReadingsIn(site, store, rows, opts);
  return { site, store, payments };
}

/**
 * A range the readings do not reach bills nothing: every figure is zero and the output
 * looks like a quiet month. Say so on stderr (issue 11), with the span the file has.
 */
function warnIfNoReadingsIn(site: Site, store: ReadingStore, rows: number, opts: BillingInputOptions): void {
  const zone = zoneOfSync(site.timezone);
  const from = zone.midnight(opts.from);
  const to = zone.midnight(opts.to);
  if (rows === 0) {
    process.stderr.write(`submeter: warning: ${opts.readings} has no readings; nothing is billed in ${opts.from} .. ${opts.to}\n`);
  } else if (store.maxTime < from || store.minTime >= to) {
    process.stderr.write(`submeter: warning: no readings in ${opts.from} .. ${opts.to} (to is exclusive): ${opts.readings} runs from ${zone.format(store.minTime)} to ${zone.format(store.maxTime)}; nothing is billed\n`);
  }
}

export function registerBill(program: Command): void {
  program
    .command('bill')
    .description('bill run for [from, to) as JSON (billing.md section 6) or CSV line items on stdout')
    .requiredOption('--site <file>', 'site file (YAML)')
    .requiredOption('--readings <file>', 'readings CSV: time,meter,kwh (any order)')
    .option('--payments <file>', 'payments CSV: time,account,amount,reference')
    .requiredOption('--from <date>', 'first local date billed (YYYY-MM-DD)')
    .requiredOption('--to <date>', 'local date after the last one billed (YYYY-MM-DD)')
    .option('--format <format>', 'json (for scripts), csv (line items) or table (for people)', 'json')
    .action(async (opts: BillingInputOptions & { format: string }) => {
      if (!['json', 'csv', 'table'].includes(opts.format)) throw Object.assign(new Error(`--format: must be json, csv or table, got ${JSON.stringify(opts.format)}`), { exitCode: 2 });
      const { computeBillRun, billRunJson, billRunCsv } = await import('../../core/index.ts');
      const { site, store, payments } = await loadBillingInputs(opts);
      const run = computeBillRun(site, store, payments, opts.from, opts.to);
      const { billTable } = await import('../table.ts');
      const out = opts.format === 'csv' ? billRunCsv(run) : opts.format === 'table' ? billTable(run, new Map(site.accounts.map((a) => [a.id, a.name]))) : billRunJson(run);
      await new Promise<void>((resolve, reject) => process.stdout.write(out, (err) => (err ? reject(err) : resolve())));
    });
}
