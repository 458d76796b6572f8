import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Dec } from '../decimal.ts';
import { checkLowBalance, hoursText, hoursToZero, INITIAL_ALERT_STATE, liveBalanceFen, liveStatus } from './balance.ts';
import type { AlertState } from './balance.ts';

describe('live balance (billing.md section 5)', () => {
  it('is the settled balance less the provisional charges, in fen', () => {
    expect(liveBalanceFen(10_000, 1_268)).toBe(8_732);
    expect(liveBalanceFen(-50, 0)).toBe(-50);
    expect(liveStatus(-1, undefined)).toBe('negative');
    expect(liveStatus(9_999, 10_000)).toBe('low');
    expect(liveStatus(10_000, 10_000)).toBe('ok');
  });

  it('hours to zero use the trailing 24 h spend and round down, in the core and wherever they are shown', () => {
    expect(hoursToZero(10_000, 240_000)).toBe(1);
    expect(hoursToZero(1_000, 0)).toBeNull();
    expect(hoursToZero(-100, 100)).toBe(0);
    // The divergence issue 10 found: 100.00 CNY with 22.50 spent in 24 h is 106.66 h; the API
    // fallback rounded half-up (106.7) where the core rounds down (106.6).
    expect(hoursToZero(10_000, 2_250)).toBe(106.6);
    expect(hoursText(hoursToZero(10_000, 2_250))).toBe('106.6');
    // A stored figure with more places is never shown rounded up.
    expect(hoursText(52.25)).toBe('52.2');
    expect(hoursText(null)).toBeNull();
  });

  it('alerts once per crossing and re-arms only after a payment lifts the account out', () => {
    const account = { id: 'A1', lowBalance: '100.00', lowBalanceHours: 48 };
    let state: AlertState = INITIAL_ALERT_STATE;
    const step = (balanceFen: number, hoursLeft: number | null, paid = false) => {
      const d = checkLowBalance(account, state, { balanceFen, hoursLeft, paidSinceLastCheck: paid });
      state = d.state;
      return d.raise;
    };
    expect(step(15_000, 200)).toBe(false);
    expect(step(9_999, 100)).toBe(true);
    expect(step(9_000, 90)).toBe(false); // same crossing
    expect(step(8_000, 80, true)).toBe(false); // paid, still low: stays disarmed
    expect(step(30_000, 300, true)).toBe(false); // lifted: re-armed
    expect(step(25_000, 40)).toBe(true); // hours below low_balance_hours
    expect(checkLowBalance(account, { armed: true }, { balanceFen: 5_000, hoursLeft: null, paidSinceLastCheck: false }).reason).toBe('A1: balance 50.00 is below 100.00');
  });

  it('hours to zero in integer tenths = balance x 24 / spent rounded down to 0.1 h in decimal, on random figures', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10 ** 12 }), fc.integer({ min: 1, max: 10 ** 9 }), (balance, spent) => {
        expect(hoursToZero(balance, spent)).toBe(new Dec(balance).mul(24).div(spent).toDecimalPlaces(1, Dec.ROUND_DOWN).toNumber());
      }),
      { numRuns: 2000, seed: 5 },
    );
  });
});
