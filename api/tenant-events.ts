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

/** The balance a relay decision quotes ("balance -1.00 with grace ..."), if any. */
const quotedBalance = (detail: string) => /\bbalance (-?\d+\.\d{2})\b/.exec(detail)?.[1];
/** A decision taken by the property's manager (force on/off), not by the balance: said without the manager's name. */
const byManager = (detail: string) => /^manager \S+ forced/.test(detail);

/**
 * relay_warning / relay_final_warning (workers/enforcement.ts warningText): the power will be
 * cut when the prepaid balance is used up; a protected window defers the cut to a local
 * time the warning names ("power will be cut at 2026-11-02 08:00 unless ...").
 */
const relayWarning =
  (final: boolean): Wording =>
  (e, _account, lang) => {
    const at = /power will be cut at (.+?) unless/.exec(e.detail)?.[1];
    if (lang === 'zh') {
      if (at) return `预付费电量已用完，将于 ${at} 断电，请在此之前充值。`;
      return final ? '最后提醒：预付费电量即将用完，用完后将断电。请立即充值。' : '预付费电量即将用完，用完后将断电。请及时充值。';
    }
    if (at) return `Your prepaid electricity is used up: power will be cut at ${at} unless you top up before then.`;
    return final ? 'Final warning: your prepaid electricity is about to run out and power will then be cut. Please top up now.' : 'Your prepaid electricity runs out soon; power is cut when it is used up. Please top up.';
  };

/** relay_trip (workers/enforcement.ts): the account's power was switched off. */
const relayTrip: Wording = (e, _account, lang) => {
  const balance = quotedBalance(e.detail);
  if (byManager(e.detail)) return lang === 'zh' ? '物业已暂停供电。如有疑问请联系物业。' : 'Power was switched off by the property management. Please contact them with any question.';
  if (lang === 'zh') return `已断电：预付费余额已用完${balance !== undefined ? `（余额 ${yuan(balance)}）` : ''}。充值后自动恢复供电。`;
  return `Power cut: your prepaid balance is used up${balance !== undefined ? ` (balance ${yuan(balance)})` : ''}. Power comes back after you top up.`;
};

/** relay_close (workers/enforcement.ts): power restored after a payment or by the manager. */
const relayClose: Wording = (e, _account, lang) => {
  const balance = quotedBalance(e.detail);
  if (lang === 'zh') return `已恢复供电${balance !== undefined ? `（余额 ${yuan(balance)}）` : ''}。`;
  return `Power restored${balance !== undefined ? ` (balance ${yuan(balance)})` : ''}.`;
};

const TENANT_EVENTS: Readonly<Record<string, Wording>> = {
  low_balance: lowBalance,
  relay_warning: relayWarning(false),
  relay_final_warning: relayWarning(true),
  relay_trip: relayTrip,
  relay_close: relayClose,
};

/** The event kinds a tenant may see. */
export const TENANT_EVENT_KINDS: readonly string[] = Object.keys(TENANT_EVENTS);

/** A tenant's view of its events: only the kinds above, `detail` in its language, no meter ids. */
export function tenantEvents(events: readonly EventOut[], account: Account, lang: Lang): EventOut[] {
  return events
    .filter((e) => e.account === account.id && TENANT_EVENTS[e.kind] !== undefined)
    .map((e) => ({ time: e.time, kind: e.kind, account: e.account, meter: '', detail: TENANT_EVENTS[e.kind](e, account, lang) }));
}
