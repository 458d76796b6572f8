import { Dec } from '../core/decimal.ts';
import type { Account, Site } from '../core/site/index.ts';
import { versionIndexOn } from '../core/tou/schedule.ts';
import { PERIODS } from '../core/tou/schedule.ts';
import type { Period } from '../core/tou/schedule.ts';
import { parseFixed } from '../core/units.ts';
import type { AccountStatement, ReadModel, StatementLine } from './data/read-model.ts';
import { kwhText, moneyText, priceText } from './format.ts';
import { monthRange } from './local-time.ts';
import type { MonthStore } from './month-store.ts';

export interface Correction {
  readonly kind: StatementLine['kind'];
  readonly pool?: string;
  readonly period: Period;
  readonly price: string;
  readonly kwh: string;
  readonly amount: string;
}

export interface Explain {
  readonly prices: readonly { readonly period: Period; readonly price: string }[];
  readonly pools: readonly { readonly id: string; readonly name: string; readonly method: string; readonly accounts: readonly string[]; readonly account_count: number; readonly includes_you: boolean }[];
  readonly loss: { readonly normal_rate: string; readonly method: string };
  readonly area_m2: string;
}

export interface StatementOut extends AccountStatement {
  readonly month: string;
  readonly status: 'open' | 'closed';
  readonly closed_at: string | null;
  readonly corrections_after_close: readonly Correction[];
  readonly explain: Explain;
}

/** What a tenant needs to re-derive each line: prices, pools and the loss rule (billing.md sections 4-5). */
export function explain(site: Site, account: Account, date: string): Explain {
  const tariff = site.tariffs.find((t) => t.id === account.tariff);
  const vi = tariff ? versionIndexOn(tariff, date) : -1;
  const prices = tariff && vi >= 0 ? tariff.versions[vi].prices : {};
  return {
    prices: PERIODS.filter((p) => prices[p] !== undefined).map((p) => ({ period: p, price: priceText(prices[p]) })),
    pools: site.pools.map((p) => ({ id: p.id, name: p.name, method: p.method, accounts: [...p.accounts], account_count: p.accounts.length, includes_you: p.accounts.includes(account.id) })),
    loss: { normal_rate: site.loss.normalRate, method: site.loss.method },
    area_m2: account.areaM2,
  };
}

const lineKey = (l: { kind: string; pool?: string; period: string; price: string }) => `${l.kind}|${l.pool ?? ''}|${l.period}|${l.price}`;

/** Now minus frozen, per line key; only non-zero differences. */
export function corrections(frozen: readonly StatementLine[], now: readonly StatementLine[]): Correction[] {
  const diff = new Map<string, { line: StatementLine; wh: number; fen: number }>();
  const add = (l: StatementLine, sign: 1 | -1) => {
    const d = diff.get(lineKey(l)) ?? { line: l, wh: 0, fen: 0 };
    d.wh += sign * (parseFixed(l.kwh, 3) ?? 0);
    d.fen += sign * (parseFixed(l.amount, 2) ?? 0);
    diff.set(lineKey(l), d);
  };
  for (const l of frozen) add(l, -1);
  for (const l of now) add(l, 1);
  return [...diff.values()]
    .filter((d) => d.wh !== 0 || d.fen !== 0)
    .map((d) => ({ kind: d.line.kind, ...(d.line.pool ? { pool: d.line.pool } : {}), period: d.line.period, price: d.line.price, kwh: kwhText(d.wh), amount: moneyText(d.fen) }));
}

/**
 * The statement of one account and month. A closed month answers the frozen statement
 * (immutable); what changed in the data since shows beside it as corrections, which the
 * balance already carries.
 */
export async function statementFor(read: ReadModel, months: MonthStore, site: Site, account: Account, month: string): Promise<StatementOut> {
  const { from, to } = monthRange(month);
  // Whether the month is closed is cached like the statement (1 s; a close in this
  // process clears it): one Redis round trip less per request on the busiest route.
  const [[current], closed] = await Promise.all([read.statements(site, [account], from, to), read.cache.get(`closed|${site.id}|${month}`, () => months.get(site.id, month))]);
  const frozen = closed?.statements.find((s) => s.account === account.id);
  const base = frozen ?? current;
  return {
    ...base,
    month,
    status: closed ? 'closed' : 'open',
    closed_at: closed?.closed_at ?? null,
    corrections_after_close: frozen ? corrections(frozen.lines, current.lines) : [],
    explain: explain(site, account, from),
  };
}

// ---- CSV ---------------------------------------------------------------------------

function csvCell(v: string): string {
  return /[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

/** One row per line item, then the totals; the same decimal texts as the JSON. */
export function statementCsv(st: StatementOut): string {
  const rows = [['account', 'month', 'status', 'kind', 'pool', 'period', 'kwh', 'price', 'amount']];
  for (const l of st.lines) rows.push([st.account, st.month, st.status, l.kind, l.pool ?? '', l.period, l.kwh, l.price, l.amount]);
  for (const c of st.corrections_after_close) rows.push([st.account, st.month, st.status, `correction:${c.kind}`, c.pool ?? '', c.period, c.kwh, c.price, c.amount]);
  rows.push([st.account, st.month, st.status, 'total', '', '', '', '', st.total_amount]);
  rows.push([st.account, st.month, st.status, 'opening_balance', '', '', '', '', st.opening_balance]);
  rows.push([st.account, st.month, st.status, 'payments', '', '', '', '', st.payments]);
  rows.push([st.account, st.month, st.status, 'closing_balance', '', '', '', '', st.closing_balance]);
  return rows.map((r) => r.map(csvCell).join(',')).join('\r\n') + '\r\n';
}

// ---- printable HTML (zh / en) -----------------------------------------------------

type Lang = 'zh' | 'en';

const TEXT = {
  zh: {
    title: '电费账单',
    account: '户号',
    month: '账期',
    status: { open: '未结账（数据可能更新）', closed: '已结账' },
    kind: { own: '本户电表', common: '公共区域分摊', loss: '线损分摊' },
    period: { sharp: '尖峰', peak: '高峰', flat: '平段', valley: '低谷', deep_valley: '深谷' },
    cols: ['项目', '时段', '电量 (kWh)', '单价 (元/kWh)', '金额 (元)'],
    total: '本期电费合计',
    opening: '期初余额',
    payments: '本期充值',
    closing: '期末余额',
    adjustments: '已结算日的更正（已计入上表）',
    correctionsTitle: '结账后的数据更正（已计入余额，本账单不变）',
    how: '费用如何计算',
    howLine: '每行金额 = 每日该时段电量 × 您的电价，按日四舍五入到分后求和；余额 = 期初余额 + 充值 − 电费。',
    method: { area: '按面积', consumption: '按各户用电量', equal: '平均' },
    pool: (name: string, method: string, n: number, you: boolean) => `公共区域「${name}」的电量${method}分摊给 ${n} 户${you ? '（含您）' : '（不含您）'}。`,
    loss: (rate: string, method: string) => `线损 = 总表电量 − 各户电量 − 公共区域电量。不超过总表电量 ${rate} 的部分${method}分摊；超出部分为异常损耗，由物业承担，不向租户收取。`,
    prices: '您的电价',
    area: '您的面积',
    generated: '生成时间',
  },
  en: {
    title: 'Electricity statement',
    account: 'Account',
    month: 'Month',
    status: { open: 'open (data may still change)', closed: 'closed' },
    kind: { own: 'Your own meter', common: 'Common area share', loss: 'Line loss share' },
    period: { sharp: 'Sharp', peak: 'Peak', flat: 'Flat', valley: 'Valley', deep_valley: 'Deep valley' },
    cols: ['Item', 'Period', 'Energy (kWh)', 'Price (CNY/kWh)', 'Amount (CNY)'],
    total: 'Total for the month',
    opening: 'Opening balance',
    payments: 'Payments',
    closing: 'Closing balance',
    adjustments: 'Corrections of settled days (already in the lines above)',
    correctionsTitle: 'Data corrected after closing (carried in your balance; this statement does not change)',
    how: 'How the amounts are worked out',
    howLine: 'Each amount = the energy of each day in that period × your price, rounded to the fen per day, then summed. Balance = opening + payments − charges.',
    method: { area: 'by floor area', consumption: "by each account's own use", equal: 'equally' },
    pool: (name: string, method: string, n: number, you: boolean) => `Common area "${name}" is shared ${method} among ${n} accounts${you ? ' (you included)' : ' (not you)'}.`,
    loss: (rate: string, method: string) => `Loss = master meter − tenant meters − common meters. Up to ${rate} of the master energy is shared ${method}; anything above is abnormal loss, borne by the property and never charged to tenants.`,
    prices: 'Your prices',
    area: 'Your floor area',
    generated: 'Generated',
  },
} as const;

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

/** 0.03 -> "3%" (decimal, exact). */
function pct(rate: string): string {
  return `${new Dec(rate).times(100).toString()}%`;
}

export function statementHtml(st: StatementOut, lang: Lang, generatedAt: string): string {
  const t = TEXT[lang];
  const line = (l: { kind: keyof typeof t.kind; pool?: string; period: Period; kwh: string; price: string; amount: string }) =>
    `<tr><td>${esc(t.kind[l.kind])}${l.pool ? ` · ${esc(st.explain.pools.find((p) => p.id === l.pool)?.name ?? l.pool)}` : ''}</td><td>${esc(t.period[l.period])}</td><td class="n">${l.kwh}</td><td class="n">${l.price}</td><td class="n">${l.amount}</td></tr>`;
  const head = `<tr>${t.cols.map((c, i) => `<th${i >= 2 ? ' class="n"' : ''}>${esc(c)}</th>`).join('')}</tr>`;
  const adj = st.adjustments.length
    ? `<h2>${esc(t.adjustments)}</h2><table><tr><th>${lang === 'zh' ? '日期' : 'Date'}</th>${t.cols.map((c, i) => `<th${i >= 2 ? ' class="n"' : ''}>${esc(c)}</th>`).join('')}<th>${lang === 'zh' ? '原因' : 'Reason'}</th></tr>${st.adjustments
        .map((a) => `<tr><td>${a.date}</td>${line(a).slice(4, -5)}<td>${esc(a.reason)}</td></tr>`)
        .join('')}</table>`
    : '';
  const corr = st.corrections_after_close.length ? `<h2>${esc(t.correctionsTitle)}</h2><table>${head}${st.corrections_after_close.map((c) => line(c)).join('')}</table>` : '';
  const pools = st.explain.pools.map((p) => `<li>${esc(t.pool(p.name, t.method[p.method as keyof typeof t.method] ?? p.method, p.account_count, p.includes_you))}</li>`).join('');
  return `<!doctype html>
<html lang="${lang === 'zh' ? 'zh-CN' : 'en'}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(t.title)} ${esc(st.account)} ${st.month}</title>
<style>
body{font-family:system-ui,"Noto Sans CJK SC","PingFang SC",sans-serif;margin:1.5rem auto;max-width:48rem;padding:0 1rem;color:#111}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}th,td{border-bottom:1px solid #ccc;padding:.3rem .4rem;text-align:left}
.n{text-align:right;font-variant-numeric:tabular-nums}.sum td{font-weight:600}h1{font-size:1.4rem}h2{font-size:1.05rem;margin-top:1.4rem}
.meta{color:#444}@media print{body{margin:0;max-width:none}a{display:none}}
</style></head><body>
<h1>${esc(t.title)}</h1>
<p class="meta">${esc(t.account)}: <b>${esc(st.account)}</b> ${esc(st.name)} · ${esc(t.month)}: <b>${st.month}</b> (${st.from} – ${st.to}) · ${esc(t.status[st.status])}</p>
<table>${head}${st.lines.map((l) => line(l)).join('')}
<tr class="sum"><td colspan="4">${esc(t.total)}</td><td class="n">${st.total_amount}</td></tr></table>
<table>
<tr><td>${esc(t.opening)}</td><td class="n">${st.opening_balance}</td></tr>
<tr><td>${esc(t.payments)}</td><td class="n">${st.payments}</td></tr>
<tr><td>${esc(t.total)}</td><td class="n">-${st.total_amount}</td></tr>
<tr class="sum"><td>${esc(t.closing)}</td><td class="n">${st.closing_balance}</td></tr>
</table>
${adj}${corr}
<h2>${esc(t.how)}</h2>
<p>${esc(t.howLine)}</p>
<p>${esc(t.prices)}: ${st.explain.prices.map((p) => `${esc(t.period[p.period])} ${p.price}`).join(' · ')} ${esc(st.currency)}/kWh. ${esc(t.area)}: ${esc(st.explain.area_m2)} m².</p>
<ul>${pools}<li>${esc(t.loss(pct(st.explain.loss.normal_rate), t.method[st.explain.loss.method as keyof typeof t.method] ?? st.explain.loss.method))}</li></ul>
<p class="meta">${esc(t.generated)}: ${esc(generatedAt)}</p>
</body></html>
`;
}
