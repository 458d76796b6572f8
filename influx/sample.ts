/**
 * One reading of one meter, as every input produces it and every sink consumes it: the
 * collector's inputs make them, the line builders (lines.ts) and the import write them.
 * It lives here, beside the `reading` measurement it becomes, so the collector and the
 * InfluxDB adapter share it without either importing the other's internals.
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
  /** Phase voltage, V: phase A of a single-phase meter, the mean of the live phases of a three-phase one (collector/inputs/phases.ts). */
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
   * 05 06 xx NN; collector/inputs/dlt645/input.ts). An exact register value, not an estimate.
   */
  readonly source?: 'frozen';
}

/**
 * One phase's instantaneous values of a three-phase meter; a value the meter did not report
 * is absent. It lives here with Sample (the line builders write it as v_l1.. fields); the
 * rule summarising phases is in collector/inputs/phases.ts.
 */
export interface PhaseValues {
  /** Phase-to-neutral voltage, V. */
  readonly v?: number;
  /** Current, A. */
  readonly a?: number;
  /** Active power, W (negative when exporting). */
  readonly w?: number;
}
