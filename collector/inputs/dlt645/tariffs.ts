/**
 * Which of a meter's tariff registers holds which TOU period: the site file's per-meter
 * `connection.tariffs` (protocols.md: "which tariff number means sharp/peak/flat/valley
 * is a meter setting"). The mapping is a billing fact (billing.md section 2 rule 5 bills a
 * gap from these registers), so it lives in the core; the collector reads by it.
 */
export { DEFAULT_TARIFF_MAPPING, periodsByRegister } from '../../../core/index.ts';
export type { TariffMapping } from '../../../core/index.ts';
