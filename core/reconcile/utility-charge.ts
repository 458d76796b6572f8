import { BillingInputError } from '../errors.ts';
import { siteIndex } from '../settle/site-index.ts';
import type { Site } from '../site/model.ts';
import type { LocalDate } from '../tou/local-date.ts';
import type { Period } from '../tou/schedule.ts';
import { chargeFen } from '../units.ts';

/**
 * What the utility charges for the master meter's energy of one settlement cell
 * (billing.md section 8): round_half_up(kWh x the utility tariff's price of the period in
 * force that day, 2), in fen; undefined for a site without `utility`. One rule for the
 * reconciliation report and the workers' per-day figure Grafana's recovery panel reads.
 */
export function utilityCellFen(site: Site, date: LocalDate, period: Period, masterWh: number): number | undefined {
  if (!site.utility) return undefined;
  const tariff = site.utility.tariff;
  const micro = siteIndex(site).price(tariff, date, period);
  if (micro === undefined) throw new BillingInputError(`utility tariff '${tariff}' has no ${period} price in force on ${date}`, { field: 'utility.tariff' });
  return chargeFen(Math.max(0, masterWh), micro);
}
