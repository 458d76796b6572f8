/**
 * What a tenant reads about their power supply, in their language (zh default, en): one
 * sentence per policy reason (core/enforcement decide.ts) and per deferral. Figures are
 * filled in by the caller: the amount to pay, the time of a scheduled cut. Words for a
 * person, as the tenant page writes them (api/public/i18n.js): money as ¥, times in the
 * site's local time as "11月19日 08:00" / "19 Nov 08:00", never an RFC 3339 stamp.
 */

export type Lang = 'zh' | 'en';

const REASON: Record<string, Record<Lang, string>> = {
  'balance-ok': { zh: '余额充足，正常供电。', en: 'Your balance is sufficient; power is on.' },
  'balance-exhausted': { zh: '预付费余额已用完，已断电。', en: 'Your prepaid balance is used up; power has been cut.' },
  'below-reconnect': { zh: '预付费余额不足，已断电。缴清欠费后自动恢复供电。', en: 'Your prepaid balance is used up; power is off until the debt is paid, then it comes back by itself.' },
  reconnect: { zh: '已缴费，供电已恢复。', en: 'Payment received; power is back on.' },
  'protected-account': { zh: '本户为保电户，不会断电；用电仍照常计费。', en: 'This account is protected: power is never cut; energy is still charged.' },
  hold: { zh: '物业暂缓断电；用电仍照常计费。', en: 'The property has put cut-offs on hold; energy is still charged.' },
  'force-close': { zh: '物业已为您保持供电。', en: 'The property keeps your power on.' },
  'force-trip': { zh: '物业已暂停供电，请联系物业。', en: 'The property has switched your power off; please contact the property office.' },
  'no-balance': { zh: '余额尚未计算。', en: 'Your balance has not been computed yet.' },
  'mode-off': { zh: '本站未启用远程断电。', en: 'Remote cut-off is not enabled at this site.' },
  'no-relay': { zh: '您的电表不支持远程断电。', en: 'Your meter has no remote switch.' },
  debt: { zh: '预付费余额已用完，请尽快缴费。', en: 'Your prepaid balance is used up; please pay soon.' },
};

const DEFERRED: Record<string, Record<Lang, (until?: string) => string>> = {
  'protected-window': {
    zh: (until) => `余额已用完。为避免夜间或节假日断电，将于 ${until ?? '下一个工作时段'} 断电，请在此之前缴费。`,
    en: (until) => `Your balance is used up. Power is not cut at night or on holidays; it will be cut at ${until ?? 'the next working period'} unless you pay before then.`,
  },
  'stale-data': {
    zh: () => '余额已用完；抄表数据暂不完整，暂不断电。请尽快缴费。',
    en: () => 'Your balance is used up; the meter data is incomplete, so power is not cut for now. Please pay soon.',
  },
  'protected-account': { zh: () => '本户为保电户，不会断电；欠费仍需缴清。', en: () => 'This account is protected and never cut; the debt must still be paid.' },
  hold: { zh: () => '余额已用完；物业暂缓断电，欠费仍需缴清。', en: () => 'Your balance is used up; the property has put the cut-off on hold, the debt must still be paid.' },
};

const WARNING: Record<'warning' | 'final', Record<Lang, string>> = {
  warning: { zh: '余额即将用完，请及时缴费。', en: 'Your balance will run out soon; please top up.' },
  final: { zh: '最后提醒：余额即将用完，用完后将断电。', en: 'Final warning: your balance is about to run out; power will then be cut.' },
};

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * A local time (RFC 3339 at the site's offset, as formatLocal writes it) in words: the
 * wall-clock digits are read as they are, so the site's zone is kept whatever the reader's.
 */
export function localTimeWords(rfc3339: string, lang: Lang): string {
  const month = Number(rfc3339.slice(5, 7));
  const day = Number(rfc3339.slice(8, 10));
  const hm = rfc3339.slice(11, 16);
  return lang === 'zh' ? `${month}月${day}日 ${hm}` : `${day} ${MONTHS[month - 1]} ${hm}`;
}

/** The tenant's sentence for the relay's state and why. `until` is a local RFC 3339 time; `restore` a money text. */
export function relayWhy(lang: Lang, reason: string, opts: { deferred?: string; until?: string; warning?: 'none' | 'warning' | 'final'; restore?: string } = {}): string {
  if (opts.deferred && DEFERRED[opts.deferred]) return DEFERRED[opts.deferred][lang](opts.until !== undefined ? localTimeWords(opts.until, lang) : undefined);
  let text = (REASON[reason] ?? REASON['balance-ok'])[lang];
  if (opts.restore) text += lang === 'zh' ? `需缴纳至少 ¥${opts.restore} 恢复供电。` : ` Pay at least ¥${opts.restore} to get power back.`;
  if (opts.warning && opts.warning !== 'none' && reason === 'balance-ok') text = WARNING[opts.warning][lang];
  return text;
}
