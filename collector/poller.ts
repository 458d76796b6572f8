import type { Logger } from '../lib/logger.ts';
import type { MeterHealth } from '../influx/lines.ts';
import { sampleProblem } from '../influx/lines.ts';
import { lastChangeAtOrBefore } from './meter-config.ts';
import type { MeterInput } from './input.ts';
import { MeterReadError } from './input.ts';
import type { Sample } from './sample.ts';

/** Where the poller puts what it learns; the collector backs it with the spool. */
export interface PollerSink {
  sample(sample: Sample): Promise<void>;
  health(h: MeterHealth): Promise<void>;
}

export interface PollerOptions {
  readonly input: MeterInput;
  readonly intervalMs: number;
  readonly sink: PollerSink;
  readonly now: () => number;
  /**
   * Ceiling of the back-off after consecutive failures: a failing meter is next tried
   * after interval x 2^(failures-1), capped here (never below the interval). A dead unit
   * behind a shared TCP connection would otherwise hold the connection for its timeouts
   * on every tick and starve the live meters. @defaultValue 300000
   */
  readonly backoffMaxMs?: number;
  /**
   * When the meter was last read before this poller started (the collector keeps it beside
   * the spool), so a gap across a collector restart is seen too. @defaultValue unknown
   */
  readonly lastSeen?: number;
  readonly log?: Logger;
}

/** Attempts at reading back a gap from the meter's memory before giving it up. */
const BACKFILL_ATTEMPTS = 3;

/** Mutable per-meter health, as MeterHealth without the time. */
interface HealthState {
  ok: boolean;
  errors: number;
  consecutiveErrors: number;
  latencyMs?: number;
  lastSeen?: number;
  lastError?: string;
  reads: number;
}

/**
 * Polls one meter on its own interval, forever, independent of every other meter (a
 * failing or slow meter delays only itself; serial meters share their bus through the
 * bus scheduler, TCP meters their connection). Ticks are on a fixed grid from the start
 * (`start + k * interval`); a read that overruns skips the missed ticks instead of
 * bunching reads. After a failure the meter backs off (doubling, see `backoffMaxMs`).
 * Every read, good or bad, updates the meter's health record.
 */
export class MeterPoller {
  private readonly opts: PollerOptions;
  private readonly state: HealthState = { ok: false, errors: 0, consecutiveErrors: 0, reads: 0 };
  private running = false;
  private loop: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  /** A gap to fill from the meter's own memory (input.backfill), retried on the next polls. */
  private pendingBackfill: { since: number; until: number; attempts: number } | undefined;
  /** Samples read back from the meter's memory since start. */
  backfilled = 0;

  constructor(opts: PollerOptions) {
    if (!(opts.intervalMs > 0)) throw new Error(`meter ${opts.input.meter.id}: poll interval must be > 0 ms`);
    this.opts = opts;
  }

  get meter(): string {
    return this.opts.input.meter.id;
  }

  health(): MeterHealth & { reads: number } {
    const s = this.state;
    return {
      meter: this.meter,
      time: this.opts.now(),
      ok: s.ok,
      errors: s.errors,
      consecutiveErrors: s.consecutiveErrors,
      reads: s.reads,
      ...(s.latencyMs !== undefined ? { latencyMs: s.latencyMs } : {}),
      ...(s.lastSeen !== undefined ? { lastSeen: s.lastSeen } : {}),
      ...(s.lastError !== undefined ? { lastError: s.lastError } : {}),
    };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.wake?.();
    await this.loop;
  }

  /** One read: the sample (already handed to the sink) or the error (already recorded). */
  async pollOnce(): Promise<Sample | MeterReadError> {
    const { input, sink, now, log } = this.opts;
    const started = performance.now();
    let result: Sample | MeterReadError;
    try {
      const sample = await input.read();
      const problem = sampleProblem(sample);
      if (problem) throw new MeterReadError(this.meter, 'value', `bad sample kept out: ${problem}`);
      result = sample;
    } catch (err) {
      result = err instanceof MeterReadError ? err : new MeterReadError(this.meter, 'protocol', (err as Error).message ?? String(err));
    }
    const s = this.state;
    s.reads++;
    if (result instanceof MeterReadError) {
      s.ok = false;
      s.errors++;
      s.consecutiveErrors++;
      s.lastError = `${result.kind}: ${result.message}`;
      // First failure, then every 10th, so a dead meter does not flood the log.
      if (s.consecutiveErrors === 1 || s.consecutiveErrors % 10 === 0) log?.warn({ meter: this.meter, kind: result.kind, err: result.message, consecutive: s.consecutiveErrors }, 'meter read failed');
    } else {
      if (s.consecutiveErrors > 0) log?.info({ meter: this.meter, after: s.consecutiveErrors }, 'meter answers again');
      s.ok = true;
      s.consecutiveErrors = 0;
      s.latencyMs = Math.round((performance.now() - started) * 100) / 100;
      const seen = s.lastSeen ?? this.opts.lastSeen;
      // Nothing from before the meter's last change (billing.md section 11 rule 5): the
      // freezes of a replaced meter's position before its change are not this register's.
      const change = seen === undefined ? undefined : lastChangeAtOrBefore(input.meter, result.time);
      const since = seen !== undefined && change !== undefined && change > seen ? change : seen;
      s.lastSeen = result.time;
      // A gap longer than the meter's max_gap (the collector was down, the bus cut): what
      // the meter kept of it goes into the sink before the live sample, in time order.
      if (input.backfill && since !== undefined && result.time - since > input.meter.maxGapMs && !this.pendingBackfill) this.pendingBackfill = { since, until: result.time, attempts: 0 };
      if (this.pendingBackfill) await this.fillGap();
      await sink.sample(result);
    }
    await sink.health({ ...this.health(), time: result instanceof MeterReadError ? now() : result.time });
    return result;
  }

  private async fillGap(): Promise<void> {
    const { input, sink, log } = this.opts;
    const gap = this.pendingBackfill!;
    let kept: Sample[];
    try {
      kept = await input.backfill!(gap.since, gap.until);
    } catch (err) {
      gap.attempts++;
      const give = gap.attempts >= BACKFILL_ATTEMPTS;
      log?.[give ? 'error' : 'warn']({ meter: this.meter, err: (err as Error).message, attempts: gap.attempts, since: new Date(gap.since).toISOString() }, give ? 'could not read the gap back from the meter; its days stay interpolated' : 'reading the gap back from the meter failed; trying again next poll');
      if (give) this.pendingBackfill = undefined;
      return;
    }
    this.pendingBackfill = undefined;
    for (const k of kept) {
      const problem = sampleProblem(k);
      if (problem) {
        log?.warn({ meter: this.meter, problem }, 'frozen reading kept out');
        continue;
      }
      await sink.sample(k);
      this.backfilled++;
    }
  }

  private async run(): Promise<void> {
    const { intervalMs, log } = this.opts;
    let next = Date.now();
    while (this.running) {
      try {
        const r = await this.pollOnce();
        if (r instanceof MeterReadError && !r.retryable) {
          log?.error({ meter: this.meter, err: r.message }, 'meter cannot be read with this configuration; polling stopped for it');
          return;
        }
      } catch (err) {
        // The sink failed. A full spool is counted (spool_refused) and alarmed once by the
        // spool itself; anything else (a disk error) is logged. Polling goes on either way.
        if ((err as Error).name !== 'SpoolFullError') log?.error({ meter: this.meter, err: (err as Error).message }, 'could not store the sample');
      }
      const now = Date.now();
      next += intervalMs;
      const failures = this.state.consecutiveErrors;
      if (failures > 1) {
        const backoff = Math.min(intervalMs * 2 ** Math.min(failures - 1, 20), Math.max(intervalMs, this.opts.backoffMaxMs ?? 300_000));
        next = Math.max(next, now + backoff);
      }
      if (next < now) next += Math.ceil((now - next) / intervalMs) * intervalMs;
      if (!this.running) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.timer = setTimeout(resolve, next - now);
      });
      this.wake = undefined;
    }
  }
}
