import { Dec } from '../decimal.ts';
import type { Account, Meter, Site } from '../site/model.ts';
import { periodAt } from '../tou/instant.ts';
import { zoneOf } from '../tou/zone.ts';
import { divRoundHalfUp, moneyFen, moneyText, mulDivFloor } from '../units.ts';
import { multiplierAt } from '../counters/meter-changes.ts';
import { siteIndex } from '../settle/site-index.ts';
import { dayChargesOf } from './provisional.ts';

/**
 * billing.md section 5: the live balance between settlements, the cost per hour, the
 * projected hours to zero and the low-balance alert. Pure functions of figures the workers
 * (and the API, before the workers ran) gather: no clock, the caller passes `now`.
 * Everything a tenant will be charged is in them: own energy, common-area and loss shares.
 */

/**
 * live balance = opening + payments up to now - charges of the settled days (every
 * revision) - provisional charges of the days not yet settled. All terms are fen sums of
 * lines rounded by section 4, so the balance is exact in fen.
 */
export function liveBalanceFen(closingFen: number, provisionalFen: number): number {
  return closingFen - provisionalFen;
}

/**
 * Hours until the balance reaches zero at the trailing 24 h spending rate (section 5):
 * balance / (spent / 24), rounded down to 0.1 h; null when nothing was spent (no
 * projection), 0 when the balance is already at or below zero.
 */
export function hoursToZero(balanceFen: number, spentLast24hFen: number): number | null {
  if (balanceFen <= 0) return 0;
  if (spentLast24hFen <= 0) return null;
  // A projection, not money: rounded down so it never promises more than the rate allows.
  // floor(balance x 240 / spent) tenths of an hour, exact in integers (the balance job runs
  // it for every account every few seconds; decimal.js was 15 % of the live figures' time).
  return mulDivFloor(balanceFen, 240, spentLast24hFen) / 10;
}

/** Hours left as text with one decimal, rounded down like hoursToZero (a stored figure is never shown rounded up). */
export function hoursText(hours: number | null | undefined): string | null {
  if (hours === null || hours === undefined || !Number.isFinite(hours)) return null;
  return new Dec(String(hours)).toDecimalPlaces(1, Dec.ROUND_DOWN).toFixed(1);
}

/** Status of a balance: negative below zero, low below the account's `low_balance`, else ok. */
export function liveStatus(balanceFen: number, lowBalanceFen: number | undefined): 'ok' | 'low' | 'negative' {
  if (balanceFen < 0) return 'negative';
  return lowBalanceFen !== undefined && balanceFen < lowBalanceFen ? 'low' : 'ok';
}

/** The last interval of a meter's raw readings: raw register delta (Wh) over time (ms). */
export interface LastInterval {
  readonly wh: number;
  readonly ms: number;
  /**
   * Epoch ms of the interval's later reading: the multiplier in force then applies, and an
   * interval across a meter change counts 0 (billing.md section 11). Absent: multiplier of `now`.
   */
  readonly at?: number;
}

/**
 * A meter's primary energy in one hour at its mean power over its last interval, Wh
 * (Wh x 3,600,000 / ms, rounded half-up), the raw register delta times the multiplier in
 * force (billing.md section 11 rule 6); undefined for no interval, a negative one (a
 * reset), or one across a meter change (two registers' readings are no interval).
 */
export function hourAtLastPower(meter: Meter, iv: LastInterval, now: number): number | undefined {
  if (!(iv.ms > 0) || !(iv.wh > 0)) return undefined;
  const end = iv.at ?? now;
  if ((meter.changes ?? []).some((c) => c.at > end - iv.ms && c.at <= end)) return undefined;
  return divRoundHalfUp(iv.wh * multiplierAt(meter, end) * 3_600_000, iv.ms);
}

/**
 * Cost per hour of every account (section 5), fen/h: the settlement of section 4 applied to
 * one cell of the period in force at `now`, in which each meter's energy is one hour at its
 * mean power over its last interval (Wh in an hour = Wh x 3,600,000 / ms, rounded half-up);
 * own line plus pool and loss shares, each rounded to fen. Meters without a last interval
 * (or a negative one: a reset) count 0.
 */
export function costPerHour(site: Site, now: number, lastInterval: ReadonlyMap<string, LastInterval>): Map<string, number> {
  const period = periodAt(site, now);
  const energy = [];
  const byId = new Map(site.meters.map((m) => [m.id, m]));
  for (const [meter, iv] of lastInterval) {
    const m = byId.get(meter);
    const wh = m ? hourAtLastPower(m, iv, now) : undefined;
    // The occupant now pays for it (section 11).
    if (wh !== undefined) energy.push({ meter, period, wh, at: now });
  }
  const { fen } = dayChargesOf(site, zoneOf(site.timezone).dateOf(now), energy);
  return new Map(siteIndex(site).accountIds.map((id, i) => [id, fen[i]]));
}

/** Per-account alert state the workers persist between checks. */
export interface AlertState {
  /** True when a new crossing may raise an alert. */
  readonly armed: boolean;
}

export const INITIAL_ALERT_STATE: AlertState = { armed: true };

export interface AlertCheck {
  /** Live balance, fen. */
  readonly balanceFen: number;
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
  if (account.lowBalance !== undefined && check.balanceFen < moneyFen(account.lowBalance)) {
    reasons.push(`balance ${moneyText(check.balanceFen)} is below ${account.lowBalance}`);
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
