import type { Meter, MeterConnection } from '../../core/index.ts';

/** A Meter as the site loader would make it, for input tests. */
export function testMeter(id: string, connection?: MeterConnection, pollIntervalMs = 60_000): Meter {
  const m: Meter = {
    id,
    name: id,
    role: 'tenant',
    maxKw: '2000',
    maxW: 2_000_000,
    registerModulusWh: 1_000_000_000,
    maxGapMs: 3_600_000,
    pollIntervalMs,
    ...(connection ? { connection } : {}),
  };
  return m;
}
