import type { Sample } from '../influx/sample.ts';

/** One reading of one meter (influx/sample.ts: shared with the InfluxDB line builders). */
export type { Sample };

/** Where inputs put samples (style.md practice 3): the spool, or stdout in --test mode. */
export interface SampleSink {
  add(sample: Sample): void | Promise<void>;
}
