import { Point } from '@influxdata/influxdb-client';
import { FastPoint } from './fast-point.ts';
import type { Sample } from './sample.ts';
import type { InfluxV1 } from './client.ts';
import { InfluxError } from './client.ts';
import { F, M, T } from './schema.ts';

/**
 * Samples and collector state as line protocol, built with `Point` from
 * @influxdata/influxdb-client (escaping of tags and strings is its job, not ours), or
 * on the per-read hot path with FastPoint, which writes exactly what Point writes.
 * Every line carries its own millisecond timestamp (write with precision `ms`), so a
 * line written twice lands on the same series and time and overwrites itself: re-sends
 * after a crash never duplicate (InfluxDB keeps one point per series and timestamp).
 */

/**
 * A `reading` line: energy as integer Wh (`wh=1234i`), instantaneous values as floats, all
 * raw as the meter reported them. `multiplier` (billing.md section 11: the CT x PT ratio the
 * collector had in force) is recorded beside them when it is not 1; billing multiplies by
 * the site file's effective-dated one. FastPoint (Point's output, faster): one per sample on
 * the collector's hot path.
 */
export function sampleLine(site: string, s: Sample, multiplier = 1): string {
  const p = new FastPoint(M.reading).tag(T.site, site).tag(T.meter, s.meter).intField(F.wh, s.wh);
  if (multiplier !== 1) p.intField(F.multiplier, multiplier);
  if (s.w !== undefined) p.floatField(F.w, s.w);
  if (s.v !== undefined) p.floatField(F.v, s.v);
  if (s.a !== undefined) p.floatField(F.a, s.a);
  if (s.pf !== undefined) p.floatField(F.pf, s.pf);
  if (s.hz !== undefined) p.floatField(F.hz, s.hz);
  if (s.tariffWh) {
    for (const n of [1, 2, 3, 4] as const) {
      const wh = s.tariffWh[n];
      if (wh !== undefined) p.intField(F.whTariff(n), wh);
    }
  }
  s.phases?.forEach((ph, i) => {
    const n = (i + 1) as 1 | 2 | 3;
    if (n > 3) return;
    if (ph.v !== undefined) p.floatField(F.vPhase(n), ph.v);
    if (ph.a !== undefined) p.floatField(F.aPhase(n), ph.a);
    if (ph.w !== undefined) p.floatField(F.wPhase(n), ph.w);
  });
  if (s.source) p.stringField(F.source, s.source);
  return p.timestamp(s.time).toLineProtocol()!;
}

/** What a sample must satisfy before it may enter the spool (bad input is kept out, never written). */
export function sampleProblem(s: Sample): string | undefined {
  if (typeof s.meter !== 'string' || s.meter === '') return 'meter is empty';
  if (!Number.isSafeInteger(s.time) || s.time <= 0) return `time ${s.time} is not an epoch millisecond`;
  if (!Number.isSafeInteger(s.wh) || s.wh < 0) return `wh ${s.wh} is not a non-negative integer`;
  for (const k of ['w', 'v', 'a', 'pf', 'hz'] as const) {
    const v = s[k];
    if (v !== undefined && !Number.isFinite(v)) return `${k} ${v} is not a finite number`;
  }
  for (const [i, ph] of (s.phases ?? []).entries()) {
    for (const k of ['v', 'a', 'w'] as const) {
      const v = ph[k];
      if (v !== undefined && !Number.isFinite(v)) return `${k}_l${i + 1} ${v} is not a finite number`;
    }
  }
  return undefined;
}

export interface MeterHealth {
  readonly meter: string;
  /** Epoch ms of this health record. */
  readonly time: number;
  /** The last read succeeded. */
  readonly ok: boolean;
  /** Failed reads since the collector started. */
  readonly errors: number;
  readonly consecutiveErrors: number;
  /** Duration of the last successful read, ms. */
  readonly latencyMs?: number;
  /** Epoch ms of the last successful read. */
  readonly lastSeen?: number;
  readonly lastError?: string;
}

/** A `meter_health` line, one per read: FastPoint like sampleLine. */
export function healthLine(site: string, h: MeterHealth): string {
  const p = new FastPoint(M.meterHealth).tag(T.site, site).tag(T.meter, h.meter).booleanField(F.ok, h.ok).intField(F.errors, h.errors).intField(F.consecutiveErrors, h.consecutiveErrors);
  if (h.latencyMs !== undefined) p.floatField(F.latencyMs, h.latencyMs);
  if (h.lastSeen !== undefined) p.intField(F.lastSeen, h.lastSeen);
  if (h.lastError !== undefined) p.stringField(F.lastError, h.lastError.slice(0, 500));
  return p.timestamp(h.time).toLineProtocol()!;
}

export interface CollectorState {
  readonly host: string;
  readonly time: number;
  /** Bytes of the spool not yet acknowledged by InfluxDB. */
  readonly spoolBytes: number;
  /** Lines in the spool not yet acknowledged. */
  readonly spoolSamples: number;
  /** The spool reached its size bound: new samples are refused until it drains. */
  readonly spoolFull: boolean;
  /** Lines acknowledged by InfluxDB since start. */
  readonly written: number;
  /** Samples refused since start because the spool was full. */
  readonly refused: number;
}

export function collectorLine(site: string, c: CollectorState): string {
  return new Point(M.collector)
    .tag(T.site, site)
    .tag(T.host, c.host)
    .intField(F.spoolBytes, c.spoolBytes)
    .intField(F.spoolSamples, c.spoolSamples)
    .booleanField(F.spoolFull, c.spoolFull)
    .intField(F.written, c.written)
    .intField(F.spoolRefused, c.refused)
    .timestamp(c.time)
    .toLineProtocol()!;
}

export interface LineBatcherOptions {
  /** Lines per write request. @defaultValue 5000 (InfluxDB's recommended batch size) */
  readonly batchLines?: number;
  /** Attempts per batch on retryable faults (5xx, network), with back-off. @defaultValue 5 */
  readonly attempts?: number;
  /** First back-off, doubling per attempt. @defaultValue 200 */
  readonly backoffMs?: number;
}

/**
 * Batching writer for one-shot loads (import, backfill): lines are queued, written in
 * batches of `batchLines` with precision ms, retrying retryable faults with back-off.
 * The long-running collector does not use it: it writes from its spool, which keeps
 * lines across restarts.
 */
export class LineBatcher {
  private readonly influx: InfluxV1;
  private readonly batchLines: number;
  private readonly attempts: number;
  private readonly backoffMs: number;
  private buffer: string[] = [];
  /** Lines InfluxDB has acknowledged. */
  written = 0;

  constructor(influx: InfluxV1, opts: LineBatcherOptions = {}) {
    this.influx = influx;
    this.batchLines = opts.batchLines ?? 5000;
    this.attempts = opts.attempts ?? 5;
    this.backoffMs = opts.backoffMs ?? 200;
    if (!(this.batchLines >= 1)) throw new Error('LineBatcher: batchLines must be >= 1');
    if (!(this.attempts >= 1)) throw new Error('LineBatcher: attempts must be >= 1');
  }

  /** Queues lines; writes full batches before returning. */
  async push(...lines: string[]): Promise<void> {
    for (const l of lines) this.buffer.push(l);
    while (this.buffer.length >= this.batchLines) await this.writeBatch(this.buffer.splice(0, this.batchLines));
  }

  /** Writes whatever is queued. */
  async flush(): Promise<void> {
    while (this.buffer.length > 0) await this.writeBatch(this.buffer.splice(0, this.batchLines));
  }

  private async writeBatch(lines: string[]): Promise<void> {
    await writeWithRetry(this.influx, lines, this.attempts, this.backoffMs);
    this.written += lines.length;
  }
}

/** One write with retries on retryable InfluxErrors; a non-retryable one (bad data) is thrown at once. */
export async function writeWithRetry(influx: InfluxV1, lines: readonly string[], attempts: number, backoffMs: number): Promise<void> {
  for (let i = 1; ; i++) {
    try {
      await influx.write(lines, 'ms');
      return;
    } catch (err) {
      if (!(err instanceof InfluxError) || !err.retryable || i >= attempts) throw err;
      await new Promise((r) => setTimeout(r, backoffMs * 2 ** (i - 1)));
    }
  }
}
