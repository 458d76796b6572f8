import { Point } from '@influxdata/influxdb-client';
import { F, M, T } from './schema.ts';

/** One clock check of a meter (collector/clock-keeper.ts). */
export interface MeterClockCheck {
  readonly meter: string;
  /** Epoch ms of the check. */
  readonly time: number;
  /** Meter clock minus the collector's clock, ms. */
  readonly errorMs: number;
  /** Within the meter's max_clock_drift. */
  readonly ok: boolean;
}

/**
 * A `meter_health` point with the clock fields only (`clock_drift_s` float seconds,
 * `clock_ok`), on its own timestamp: the poller's health points carry the read counters,
 * this one the daily clock check, and Grafana takes the last of each field.
 */
export function meterClockLine(site: string, c: MeterClockCheck): string {
  return new Point(M.meterHealth)
    .tag(T.site, site)
    .tag(T.meter, c.meter)
    .floatField(F.clockDriftS, Math.round(c.errorMs) / 1000)
    .booleanField(F.clockOk, c.ok)
    .timestamp(c.time)
    .toLineProtocol()!;
}
