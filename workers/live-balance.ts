import { siteIndex } from '../core/index.ts';
import type { LocalDate, Period, Site } from '../core/index.ts';

/**
 * TEMPORARY ADAPTER for billing.md section 5's live figures, until the core exports its
 * own (issue 3 lists "the live balance, cost rate and projected hours to zero; low-balance
 * crossing detection" for the core). Pure and integer: prices come from the core's
 * siteIndex, sums are BigInt micro-fen, rounding happens once, at the displayed value.
 * When the core's functions land, these are replaced by calls to them.
 */

/** Own energy of an account not yet settled, per local date and period. */
export interface UnsettledEnergy {
  readonly account: string;
  readonly date: LocalDate;
  readonly period: Period;
  readonly wh: number;
}

/** wh x micro-CNY/kWh = 10^-7 fen: exact sums of unsettled cost per account (section 5: unrounded until settlement). */
export function unsettledCost(site: Site, items: readonly UnsettledEnergy[]): Map<string, bigint> {
  const idx = siteIndex(site);
  const out = new Map<string, bigint>();
  for (const it of items) {
    const a = idx.accountPos.get(it.account);
    if (a === undefined || it.wh === 0) continue;
    const micro = idx.price(idx.tariffOf[a], it.date, it.period) ?? 0;
    out.set(it.account, (out.get(it.account) ?? 0n) + BigInt(it.wh) * BigInt(micro));
  }
  return out;
}

const E7 = 10_000_000n;

/** round_half_up of a signed 10^-7-fen amount to fen, ties away from zero (display only). */
export function toFen(units: bigint): number {
  const neg = units < 0n;
  const abs = neg ? -units : units;
  const fen = (2n * abs + E7) / (2n * E7);
  return Number(neg ? -fen : fen);
}

/**
 * Live balance in fen (section 5): the last closing balance (opening + payments - settled
 * charges, exact integers) minus the unsettled cost, rounded once for display.
 */
export function liveBalanceFen(closingFen: number, unsettled: bigint): number {
  return toFen(BigInt(closingFen) * E7 - unsettled);
}

/**
 * Cost rate in fen per hour (section 5: current power x current price) from the last
 * interval of the account's meters: dWh over dMs at micro-CNY/kWh.
 * fen/h = dWh * 3.6e6 / dMs (W) / 1000 (kW) * micro / 1e6 (CNY) * 100 = dWh * 3.6e6 * micro / (dMs * 1e7).
 */
export function costRateFenPerHour(dWh: number, dMs: number, micro: number): number {
  if (dMs <= 0 || dWh <= 0) return 0;
  const num = BigInt(dWh) * 3_600_000n * BigInt(micro);
  const den = BigInt(dMs) * E7;
  return Number((2n * num + den) / (2n * den));
}

/**
 * Hours until zero at the trailing-24 h spending rate (section 5, low_balance_hours);
 * undefined when nothing was spent (no projection). A float: display and threshold only.
 */
export function hoursToZero(balanceFen: number, spent24hUnits: bigint): number | undefined {
  if (spent24hUnits <= 0n) return undefined;
  if (balanceFen <= 0) return 0;
  // hours = balance / (spent / 24): in 10^-7 fen units.
  return Number((BigInt(balanceFen) * E7 * 24n * 1000n) / spent24hUnits) / 1000;
}

export type AlertState = 'armed' | 'fired';

export interface CrossingInput {
  readonly state: AlertState;
  readonly balanceFen: number;
  readonly lowBalanceFen?: number;
  readonly hoursLeft?: number;
  readonly lowBalanceHours?: number;
}

/**
 * Low-balance crossing (section 5): raised once when the balance falls below the threshold
 * (or hours to zero below low_balance_hours), then not again until re-armed by a payment
 * that lifts the balance back above the threshold.
 */
export function lowBalanceStep(i: CrossingInput): { state: AlertState; fire: boolean; why?: string } {
  const belowMoney = i.lowBalanceFen !== undefined && i.balanceFen < i.lowBalanceFen;
  const belowHours = i.lowBalanceHours !== undefined && i.hoursLeft !== undefined && i.hoursLeft < i.lowBalanceHours;
  if (i.state === 'armed') {
    if (belowMoney) return { state: 'fired', fire: true, why: 'balance' };
    if (belowHours) return { state: 'fired', fire: true, why: 'hours' };
    return { state: 'armed', fire: false };
  }
  return { state: belowMoney || belowHours ? 'fired' : 'armed', fire: false };
}
