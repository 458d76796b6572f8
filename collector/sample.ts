/**
 * One reading of one meter, as every input produces it and every sink consumes it.
 * Energy is integer Wh (the meter's cumulative active import register); instantaneous
 * values are plain numbers (not summed into money).
 */
export interface Sample {
  readonly meter: string;
  /** Epoch milliseconds of the read (the collector's clock when the reply arrived). */
  readonly time: number;
  /** Cumulative active import energy, integer Wh. */
  readonly wh: number;
  /** Total active power, W. */
  readonly w?: number;
  /** Phase voltage(s), V (phase A, or the mean of the phases present). */
  readonly v?: number;
  /** Current, A (sum over phases). */
  readonly a?: number;
  readonly pf?: number;
  readonly hz?: number;
  /** The meter's own per-tariff energy registers 1..4, integer Wh (DL/T 645 meters). */
  readonly tariffWh?: Readonly<Partial<Record<1 | 2 | 3 | 4, number>>>;
}

/** Where inputs put samples (style.md practice 3): the spool, or stdout in --test mode. */
export interface SampleSink {
  add(sample: Sample): void | Promise<void>;
}
