import type { Meter } from './model.ts';
import type { Period } from '../tou/schedule.ts';

/**
 * Which of a meter's tariff registers holds which TOU period: programmed into the meter,
 * not fixed by DL/T 645-2007 (protocols.md), so the site file says it per meter
 * (`connection.tariffs` of a DL/T 645 meter). billing.md section 2 rule 5 bills a gap from
 * these registers; the collector reads them and the simulator keeps them by the same map.
 */
export type TariffMapping = Readonly<Partial<Record<'sharp' | 'peak' | 'flat' | 'valley', number>>>;

/**
 * The usual factory programming of Chinese multi-tariff meters: T1 sharp, T2 peak, T3
 * flat, T4 valley (尖峰平谷). Used when the site file gives no `tariffs` (and for a meter
 * without a DL/T 645 connection whose readings carry registers, e.g. imported ones); a
 * mapping from the site file replaces it whole (mixing them could put two periods in one
 * register).
 */
export const DEFAULT_TARIFF_MAPPING: Readonly<Required<TariffMapping>> = { sharp: 1, peak: 2, flat: 3, valley: 4 };

/** Register number -> period, from a meter's mapping (or the default). */
export function periodsByRegister(mapping: TariffMapping | undefined): ReadonlyMap<number, Period> {
  const out = new Map<number, Period>();
  for (const [period, n] of Object.entries(mapping ?? DEFAULT_TARIFF_MAPPING)) if (n !== undefined) out.set(n, period as Period);
  return out;
}

/** The meter's mapping: its DL/T 645 connection's `tariffs`, else the default. */
export function tariffMappingOf(meter: Pick<Meter, 'connection'>): TariffMapping {
  const conn = meter.connection;
  return (conn?.protocol === 'dlt645' ? conn.tariffs : undefined) ?? DEFAULT_TARIFF_MAPPING;
}
