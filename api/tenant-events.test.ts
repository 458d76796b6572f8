import { describe, expect, it } from 'vitest';
import type { Account } from '../core/index.ts';
import type { EventOut } from './data/read-model.ts';
import { TENANT_EVENT_KINDS, tenantEvents } from './tenant-events.ts';

/**
 * A prepaid tenant is told, in its language, when its power will be cut, was cut and came
 * back (the relay events of workers/enforcement.ts), as it is told of a low balance; the
 * managers' wording (account ids, manager names, stale-data reasons) never reaches it.
 */
const account = { id: 'A1', name: 'Bakery', lowBalance: '20.00' } as unknown as Account;
const ev = (kind: string, detail: string, acc = 'A1'): EventOut => ({ time: '2026-11-02T08:00:00+08:00', kind, account: acc, meter: 'T1', detail });

describe('tenant relay events', () => {
  it('are shown to the tenant: warning, final warning, trip and restore', () => {
    for (const k of ['relay_warning', 'relay_final_warning', 'relay_trip', 'relay_close']) expect(TENANT_EVENT_KINDS).toContain(k);
  });

  it('word the trip with the quoted balance, in zh and en, without the decision text', () => {
    const trip = ev('relay_trip', 'balance -1.00 with grace 0.00 is exhausted: trip');
    expect(tenantEvents([trip], account, 'zh')[0]).toMatchObject({ kind: 'relay_trip', meter: '', detail: '已断电：预付费余额已用完（余额 ¥-1.00）。充值后自动恢复供电。' });
    expect(tenantEvents([trip], account, 'en')[0].detail).toBe('Power cut: your prepaid balance is used up (balance ¥-1.00). Power comes back after you top up.');
    const restore = ev('relay_close', 'balance 35.00 is above 0.00: reconnect');
    expect(tenantEvents([restore], account, 'en')[0].detail).toBe('Power restored (balance ¥35.00).');
  });

  it("name the deferred cut's local time, and never a manager's name", () => {
    const deferred = ev('relay_final_warning', 'Bakery (A1): your prepaid balance is used up; power will be cut at 2026-11-02 22:00 unless you top up before then. protected window night until 2026-11-02 22:00');
    expect(tenantEvents([deferred], account, 'zh')[0].detail).toBe('预付费电量已用完，将于 2026-11-02 22:00 断电，请在此之前充值。');
    const forced = ev('relay_trip', 'manager ops-li forced power off until 2026-11-03 00:00: unpaid rent');
    const out = tenantEvents([forced], account, 'en')[0].detail;
    expect(out).toBe('Power was switched off by the property management. Please contact them with any question.');
    expect(out).not.toMatch(/ops-li|rent/);
  });

  it("keep out other accounts' events and the managers' relay kinds (mismatch, refused, failed)", () => {
    const evs = [ev('relay_trip', 'balance -1.00 with grace 0.00 is exhausted: trip', 'A2'), ev('relay_mismatch', 'trip accepted but the relay reads closed'), ev('relay_failed', 'gave up'), ev('relay_refused', 'wrong password')];
    expect(tenantEvents(evs, account, 'en')).toEqual([]);
  });
});
