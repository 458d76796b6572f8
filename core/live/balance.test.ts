import { describe, expect, it } from 'vitest';
import { checkLowBalance, costRate, hoursToZero, INITIAL_ALERT_STATE, liveBalance } from './balance.ts';
import type { AlertState } from './balance.ts';

describe('live balance (billing.md section 5)', () => {
  it('debits the unsettled own energy unrounded', () => {
    // 1.234 kWh x 1.0532 = 1.2996488 CNY; 100.00 - that = 98.7003512
    expect(liveBalance(10_000, [{ wh: 1234, micro: 1_053_200 }])).toEqual({ balance: '98.7003512', balanceFen: 9870, unsettled: '1.2996488' });
    expect(liveBalance(-50, []).balance).toBe('-0.5');
  });

  it('cost rate is power x price and hours to zero use the trailing 24 h spend', () => {
    expect(costRate(2500, 1_053_200)).toBe('2.633');
    expect(hoursToZero('100', 2400)).toBe(100);
    expect(hoursToZero('10', 0)).toBeNull();
    expect(hoursToZero('-1', 100)).toBe(0);
  });

  it('alerts once per crossing and re-arms only after a payment lifts the account out', () => {
    const account = { id: 'A1', lowBalance: '100.00', lowBalanceHours: 48 };
    let state: AlertState = INITIAL_ALERT_STATE;
    const step = (balance: string, hoursLeft: number | null, paid = false) => {
      const d = checkLowBalance(account, state, { balance, hoursLeft, paidSinceLastCheck: paid });
      state = d.state;
      return d.raise;
    };
    expect(step('150', 200)).toBe(false);
    expect(step('99.99', 100)).toBe(true);
    expect(step('90', 90)).toBe(false); // same crossing
    expect(step('80', 80, true)).toBe(false); // paid, still low: stays disarmed
    expect(step('300', 300, true)).toBe(false); // lifted: re-armed
    expect(step('250', 40)).toBe(true); // hours below low_balance_hours
    expect(checkLowBalance(account, { armed: true }, { balance: '50', hoursLeft: null, paidSinceLastCheck: false }).reason).toBe('A1: balance 50.00 is below 100.00');
  });
});
