import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { InfluxV1 } from '../../influx/client.ts';
import { InfluxError } from '../../influx/client.ts';
import type { Logger } from '../../lib/logger.ts';
import type { Spool } from './spool.ts';

export interface ForwarderOptions {
  /** Lines per write request. @defaultValue 5000 */
  readonly batchLines?: number;
  /** First retry delay while InfluxDB is away, doubling. @defaultValue 500 */
  readonly retryBaseMs?: number;
  /** Retry delay ceiling. @defaultValue 30000 */
  readonly retryMaxMs?: number;
  /** How long an idle forwarder sleeps between looks at the spool. @defaultValue 1000 */
  readonly idleMs?: number;
  /**
   * When less than a full batch is waiting, wait up to this long once for more before
   * sending: fewer, fuller requests (InfluxDB's cost is mostly per request). The wait
   * ends as soon as a full batch is there, or when appends pause for a fifth of it (the
   * poll round is over). @defaultValue 50
   */
  readonly lingerMs?: number;
  readonly log?: Logger;
  /** Called after InfluxDB acknowledged a batch (the collector announces new readings with it). */
  readonly onWritten?: (body: Buffer, lines: number) => void;
  /** Called when InfluxDB refused a batch as bad data (it may have kept part of it: a partial write). */
  readonly onRejected?: (lines: number) => void;
}

export interface ForwarderStats {
  /** Lines InfluxDB acknowledged since start. */
  readonly written: number;
  /** Lines InfluxDB refused as bad data, kept in `<spool>/rejected.lp`. */
  readonly rejected: number;
  /** Write requests InfluxDB acknowledged since start (batches sent). */
  readonly requests: number;
  /** Consecutive failed writes (0 when InfluxDB is taking data). */
  readonly failing: number;
  readonly lastError?: string;
}

/**
 * Drains the spool into InfluxDB, oldest first, one batch in flight, so lines arrive in
 * the order they were collected. A batch is acknowledged (and leaves the spool) only
 * after InfluxDB answered 204. While InfluxDB is away the same batch is retried with
 * back-off forever; nothing is dropped. A batch InfluxDB refuses as bad data (400:
 * it cannot succeed on retry) is appended to `rejected.lp` beside the spool with the
 * reason, then acknowledged: flagged and kept out, never lost. A 404 (database missing)
 * creates the database and retries.
 */
export class Forwarder {
  private readonly spool: Spool;
  private readonly influx: InfluxV1;
  private readonly batchLines: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly idleMs: number;
  private readonly lingerMs: number;
  private readonly log?: Logger;
  private readonly onWritten?: (body: Buffer, lines: number) => void;
  private readonly onRejected?: (lines: number) => void;
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private written = 0;
  private requests = 0;
  private rejected = 0;
  private failing = 0;
  private lastError: string | undefined;

  constructor(spool: Spool, influx: InfluxV1, opts: ForwarderOptions = {}) {
    this.spool = spool;
    this.influx = influx;
    this.batchLines = opts.batchLines ?? 5000;
    this.retryBaseMs = opts.retryBaseMs ?? 500;
    this.retryMaxMs = opts.retryMaxMs ?? 30_000;
    this.idleMs = opts.idleMs ?? 1000;
    this.lingerMs = opts.lingerMs ?? 50;
    this.log = opts.log;
    this.onWritten = opts.onWritten;
    this.onRejected = opts.onRejected;
    if (!(this.batchLines >= 1)) throw new Error('forwarder batchLines must be >= 1');
  }

  stats(): ForwarderStats {
    return { written: this.written, requests: this.requests, rejected: this.rejected, failing: this.failing, ...(this.lastError ? { lastError: this.lastError } : {}) };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Stops after the batch in flight (which stays in the spool if it was not acknowledged). */
  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
  }

  /** Resolves once every line the spool held or was given before the call is acknowledged (for tests, `--once` runs and shutdown drains). */
  async drained(timeoutMs = 30_000): Promise<boolean> {
    return this.spool.waitForEmpty(timeoutMs);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(t);
        self.wake = undefined;
        resolve();
      }
      this.wake = done;
    });
  }

  private async run(): Promise<void> {
    while (this.running) {
      let batch = await this.spool.peek(this.batchLines);
      if (batch && batch.lineCount < this.batchLines && this.lingerMs > 0 && this.failing === 0) {
        await this.spool.waitForLines(this.batchLines, this.lingerMs, Math.max(1, Math.round(this.lingerMs / 5)));
        batch = await this.spool.peek(this.batchLines);
      }
      if (!batch) {
        await Promise.race([this.spool.waitForData(this.idleMs), this.sleep(this.idleMs)]);
        this.wake?.();
        continue;
      }
      try {
        // The spool's record payloads are line protocol joined by `\n`: sent as they are,
        // straight from memory to the socket (InfluxV1.writeParts says why not fetch).
        await this.influx.writeParts(batch.parts, 'ms');
        this.requests++;
        // Counted before the ack: the spool's depth drops as the ack starts, and anyone
        // who sees it empty must also see these lines as written.
        this.written += batch.lineCount;
        this.onWritten?.(batch.body, batch.lineCount);
        // The spool moves past the batch now; its ack file follows in the background (a
        // stale ack file only re-sends lines that overwrite themselves), so the next
        // batch goes out without waiting for those file writes.
        this.spool.ack(batch.end).catch((err: unknown) => this.log?.warn({ err: (err as Error).message }, 'spool: could not record the acknowledged position; it is retried with the next batch'));
        if (this.failing > 0) this.log?.info({ after: this.failing }, 'influxdb takes data again; draining the spool');
        this.failing = 0;
        this.lastError = undefined;
      } catch (err) {
        if (err instanceof InfluxError && !err.retryable) {
          await this.reject(batch.lines, err);
          this.onRejected?.(batch.lineCount);
          await this.spool.ack(batch.end);
          continue;
        }
        this.failing++;
        this.lastError = (err as Error).message;
        if (err instanceof InfluxError && err.status === 404) await this.influx.createDatabase().catch(() => {});
        const wait = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** Math.min(16, this.failing - 1));
        // Log the first failure and then about once a minute, not every retry.
        if (this.failing === 1 || wait >= this.retryMaxMs || this.failing % 10 === 0) {
          this.log?.warn({ err: this.lastError, failing: this.failing, spoolLines: this.spool.stats().lines, retryInMs: wait }, 'influxdb write failed; samples stay in the spool');
        }
        if (this.running) await this.sleep(wait);
      }
    }
  }

  private async reject(lines: readonly string[], err: InfluxError): Promise<void> {
    this.rejected += lines.length;
    this.log?.error({ err: err.message, lines: lines.length, file: join(this.spool.dir, 'rejected.lp') }, 'influxdb refused a batch as bad data; kept in rejected.lp');
    const header = `# ${new Date().toISOString()} ${err.message.replace(/\n/g, ' ')}\n`;
    await appendFile(join(this.spool.dir, 'rejected.lp'), header + lines.join('\n') + '\n');
  }
}
