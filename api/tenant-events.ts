import type { Account } from '../core/index.ts';
import type { EventOut } from './data/read-model.ts';

/**
 * What a tenant sees of the event series (issue 11): only events about its own money, in
 * its language, without internal codes or UTC times. Manager-side events (a refused
 * `payment_conflict`, which names another payment; meter and loss alarms; data-quality
 * flags) are never shown to a tenant. To show a new kind to tenants, add its wording here.
 */
export type Lang = 'zh' | 'en';

type Wording = (e: EventOut, account: Account, lang: Lang) => string;

/** Money as the page shows it: ¥ and two decimals (the event's `value` is CNY). */
const yuan = (text: string | undefined) => (text === undefined ? undefined : `¥${text}`);

/**
 * low_balance (workers/balance.ts, reason from core checkLowBalance): "A101: balance 12.00
 * is below 50.00; about 30.5 h left at the last 24 h rate, below 48 h".
 */
const lowBalance: Wording = (e, account, lang) => {
  const balance = /balance (-?\d+\.\d{2}) is below/.exec(e.detail)?.[1];
  const hours = /about (\d+(?:\.\d+)?) h left/.exec(e.detail)?.[1];
  const days = hours !== undefined && Number(hours) > 48 ? (Number(hours) / 24).toFixed(1) : undefined;
  if (lang === 'zh') {
    const parts = [balance !== undefined ? `余额 ${yuan(balance)}，低于提醒线 ${yuan(account.lowBalance)}` : undefined, hours !== undefined ? `按最近 24 小时的用电约可再用 ${days !== undefined ? `${days} 天` : `${hours} 小时`}` : undefined].filter(Boolean);
    return `余额不足：${parts.join('；') || '余额偏低'}。请尽快充值。`;
  }
  const parts = [balance !== undefined ? `balance ${yuan(balance)}, below your alert level ${yuan(account.lowBalance)}` : undefined, hours !== undefined ? `about ${days !== undefined ? `${days} days` : `${hours} hours`} left at your last 24 hours' use` : undefined].filter(Boolean);
  return `Low balance: ${parts.join('; ') || 'your balance is low'}. Please top up soon.`;
};

const TENANT_EVENTS: Readonly<Record<string, Wording>> = { low_balance: lowBalance };

/** The event kinds a tenant may see. */
export const TENANT_EVENT_KINDS: readonly string[] = Object.keys(TENANT_EVENTS);

/** A tenant's view of its events: only the kinds above, `detail` in its language, no meter ids. */
export function tenantEvents(events: readonly EventOut[], account: Account, lang: Lang): EventOut[] {
  return events
    .filter((e) => e.account === account.id && TENANT_EVENTS[e.kind] !== undefined)
    .map((e) => ({ time: e.time, kind: e.kind, account: e.account, meter: '', detail: TENANT_EVENTS[e.kind](e, account, lang) }));
}
