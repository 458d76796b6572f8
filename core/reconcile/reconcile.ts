import type { RangeSettlement } from '../bill/run.ts';
import { Dec } from '../decimal.ts';
import { BillingInputError } from '../errors.ts';
import { siteIndex } from '../settle/site-index.ts';
import { addDays } from '../tou/local-date.ts';
import type { LocalDate } from '../tou/local-date.ts';
import { PERIODS } from '../tou/schedule.ts';
import type { Period } from '../tou/schedule.ts';
import type { BillRun } from '../types.ts';
import { kwhText, moneyFen, moneyText, parseFixed, priceText } from '../units.ts';
import { utilityCellFen } from './utility-charge.ts';

/**
 * Recovery reconciliation (issue 3): what the utility charges for the master meter,
 * against what the tenants are charged, and each tenant's effective average price, flagged
 * when above the cap over the utility's flat price (re-sold electricity may not be marked
 * up beyond it). docs/billing.md section 8.
 */
export interface Reconciliation {
  readonly site: string;
  readonly from: LocalDate;
  readonly to: LocalDate;
  readonly currency: string;
  readonly utility: {
    readonly tariff: string;
    readonly lines: readonly { readonly period: Period; readonly kwh: string; readonly price: string; readonly amount: string }[];
    readonly kwh: string;
    readonly amount: string;
    readonly average_price: string;
    readonly flat_price: string;
  };
  readonly tenants: { readonly kwh: string; readonly amount: string; readonly average_price: string };
  /** tenants.amount / utility.amount, 4 decimals ("0.0000" when the utility charged nothing). */
  readonly recovery_rate: string;
  /** utility.amount - tenants.amount: what the property bears (negative = surplus). */
  readonly unrecovered: string;
  readonly markup_cap: string;
  /** flat_price x (1 + markup_cap), 6 decimals. */
  readonly price_cap: string;
  readonly accounts: readonly { readonly account: string; readonly kwh: string; readonly amount: string; readonly average_price: string; readonly over_cap: boolean }[];
}

/** Price text (6 places, half-up) of an amount in fen over an energy in Wh; "0.000000" for no energy. */
function averagePrice(fen: number, wh: number): string {
  if (wh === 0) return '0.000000';
  return new Dec(fen).mul(10).div(wh).toFixed(6, Dec.ROUND_HALF_UP); // fen/100 CNY / (wh/1000 kWh)
}

export function reconcile(settled: RangeSettlement, bill: BillRun): Reconciliation {
  const site = settled.site;
  if (!site.utility) throw new BillingInputError("the site file has no 'utility' key (utility: { tariff: <id>, markup_cap: 0.1 })", { field: 'utility' });
  const idx = siteIndex(site);
  const tariff = site.utility.tariff;
  const byLine = new Map<string, { period: Period; micro: number; wh: number; fen: number }>();
  let masterWh = 0;
  let utilityFen = 0;
  for (const day of settled.days.slice(settled.fromDay)) {
    for (const cell of day.cells) {
      if (cell.masterWh === 0) continue;
      // Charged like a tenant line: per day and period, round_half_up(kWh x price, 2).
      const fen = utilityCellFen(site, day.date, cell.period, cell.masterWh)!;
      const micro = idx.price(tariff, day.date, cell.period)!;
      const key = `${cell.period}\u0000${micro}`;
      const l = byLine.get(key) ?? { period: cell.period, micro, wh: 0, fen: 0 };
      l.wh += cell.masterWh;
      l.fen += fen;
      byLine.set(key, l);
      masterWh += cell.masterWh;
      utilityFen += fen;
    }
  }
  const lastDay = addDays(settled.to, -1);
  const flatMicro = idx.price(tariff, lastDay, 'flat');
  const flatPrice = flatMicro !== undefined ? priceText(flatMicro) : averagePrice(utilityFen, masterWh);
  const cap = new Dec(site.utility.markupCap);
  const priceCap = new Dec(flatPrice).mul(cap.plus(1)).toDecimalPlaces(6, Dec.ROUND_HALF_UP);

  let tenantWh = 0;
  let tenantFen = 0;
  const accounts = bill.accounts.map((a) => {
    const wh = (parseFixed(a.kwh.own, 3) ?? 0) + (parseFixed(a.kwh.common, 3) ?? 0) + (parseFixed(a.kwh.loss, 3) ?? 0);
    const fen = moneyFen(a.total_amount);
    tenantWh += wh;
    tenantFen += fen;
    const avg = averagePrice(fen, wh);
    return { account: a.account, kwh: kwhText(wh), amount: a.total_amount, average_price: avg, over_cap: wh > 0 && new Dec(avg).gt(priceCap) };
  });
  const lines = [...byLine.values()]
    .sort((x, y) => PERIODS.indexOf(x.period) - PERIODS.indexOf(y.period) || x.micro - y.micro)
    .map((l) => ({ period: l.period, kwh: kwhText(l.wh), price: priceText(l.micro), amount: moneyText(l.fen) }));
  return {
    site: site.id,
    from: settled.from,
    to: settled.to,
    currency: site.currency,
    utility: { tariff, lines, kwh: kwhText(masterWh), amount: moneyText(utilityFen), average_price: averagePrice(utilityFen, masterWh), flat_price: flatPrice },
    tenants: { kwh: kwhText(tenantWh), amount: moneyText(tenantFen), average_price: averagePrice(tenantFen, tenantWh) },
    recovery_rate: utilityFen === 0 ? '0.0000' : new Dec(tenantFen).div(utilityFen).toFixed(4, Dec.ROUND_HALF_UP),
    unrecovered: moneyText(utilityFen - tenantFen),
    markup_cap: cap.toString(),
    price_cap: priceCap.toFixed(6),
    accounts,
  };
}
