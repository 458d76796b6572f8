import type { Site } from '../site/model.ts';
import { instantProblem } from '../date-range.ts';
import { zoneOf } from '../tou/zone.ts';

/**
 * When a payment may be dated (issue 11). A payment dated far in the future was recorded
 * and listed but never credited (balances count payments up to now); one dated before the
 * site existed silently went into every opening balance. The clock is the caller's (core
 * has none): the API's and `submeter pay`'s now.
 */

/** Clock skew allowed between the payer's system and ours. */
export const PAYMENT_FUTURE_TOLERANCE_MS = 5 * 60_000;

/** Why a payment may not be dated `timeMs`, or undefined. */
export function paymentTimeProblem(site: Site, timeMs: number, nowMs: number): string | undefined {
  const zone = zoneOf(site.timezone);
  const range = instantProblem(timeMs);
  if (range) return `payment time ${range}`;
  if (timeMs > nowMs + PAYMENT_FUTURE_TOLERANCE_MS) {
    return `payment time ${zone.format(timeMs)} is in the future (now is ${zone.format(nowMs)}; at most ${PAYMENT_FUTURE_TOLERANCE_MS / 60_000} minutes ahead is accepted)`;
  }
  if (timeMs < zone.midnight(site.firstDay)) return `payment time ${zone.format(timeMs)} is before the site's first day ${site.firstDay}`;
  return undefined;
}
