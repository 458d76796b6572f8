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
  /** Phase voltage(s), V (phase A, or the mean of the phases present). */
  readonly v?: number;
  /** Current, A (sum over phases). */
  readonly a?: number;
  readonly pf?: number;
  readonly hz?: number;
  /** The meter's own per-tariff energy registers 1..4, integer Wh (DL/T 645 meters). */
  readonly tariffWh?: Readonly<Partial<Record<1 | 2 | 3 | 4, number>>>;
}
