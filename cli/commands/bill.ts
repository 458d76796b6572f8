import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import type { Command } from 'commander';
import type { PaymentRow, ReadingStore, Site } from '../../core/index.ts';

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

/** Streams a readings file into the core's compact store (no object per row). */
export async function readReadingsFile(site: Site, path: string): Promise<ReadingStore> {
  const { ReadingsScanner } = await import('../../core/readings/scan.ts');
  const scanner = new ReadingsScanner(site, path);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new Error(`cannot read readings file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  try {
    const buf = new Uint8Array(CHUNK);
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      scanner.push(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return scanner.end();
}

/** Reads a payments file (small: whole file, line by line through the core's parser). */
export async function readPaymentsFile(path: string): Promise<PaymentRow[]> {
  const { parsePaymentsHeader, parsePaymentLine, BillingInputError } = await import('../../core/index.ts');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read payments file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const lines = text.split('\n');
  const head = parsePaymentsHeader(lines[0] ?? '');
  if (!head.ok) throw new BillingInputError(head.error.message, { file: path, line: 1, field: head.error.field });
  const rows: PaymentRow[] = [];
  for (let i = 1; i < lines.length; i++) {
    if (lines[i].trim() === '') continue;
    const r = parsePaymentLine(lines[i], head.value);
    if (!r.ok) throw new BillingInputError(r.error.message, { file: path, line: i + 1, field: r.error.field });
    rows.push(r.value);
  }
  return rows;
}

/** Site, readings and payments of a bill-like command, with the date options checked first. */
export async function loadBillingInputs(opts: BillingInputOptions): Promise<{ site: Site; store: ReadingStore; payments: PaymentRow[] }> {
  const { isLocalDate } = await import('../../core/index.ts');
  const { loadSiteFile } = await import('../../lib/site-file.ts');
  for (const k of ['from', 'to'] as const) {
    if (!isLocalDate(opts[k])) throw Object.assign(new Error(`--${k}: must be a local date YYYY-MM-DD, got ${JSON.stringify(opts[k])}`), { exitCode: 2 });
  }
  if (!(opts.from < opts.to)) throw Object.assign(new Error(`--to: must be after --from (${opts.from}), got ${opts.to}`), { exitCode: 2 });
  const site = loadSiteFile(opts.site);
  const started = performance.now();
  const store = await readReadingsFile(site, opts.readings);
  const payments = opts.payments ? await readPaymentsFile(opts.payments) : [];
  let rows = 0;
  for (let i = 0; i < site.meters.length; i++) rows += store.count(i);
  process.stderr.write(`submeter: read ${rows} readings of ${site.meters.length} meters in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  return { site, store, payments };
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
    .option('--format <format>', 'json or csv', 'json')
    .action(async (opts: BillingInputOptions & { format: string }) => {
      if (opts.format !== 'json' && opts.format !== 'csv') throw Object.assign(new Error(`--format: must be json or csv, got ${JSON.stringify(opts.format)}`), { exitCode: 2 });
      const { computeBillRun, billRunJson, billRunCsv } = await import('../../core/index.ts');
      const { site, store, payments } = await loadBillingInputs(opts);
      const run = computeBillRun(site, store, payments, opts.from, opts.to);
      const out = opts.format === 'csv' ? billRunCsv(run) : billRunJson(run);
      await new Promise<void>((resolve, reject) => process.stdout.write(out, (err) => (err ? reject(err) : resolve())));
    });
}
