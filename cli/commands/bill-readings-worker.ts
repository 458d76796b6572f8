import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { BillingInputError, ReadingsScanner } from '../../core/index.ts';
import { loadSiteFile } from '../../lib/site-file.ts';

/**
 * Not a subcommand: the worker thread `submeter bill` uses to parse the second half of a
 * large readings file while the main thread parses the first (2 cores, issue 3's 60 s
 * goal). It sends the parsed rows back as transferable typed arrays (no copy), or the
 * error with its line number relative to the half (the main thread makes it absolute).
 */
export interface ReadingsHalfJob {
  readonly siteFile: string;
  readonly readings: string;
  readonly header: string;
  readonly start: number;
  readonly end: number;
}

const job = workerData as ReadingsHalfJob;
try {
  const site = loadSiteFile(job.siteFile);
  const scanner = new ReadingsScanner(site, job.readings);
  scanner.useHeader(job.header);
  const fd = openSync(job.readings, 'r');
  try {
    const size = 8 << 20;
    const buf = new Uint8Array(size);
    for (let pos = job.start; pos < job.end; ) {
      const n = readSync(fd, buf, 0, Math.min(size, job.end - pos), pos);
      if (n === 0) break;
      scanner.push(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
  const store = scanner.end();
  const meters = site.meters.map((_, i) => store.exportMeter(i));
  const transfer: ArrayBuffer[] = [];
  for (const m of meters) {
    for (const c of m.chunks) transfer.push(c.dt.buffer as ArrayBuffer, c.dw.buffer as ArrayBuffer);
    if (m.wideT && m.wideW) transfer.push(m.wideT.buffer as ArrayBuffer, m.wideW.buffer as ArrayBuffer);
    if (m.tar) transfer.push(m.tar.buffer as ArrayBuffer);
  }
  parentPort!.postMessage({ ok: true, meters, minTime: store.minTime, maxTime: store.maxTime }, transfer);
} catch (err) {
  if (err instanceof BillingInputError) parentPort!.postMessage({ ok: false, detail: err.detail, line: err.where.line, field: err.where.field });
  else parentPort!.postMessage({ ok: false, detail: (err as Error).message ?? String(err) });
}
