import type { PhaseValues } from './inputs/phases.ts';

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
  /** Phase voltage, V: phase A of a single-phase meter, the mean of the live phases of a three-phase one (inputs/phases.ts). */
  readonly v?: number;
  /** Current, A: the sum over the live phases. */
  readonly a?: number;
  readonly pf?: number;
  readonly hz?: number;
  /** The meter's own per-tariff energy registers 1..4, integer Wh (DL/T 645 meters). */
  readonly tariffWh?: Readonly<Partial<Record<1 | 2 | 3 | 4, number>>>;
  /** Three-phase meters: L1, L2, L3 as read (InfluxDB fields v_l1.., a_l1.., w_l1..). */
  readonly phases?: readonly PhaseValues[];
  /**
   * Where the reading comes from when it is not a live read: `frozen` is the meter's own
   * daily frozen register at its freeze instant, read back after a gap (DL/T 645-2007
   * 05 06 xx NN; collector/inputs/dlt645/frozen.ts). An exact register value, not an estimate.
   */
  readonly source?: 'frozen';
}

/** Where inputs put samples (style.md practice 3): the spool, or stdout in --test mode. */
export interface SampleSink {
  add(sample: Sample): void | Promise<void>;
}
