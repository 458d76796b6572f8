import type { Period } from '../../../core/index.ts';

/**
 * Which of a meter's tariff registers holds which TOU period: the site file's per-meter
 * `connection.tariffs` (protocols.md: "which tariff number means sharp/peak/flat/valley
 * is a meter setting").
 */
export type TariffMapping = Readonly<Partial<Record<'sharp' | 'peak' | 'flat' | 'valley', number>>>;

/**
 * The usual factory programming of Chinese multi-tariff meters: T1 sharp, T2 peak, T3
 * flat, T4 valley (尖峰平谷). Used when the site file gives no `tariffs`; a mapping from
 * the site file replaces it whole (mixing them could put two periods in one register).
 */
export const DEFAULT_TARIFF_MAPPING: Readonly<Required<TariffMapping>> = { sharp: 1, peak: 2, flat: 3, valley: 4 };

/** Register number -> period, from a meter's mapping (or the default). */
export function periodsByRegister(mapping: TariffMapping | undefined): ReadonlyMap<number, Period> {
  const out = new Map<number, Period>();
  for (const [period, n] of Object.entries(mapping ?? DEFAULT_TARIFF_MAPPING)) if (n !== undefined) out.set(n, period as Period);
  return out;
}
