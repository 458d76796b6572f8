import type { RangeSettlement } from '../bill/run.ts';
import { Dec } from '../decimal.ts';
import { BillingInputError } from '../errors.ts';
import { siteIndex } from '../settle/site-index.ts';
import { addDays } from '../tou/local-date.ts';
import type { LocalDate } from '../tou/local-date.ts';
import { PERIODS } from '../tou/schedule.ts';
import type { Period } from '../tou/schedule.ts';
import type { BillRun } from '../types.ts';
import { chargeFen, kwhText, moneyFen, moneyText, parseFixed, priceText } from '../units.ts';
import { utilityCellFen } from './utility-charge.ts';

/**
 * Recovery reconciliation (issue 3): what the utility charges for the master meter,
 * against what the tenants are charged, and each tenant's effective average price. A
 * tenant is flagged when it pays more than the cap over what the utility would charge for
 * its own energy mix (issue 11: its kWh of each day and period at the utility's prices;
 * a cap over the utility's flat price flagged every tenant billed at exactly the utility's
 * TOU prices, whose average is above the flat price). docs/billing.md section 8.
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
  readonly accounts: readonly {
    readonly account: string;
    readonly kwh: string;
    readonly amount: string;
    readonly average_price: string;
    /** What the utility would charge for this account's energy mix: each settlement line (day, kind, pool, period) priced at the utility's price, rounded to fen like a line. */
    readonly utility_amount: string;
    /** utility_amount x (1 + markup_cap), half-up to fen. */
    readonly cap_amount: string;
    /** cap_amount / kWh, 6 decimals ("0.000000" without energy). */
    readonly price_cap: string;
    /** amount > cap_amount. */
    readonly over_cap: boolean;
  }[];
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

  // What the utility would charge for each account's own mix: every settlement line of the
  // range (own, common shares, loss share; per day and period) at the utility's price of
  // that day and period, rounded to fen per line as the tenant's own lines are. A tenant
  // billed at exactly the utility's prices therefore costs exactly this, never more.
  const utilityOf = new Map<string, number>();
  for (const day of settled.days.slice(settled.fromDay)) {
    for (const l of day.lines) {
      const micro = idx.price(tariff, day.date, l.period);
      if (micro === undefined) throw new BillingInputError(`utility tariff '${tariff}' has no ${l.period} price in force on ${day.date}`, { field: 'utility.tariff' });
      utilityOf.set(l.account, (utilityOf.get(l.account) ?? 0) + chargeFen(l.wh, micro));
    }
  }

  let tenantWh = 0;
  let tenantFen = 0;
  const accounts = bill.accounts.map((a) => {
    const wh = (parseFixed(a.kwh.own, 3) ?? 0) + (parseFixed(a.kwh.common, 3) ?? 0) + (parseFixed(a.kwh.loss, 3) ?? 0);
    const fen = moneyFen(a.total_amount);
    tenantWh += wh;
    tenantFen += fen;
    const utilityFenOfMix = utilityOf.get(a.account) ?? 0;
    const capFen = new Dec(utilityFenOfMix).mul(cap.plus(1)).toDecimalPlaces(0, Dec.ROUND_HALF_UP).toNumber();
    return {
      account: a.account,
      kwh: kwhText(wh),
      amount: a.total_amount,
      average_price: averagePrice(fen, wh),
      utility_amount: moneyText(utilityFenOfMix),
      cap_amount: moneyText(capFen),
      price_cap: averagePrice(capFen, wh),
      over_cap: fen > capFen,
    };
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
    accounts,
  };
}
