import type { Meter } from '../core/index.ts';
import type { Sample } from './sample.ts';

/**
 * The one meter-input contract (style.md practice 3, after Telegraf's input.go).
 * An input reads one meter; it never writes to InfluxDB itself. Errors:
 * - throw MeterReadError with `retryable: true` for timeouts, CRC errors, exceptions the
 *   meter may recover from (the poller backs off and records it in meter_health);
 * - `retryable: false` for configuration that can never work (unknown map, bad address).
 */
export interface MeterInput {
  readonly meter: Meter;
  /** Reads the meter once. Inputs on a serial bus take the bus through the bus scheduler. */
  read(): Promise<Sample>;
  close(): Promise<void>;
  /**
   * Optional: readings the meter itself kept for (since, until), oldest first, each marked
   * with its `source` (DL/T 645 daily freezes). The poller calls it after a gap longer than
   * the meter's max_gap, so the days of an outage bill from the meter's own registers.
   */
  backfill?(since: number, until: number): Promise<Sample[]>;
  /** Optional: the meter's clock (DL/T 645). `errorMs` = meter clock minus our clock. */
  readClock?(): Promise<{ readonly errorMs: number; readonly at: number }>;
}

export class MeterReadError extends Error {
  readonly meter: string;
  readonly kind: 'timeout' | 'crc' | 'exception' | 'protocol' | 'connection' | 'config' | 'value';
  readonly retryable: boolean;
  constructor(meter: string, kind: MeterReadError['kind'], message: string, retryable = kind !== 'config') {
    super(`${meter}: ${message}`);
    this.name = 'MeterReadError';
    this.meter = meter;
    this.kind = kind;
    this.retryable = retryable;
  }
}

/** Everything an input factory gets: the meter, plus shared resources owned by the collector. */
export interface InputContext {
  readonly meter: Meter;
  /** Clock for sample times (tests and the simulator's fast time may replace it). @defaultValue Date.now */
  readonly now: () => number;
}

export type InputFactory = (ctx: InputContext & Record<string, unknown>) => MeterInput;
