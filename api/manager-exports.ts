import type { Site } from '../core/index.ts';
import type { AccountStatement } from './data/read-model.ts';
import type { StatementOut } from './statement.ts';
import { statementHtml } from './statement.ts';

/**
 * Manager outputs (issue 11): the bill statistics as a CSV file a spreadsheet opens, with
 * totals and balances, and every statement of a month as one printable document.
 */

function csvCell(v: string): string {
  return /[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

export interface StatsTotals {
  readonly kwh: { readonly own: string; readonly common: string; readonly loss: string };
  readonly total_amount: string;
  readonly opening_balance: string;
  readonly payments: string;
  readonly closing_balance: string;
}

/** One row per account, then a totals row; the same decimal texts as the JSON. UTF-8 with a BOM so spreadsheet programs read the names right. */
export function billStatsCsv(site: Site, from: string, to: string, accounts: readonly AccountStatement[], totals: StatsTotals): string {
  const rows = [['site', 'from', 'to', 'account', 'name', 'own_kwh', 'common_kwh', 'loss_kwh', 'total_amount', 'opening_balance', 'payments', 'closing_balance']];
  for (const s of accounts) rows.push([site.id, from, to, s.account, s.name, s.kwh.own, s.kwh.common, s.kwh.loss, s.total_amount, s.opening_balance, s.payments, s.closing_balance]);
  rows.push([site.id, from, to, 'total', '', totals.kwh.own, totals.kwh.common, totals.kwh.loss, totals.total_amount, totals.opening_balance, totals.payments, totals.closing_balance]);
  return `\uFEFF${rows.map((r) => r.map(csvCell).join(',')).join('\r\n')}\r\n`;
}

/**
 * The statements of a month in one document: each account's printable statement (the same
 * HTML a tenant prints) on its own page. The style of the first one serves all.
 */
export function monthStatementsHtml(site: Site, month: string, statements: readonly StatementOut[], lang: 'zh' | 'en', generatedAt: string): string {
  const parts = statements.map((st) => statementHtml(st, lang, generatedAt));
  const style = /<style>[\s\S]*?<\/style>/.exec(parts[0] ?? '')?.[0] ?? '';
  const body = (html: string) => html.slice(html.indexOf('<body>') + '<body>'.length, html.lastIndexOf('</body>'));
  const title = lang === 'zh' ? `${site.name} ${month} 电费账单（${statements.length} 户）` : `${site.name} statements ${month} (${statements.length} accounts)`;
  const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
  return `<!doctype html>
<html lang="${lang === 'zh' ? 'zh-CN' : 'en'}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
${style}
<style>section.statement{break-after:page;page-break-after:always}section.statement:last-child{break-after:auto;page-break-after:auto}@media screen{section.statement{border-bottom:2px solid #999;padding-bottom:1rem;margin-bottom:2rem}}</style>
</head><body>
${parts.map((p, i) => `<section class="statement" id="${esc(statements[i].account)}">${body(p)}</section>`).join('\n')}
</body></html>
`;
}
