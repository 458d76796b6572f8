import { addDays, finalStatement, finalStatementRange } from '../core/index.ts';
import type { Account, FinalStatement, Site } from '../core/index.ts';
import type { ReadModel } from './data/read-model.ts';
import { csvCell, esc } from './text-escape.ts';

/**
 * The final statement of a tenant who moved out (billing.md section 11, rule 8), from what
 * the live pipeline wrote: the account's statement of the move-out month up to the move-out
 * day (the same assembly as every statement, equal to the core bill) and its ledger, handed
 * to the core's finalStatement, which decides refund or amount due. `status` is
 * `provisional` until the move-out day is settled, `final` after.
 */

export interface FinalStatementOut extends FinalStatement {
  readonly status: 'provisional' | 'final';
}

export async function finalStatementFor(read: ReadModel, site: Site, account: Account): Promise<FinalStatementOut> {
  const { from, to } = finalStatementRange(site, account);
  const [[bill], ledger, settled] = await Promise.all([read.statements(site, [account], from, to), read.ledger(site, account.id), read.daySettled(site, addDays(to, -1))]);
  return { ...finalStatement(site, account, bill, ledger), status: settled ? 'final' : 'provisional' };
}

// ---- CSV ---------------------------------------------------------------------------


/** One row per line item, then the balance rows and the ledger after move-out; the JSON's decimal texts. */
export function finalStatementCsv(st: FinalStatementOut): string {
  const rows = [['account', 'move_out', 'status', 'item', 'pool', 'period', 'kwh', 'price', 'amount', 'reference', 'time']];
  const row = (item: string, amount: string, extra: Partial<Record<'pool' | 'period' | 'kwh' | 'price' | 'reference' | 'time', string>> = {}) =>
    rows.push([st.account, st.move_out, st.status, item, extra.pool ?? '', extra.period ?? '', extra.kwh ?? '', extra.price ?? '', amount, extra.reference ?? '', extra.time ?? '']);
  for (const l of st.lines) row(l.kind, l.amount, { pool: l.pool, period: l.period, kwh: l.kwh, price: l.price });
  row('total', st.total_amount);
  row('opening_balance', st.opening_balance);
  row('payments', st.payments);
  row('closing_balance', st.closing_balance);
  row('deposit', st.deposit);
  row('refund_due', st.refund_due);
  row('amount_due', st.amount_due);
  for (const e of st.after_move_out) row(`after_move_out:${e.kind}`, e.amount, { reference: e.reference, time: e.time });
  row('outstanding', st.outstanding);
  return rows.map((r) => r.map(csvCell).join(',')).join('\r\n') + '\r\n';
}

// ---- printable HTML (zh / en) -----------------------------------------------------

const TEXT = {
  zh: {
    title: '退租结算单',
    account: '户号',
    period: '结算期',
    moveIn: '入住',
    moveOut: '退租',
    status: { provisional: '暂估（退租当日尚未结算）', final: '最终' },
    kind: { own: '本户电表', common: '公共区域分摊', loss: '线损分摊' },
    periods: { sharp: '尖峰', peak: '高峰', flat: '平段', valley: '低谷', deep_valley: '深谷' },
    cols: ['项目', '时段', '电量 (kWh)', '单价 (元/kWh)', '金额 (元)'],
    total: '电费合计',
    opening: '期初余额',
    payments: '本期充值（含退款、转账）',
    closing: '退租时余额',
    deposit: '押金',
    refund: '应退金额（余额 + 押金）',
    due: '应补缴金额',
    after: '退租后的款项',
    ledgerKind: { payment: '充值', refund: '退款', deposit: '押金', transfer: '余额转移' },
    outstanding: '未结清金额',
    how: '退租后不再产生电费：退租时刻之后的用电计入下一位租户或物业。应退金额 = 退租时余额 + 押金。',
    generated: '生成时间',
  },
  en: {
    title: 'Final statement (move-out)',
    account: 'Account',
    period: 'Period',
    moveIn: 'Moved in',
    moveOut: 'Moved out',
    status: { provisional: 'provisional (the move-out day is not settled yet)', final: 'final' },
    kind: { own: 'Your own meter', common: 'Common area share', loss: 'Line loss share' },
    periods: { sharp: 'Sharp', peak: 'Peak', flat: 'Flat', valley: 'Valley', deep_valley: 'Deep valley' },
    cols: ['Item', 'Period', 'Energy (kWh)', 'Price (CNY/kWh)', 'Amount (CNY)'],
    total: 'Total charges',
    opening: 'Opening balance',
    payments: 'Payments (refunds and transfers included)',
    closing: 'Balance at move-out',
    deposit: 'Deposit held',
    refund: 'Refund due (balance + deposit)',
    due: 'Amount due',
    after: 'After move-out',
    ledgerKind: { payment: 'Payment', refund: 'Refund', deposit: 'Deposit', transfer: 'Balance transfer' },
    outstanding: 'Outstanding',
    how: 'Nothing is charged after the move-out instant: energy from then on is the next tenant\u2019s or the property\u2019s. Refund due = balance at move-out + deposit.',
    generated: 'Generated',
  },
} as const;


export function finalStatementHtml(st: FinalStatementOut, lang: 'zh' | 'en', generatedAt: string): string {
  const t = TEXT[lang];
  const head = `<tr>${t.cols.map((c, i) => `<th${i >= 2 ? ' class="n"' : ''}>${esc(c)}</th>`).join('')}</tr>`;
  const lines = st.lines
    .map((l) => `<tr><td>${esc(t.kind[l.kind])}${l.pool ? ` · ${esc(l.pool)}` : ''}</td><td>${esc(t.periods[l.period])}</td><td class="n">${l.kwh}</td><td class="n">${l.price}</td><td class="n">${l.amount}</td></tr>`)
    .join('');
  const money = (label: string, v: string, sum = false) => `<tr${sum ? ' class="sum"' : ''}><td>${esc(label)}</td><td class="n">${v}</td></tr>`;
  const after = st.after_move_out.length
    ? `<h2>${esc(t.after)}</h2><table>${st.after_move_out.map((e) => `<tr><td>${esc(e.time)}</td><td>${esc(t.ledgerKind[e.kind])}</td><td>${esc(e.reference)}</td><td class="n">${e.amount}</td></tr>`).join('')}</table>`
    : '';
  return `<!doctype html>
<html lang="${lang === 'zh' ? 'zh-CN' : 'en'}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(t.title)} ${esc(st.account)}</title>
<style>
body{font-family:system-ui,"Noto Sans CJK SC","PingFang SC",sans-serif;margin:1.5rem auto;max-width:48rem;padding:0 1rem;color:#111}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}th,td{border-bottom:1px solid #ccc;padding:.3rem .4rem;text-align:left}
.n{text-align:right;font-variant-numeric:tabular-nums}.sum td{font-weight:600}h1{font-size:1.4rem}h2{font-size:1.05rem;margin-top:1.4rem}
.meta{color:#444}@media print{body{margin:0;max-width:none}}
</style></head><body>
<h1>${esc(t.title)}</h1>
<p class="meta">${esc(t.account)}: <b>${esc(st.account)}</b> ${esc(st.name)} · ${esc(t.period)}: ${st.from} – ${esc(st.to)} · ${esc(t.status[st.status])}</p>
<p class="meta">${st.move_in ? `${esc(t.moveIn)}: ${esc(st.move_in)} · ` : ''}${esc(t.moveOut)}: ${esc(st.move_out)}</p>
<table>${head}${lines}<tr class="sum"><td colspan="4">${esc(t.total)}</td><td class="n">${st.total_amount}</td></tr></table>
<table>
${money(t.opening, st.opening_balance)}${money(t.payments, st.payments)}${money(t.total, `-${st.total_amount}`)}${money(t.closing, st.closing_balance, true)}${money(t.deposit, st.deposit)}
${money(st.amount_due !== '0.00' ? t.due : t.refund, st.amount_due !== '0.00' ? st.amount_due : st.refund_due, true)}
</table>
${after}
<table>${money(t.outstanding, st.outstanding, true)}</table>
<p>${esc(t.how)}</p>
<p class="meta">${esc(t.generated)}: ${esc(generatedAt)}</p>
</body></html>
`;
}
