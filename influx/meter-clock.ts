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
  /** The meter's max_clock_drift, ms: written beside the drift so an alert rule compares each meter with its own bound. */
  readonly boundMs?: number;
}

/**
 * A `meter_health` point with the clock fields only (`clock_drift_s` float seconds,
 * `clock_ok`, `clock_max_drift_s`), on its own timestamp: the poller's health points carry the read counters,
 * this one the daily clock check, and Grafana takes the last of each field.
 */
export function meterClockLine(site: string, c: MeterClockCheck): string {
  const p = new Point(M.meterHealth)
    .tag(T.site, site)
    .tag(T.meter, c.meter)
    .floatField(F.clockDriftS, Math.round(c.errorMs) / 1000)
    .booleanField(F.clockOk, c.ok);
  if (c.boundMs !== undefined) p.floatField(F.clockMaxDriftS, c.boundMs / 1000);
  return p.timestamp(c.time).toLineProtocol()!;
}
