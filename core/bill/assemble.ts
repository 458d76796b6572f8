import { Dec } from '../decimal.ts';
import { PERIODS } from '../tou/schedule.ts';
import type { Period } from '../tou/schedule.ts';
import type { AccountBill, BillLine, CellSummary, ChargeKind, MasterSummary } from '../types.ts';
import { byteOrder, kwhText, moneyText, priceMicro, priceText } from '../units.ts';

/**
 * Bill assembly (billing.md sections 5 and 6), one implementation for the offline bill
 * (billFromSettlement), the workers' live bill and the API's statements: lines summed per
 * (kind, pool, period, price), never re-priced; balances as exact sums of fen.
 */

const KIND_ORDER: Record<ChargeKind, number> = { own: 0, common: 1, loss: 2 };
const PERIOD_ORDER = Object.fromEntries(PERIODS.map((p, i) => [p, i])) as Record<Period, number>;

/** A settlement charge (or adjustment of one) of some day in the bill range. */
export interface ChargeInput {
  readonly kind: ChargeKind;
  readonly pool?: string;
  readonly period: Period;
  /** Decimal text with at most 6 places, as the settlement writes it. */
  readonly price: string;
  readonly wh: number;
  readonly fen: number;
}

/** Section 6 line order: kind, pool (byte order), period, price (numerically). */
export function compareLines(a: { kind: ChargeKind; pool?: string; period: Period; micro: number }, b: { kind: ChargeKind; pool?: string; period: Period; micro: number }): number {
  return KIND_ORDER[a.kind] - KIND_ORDER[b.kind] || byteOrder(a.pool ?? '', b.pool ?? '') || PERIOD_ORDER[a.period] - PERIOD_ORDER[b.period] || a.micro - b.micro;
}

/** The key lines are summed under: (kind, pool, period, price). */
export function lineKey(l: { kind: string; pool?: string; period: string; micro: number }): string {
  return `${l.kind}\u0000${l.pool ?? ''}\u0000${l.period}\u0000${l.micro}`;
}

/**
 * One account's bill: its range's charges summed per (kind, pool, period, price); a key
 * whose charges cancel out (a reversed line) is left out. opening = site-file opening +
 * payments before the range - charges of settled days before it; closing = opening +
 * payments in range - total.
 */
export function accountBill(account: string, charges: Iterable<ChargeInput>, openingFen: number, paymentsFen: number): AccountBill {
  const acc = new Map<string, { kind: ChargeKind; pool?: string; period: Period; micro: number; wh: number; fen: number }>();
  for (const c of charges) {
    const micro = priceMicro(c.price);
    const key = lineKey({ ...c, micro });
    const a = acc.get(key);
    if (a) {
      a.wh += c.wh;
      a.fen += c.fen;
    } else acc.set(key, { kind: c.kind, ...(c.pool !== undefined && c.kind === 'common' ? { pool: c.pool } : {}), period: c.period, micro, wh: c.wh, fen: c.fen });
  }
  const kwh = { own: 0, common: 0, loss: 0 };
  let total = 0;
  const lines: BillLine[] = [...acc.values()]
    .filter((l) => l.wh !== 0 || l.fen !== 0)
    .sort(compareLines)
    .map((l) => {
      kwh[l.kind] += l.wh;
      total += l.fen;
      return { kind: l.kind, ...(l.pool !== undefined ? { pool: l.pool } : {}), period: l.period, kwh: kwhText(l.wh), price: priceText(l.micro), amount: moneyText(l.fen) };
    });
  return {
    account,
    lines,
    kwh: { own: kwhText(kwh.own), common: kwhText(kwh.common), loss: kwhText(kwh.loss) },
    total_amount: moneyText(total),
    opening_balance: moneyText(openingFen),
    payments: moneyText(paymentsFen),
    closing_balance: moneyText(openingFen + paymentsFen - total),
  };
}

/** Section 6: loss_kwh / kwh to 4 places, ties away from zero; "0.0000" when kwh is 0 (never "-0.0000"). */
export function lossRate(lossWh: number, masterWh: number): string {
  if (masterWh === 0) return '0.0000';
  // decimal.js ROUND_HALF_UP rounds ties away from zero, negative values included.
  const r = new Dec(lossWh).div(masterWh).toFixed(4, Dec.ROUND_HALF_UP);
  return r === '-0.0000' ? '0.0000' : r;
}

/**
 * Section 6 `master`: range sums of the day-period cells.
 * @param vacant the site names a landlord account: `vacant_kwh` (section 11) is reported
 */
export function masterSummary(cells: Iterable<CellSummary>, vacant = false): MasterSummary {
  const s = { M: 0, T: 0, C: 0, V: 0, L: 0, alloc: 0, abn: 0 };
  for (const c of cells) {
    s.M += c.masterWh;
    s.T += c.tenantWh;
    s.C += c.commonWh;
    s.V += c.vacantWh ?? 0;
    s.L += c.lossWh;
    s.alloc += c.lossAllocatedWh;
    s.abn += c.lossAbnormalWh;
  }
  return {
    kwh: kwhText(s.M),
    tenant_kwh: kwhText(s.T),
    common_kwh: kwhText(s.C),
    // Section 11: the part of tenant_kwh metered on vacant units (the landlord's).
    ...(vacant ? { vacant_kwh: kwhText(s.V) } : {}),
    loss_kwh: kwhText(s.L),
    loss_allocated_kwh: kwhText(s.alloc),
    loss_abnormal_kwh: kwhText(s.abn),
    loss_rate: lossRate(s.L, s.M),
  };
}
