import { Dec } from '../decimal.ts';
import type { Account } from '../site/model.ts';
import { moneyFen } from '../units.ts';

/**
 * billing.md section 5: the live balance between settlements, the cost rate, the projected
 * hours to zero and the low-balance alert. Pure functions of numbers the workers and the
 * API already hold (last closing balance, today's unsettled own energy, current power);
 * no clock: the caller passes what happened.
 */

/** Today's own energy not yet settled, per price (micro-CNY/kWh). */
export interface UnsettledEnergy {
  readonly wh: number;
  readonly micro: number;
}

export interface LiveBalance {
  /** Exact decimal CNY (unrounded: section 5 rounds only at settlement). */
  readonly balance: string;
  /** The same, rounded half-up (away from zero) to fen, for storage and display. */
  readonly balanceFen: number;
  /** Unsettled cost of the current day, exact decimal CNY. */
  readonly unsettled: string;
}

/** live balance = last closing balance - not yet settled cost (own energy x price, unrounded). */
export function liveBalance(lastClosingFen: number, unsettled: readonly UnsettledEnergy[]): LiveBalance {
  let cost = new Dec(0);
  for (const u of unsettled) cost = cost.plus(new Dec(u.wh).mul(u.micro).div(1e9)); // Wh x micro-CNY/kWh / 10^9 = CNY
  const balance = new Dec(lastClosingFen).div(100).minus(cost);
  return { balance: balance.toString(), balanceFen: balance.mul(100).toDecimalPlaces(0, Dec.ROUND_HALF_UP).toNumber(), unsettled: cost.toString() };
}

/** Live cost rate (CNY/h) = current power (kW) x current price; power in W, price in micro-CNY/kWh. */
export function costRate(powerW: number, micro: number): string {
  return new Dec(Math.max(0, powerW)).mul(micro).div(1e9).toString();
}

/**
 * Hours until the balance reaches zero at the trailing 24 h spending rate; null when
 * nothing was spent (no projection), 0 when the balance is already at or below zero.
 */
export function hoursToZero(balance: string, spentLast24hFen: number): number | null {
  const b = new Dec(balance);
  if (b.lte(0)) return 0;
  if (spentLast24hFen <= 0) return null;
  // balance / (spent / 24 h), rounded down to 0.1 h: a projection, not money.
  return b.mul(100).mul(24).div(spentLast24hFen).toDecimalPlaces(1, Dec.ROUND_DOWN).toNumber();
}

/** Per-account alert state the workers persist between checks. */
export interface AlertState {
  /** True when a new crossing may raise an alert. */
  readonly armed: boolean;
}

export const INITIAL_ALERT_STATE: AlertState = { armed: true };

export interface AlertCheck {
  /** Live balance, exact decimal CNY. */
  readonly balance: string;
  readonly hoursLeft: number | null;
  /** A payment was credited since the previous check. */
  readonly paidSinceLastCheck: boolean;
}

export interface AlertDecision {
  readonly raise: boolean;
  readonly reason?: string;
  readonly state: AlertState;
}

/**
 * Section 5: raised when the live balance falls below `low_balance` or the projected hours
 * fall below `low_balance_hours`; once per crossing; re-armed by a payment that lifts the
 * account back out of the low condition.
 */
export function checkLowBalance(account: Pick<Account, 'id' | 'lowBalance' | 'lowBalanceHours'>, state: AlertState, check: AlertCheck): AlertDecision {
  const reasons: string[] = [];
  const balance = new Dec(check.balance);
  if (account.lowBalance !== undefined && balance.lt(new Dec(moneyFen(account.lowBalance)).div(100))) {
    reasons.push(`balance ${balance.toDecimalPlaces(2, Dec.ROUND_HALF_UP).toFixed(2)} is below ${account.lowBalance}`);
  }
  if (account.lowBalanceHours !== undefined && check.hoursLeft !== null && check.hoursLeft < account.lowBalanceHours) {
    reasons.push(`about ${check.hoursLeft} h left at the last 24 h rate, below ${account.lowBalanceHours} h`);
  }
  const low = reasons.length > 0;
  let armed = state.armed;
  if (!armed && !low && check.paidSinceLastCheck) armed = true;
  if (low && armed) return { raise: true, reason: `${account.id}: ${reasons.join('; ')}`, state: { armed: false } };
  return { raise: false, state: { armed } };
}
