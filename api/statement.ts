import { addDays, Dec, finalStatementRange, parseFixed, PERIODS, priceOn, priceText as microText, verifiableStatement, zoneOf } from '../core/index.ts';
import type { Account, FinalBlock, Period, Site, StatementLoss, StatementMeter, StatementPool, VerifiableStatement } from '../core/index.ts';
import type { AccountStatement, ReadModel, StatementDetailFacts, StatementLine as BillLine } from './data/read-model.ts';
import { kwhText, moneyText } from './format.ts';
import { monthRange } from './local-time.ts';
import { csvCell, esc } from './text-escape.ts';
import type { MonthStore } from './month-store.ts';

export interface Correction {
  readonly kind: BillLine['kind'];
  readonly pool?: string;
  readonly period: Period;
  readonly price: string;
  readonly kwh: string;
  readonly amount: string;
}

export interface Explain {
  readonly prices: readonly { readonly period: Period; readonly price: string }[];
  /** The site's pools: how each is shared and whether you are in it (how many accounts share, never which). */
  readonly pools: readonly { readonly id: string; readonly name: string; readonly method: string; readonly members: number; readonly includes_you: boolean }[];
  readonly loss: { readonly normal_rate: string; readonly method: string };
  readonly area_m2: string;
}

/**
 * The statement a tenant can verify (issue 10): the bill, the numbers behind each line, and
 * how it is worked out. The final statement of an account that moved out (billing.md
 * section 11 rule 8) is the same statement over its final range, with the `final` block:
 * one builder (the core's verifiableStatement), one set of renderers.
 */
export interface StatementOut extends Omit<AccountStatement, 'lines'> {
  readonly month: string;
  /** Monthly: open or closed. Final statement: provisional until the move-out day is settled, then final. */
  readonly status: 'open' | 'closed' | 'provisional' | 'final';
  readonly closed_at: string | null;
  readonly statement_no: string;
  readonly property: string;
  readonly lines: readonly (BillLine & { readonly estimated: boolean })[];
  readonly meters: readonly StatementMeter[];
  readonly pools: readonly StatementPool[];
  readonly loss: StatementLoss;
  readonly payment_list: VerifiableStatement['payment_list'];
  readonly corrections_after_close: readonly Correction[];
  readonly explain: Explain;
  /** The account's occupancy (billing.md section 11), RFC 3339; null when open. */
  readonly move_in: string | null;
  readonly move_out: string | null;
  /** Deposits held at the end of the range (at the move-out for a final statement), apart from the balance. */
  readonly deposit?: string;
  /** The final statement's block: refund or amount due, the ledger after move-out. */
  readonly final?: FinalBlock;
}

/** What a tenant needs to re-derive each line: prices, pools and the loss rule (billing.md sections 4-5). */
export function explain(site: Site, account: Account, date: string): Explain {
  return {
    prices: PERIODS.flatMap((p) => {
      const micro = priceOn(site, account, date, p);
      return micro === undefined ? [] : [{ period: p, price: microText(micro) }];
    }),
    pools: site.pools.map((p) => ({ id: p.id, name: p.name, method: p.method, members: p.accounts.length, includes_you: p.accounts.includes(account.id) })),
    loss: { normal_rate: site.loss.normalRate, method: site.loss.method },
    area_m2: account.areaM2,
  };
}

const lineKey = (l: { kind: string; pool?: string; period: string; price: string }) => `${l.kind}|${l.pool ?? ''}|${l.period}|${l.price}`;

/** Now minus frozen, per line key; only non-zero differences. */
export function corrections(frozen: readonly BillLine[], now: readonly BillLine[]): Correction[] {
  const diff = new Map<string, { line: BillLine; wh: number; fen: number }>();
  const add = (l: BillLine, sign: 1 | -1) => {
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
 * The statement of one account and month. A closed month answers the frozen bill
 * (immutable); what changed in the data since shows beside it as corrections, which the
 * balance already carries. The numbers behind the lines come from what the settlement
 * stored (the core's verifiableStatement).
 */
export async function statementFor(read: ReadModel, months: MonthStore, site: Site, account: Account, month: string): Promise<StatementOut> {
  const { from, to } = monthRange(month);
  // Whether the month is closed is cached like the statement (1 s; a close in this
  // process clears it): one Redis round trip less per request on the busiest route.
  const [[current], facts, closed] = await Promise.all([
    read.statements(site, [account], from, to),
    read.statementFacts(site, account, from, to),
    read.cache.get(`closed|${site.id}|${month}`, () => months.get(site.id, month)),
  ]);
  const v = verified(site, account, month, from, to, current, facts);
  const frozen = closed?.statements.find((s) => s.account === account.id);
  const base = frozen ?? current;
  const estimated = new Map(v.lines.map((l) => [lineKey(l), l.estimated]));
  return {
    ...base,
    month,
    status: closed ? 'closed' : 'open',
    closed_at: closed?.closed_at ?? null,
    ...details(v),
    lines: base.lines.map((l) => ({ ...l, estimated: estimated.get(lineKey(l)) ?? false })),
    corrections_after_close: frozen ? corrections(frozen.lines, current.lines) : [],
    explain: explain(site, account, from),
  };
}

/** The core's statement of the stored facts (timestamps shown to the second, at the site's offset). */
function verified(site: Site, account: Account, month: string, from: string, to: string, current: AccountStatement, facts: StatementDetailFacts, final?: VerifiableStatementFinal): VerifiableStatement {
  const zone = zoneOf(site.timezone);
  const openingFen = parseFixed(current.opening_balance, 2) ?? 0;
  return verifiableStatement({ site, account, month, from, to, openingFen, ...facts, ...(final ? { final } : {}), formatTime: (t) => zone.format(Math.floor(t / 1000) * 1000) });
}

type VerifiableStatementFinal = NonNullable<Parameters<typeof verifiableStatement>[0]['final']>;

/** The statement's numbers beyond the bill. */
function details(v: VerifiableStatement) {
  return {
    statement_no: v.statement_no,
    property: v.property,
    meters: v.meters,
    pools: v.pools,
    loss: v.loss,
    payment_list: v.payment_list,
    move_in: v.move_in,
    move_out: v.move_out,
    ...(v.deposit !== undefined ? { deposit: v.deposit } : {}),
  };
}

/**
 * The final statement of an account that moved out (billing.md section 11 rule 8): its
 * statement from the first day of the move-out month (or the move-in) to the move-out
 * instant, payments up to then, and the final block from its whole ledger. `provisional`
 * until the move-out day is settled, `final` after. Throws the core's BillingInputError
 * for an account without move_out.
 */
export async function finalStatementFor(read: ReadModel, site: Site, account: Account): Promise<StatementOut> {
  const { from, to } = finalStatementRange(site, account);
  const [[current], facts, ledger, settled] = await Promise.all([
    read.statements(site, [account], from, to),
    read.statementFacts(site, account, from, to, account.moveOut),
    read.ledger(site, account.id),
    read.daySettled(site, addDays(to, -1)),
  ]);
  const month = from.slice(0, 7);
  const v = verified(site, account, month, from, to, current, facts, { ledger });
  const estimated = new Map(v.lines.map((l) => [lineKey(l), l.estimated]));
  return {
    ...current,
    // Payments to the move-out instant, not to the end of its day.
    payments: v.payments,
    closing_balance: v.closing_balance,
    month,
    status: settled ? 'final' : 'provisional',
    closed_at: null,
    ...details(v),
    statement_no: `${v.statement_no}-final`,
    lines: current.lines.map((l) => ({ ...l, estimated: estimated.get(lineKey(l)) ?? false })),
    corrections_after_close: [],
    explain: explain(site, account, from),
    final: v.final!,
  };
}

// ---- CSV ---------------------------------------------------------------------------


/**
 * The statement as CSV: first the lines and totals (one row each, the same decimal texts
 * as the JSON), then, each after a blank line with its own header, the meters, every
 * day-period cell of each pool and of the loss share (what a tenant checks a share with),
 * and the payments.
 */
export function statementCsv(st: StatementOut): string {
  const tables: string[][][] = [];
  const rows = [['account', 'month', 'status', 'kind', 'pool', 'period', 'kwh', 'price', 'amount', 'estimated']];
  for (const l of st.lines) rows.push([st.account, st.month, st.status, l.kind, l.pool ?? '', l.period, l.kwh, l.price, l.amount, l.estimated ? 'yes' : '']);
  for (const c of st.corrections_after_close) rows.push([st.account, st.month, st.status, `correction:${c.kind}`, c.pool ?? '', c.period, c.kwh, c.price, c.amount, '']);
  rows.push([st.account, st.month, st.status, 'total', '', '', '', '', st.total_amount, '']);
  rows.push([st.account, st.month, st.status, 'opening_balance', '', '', '', '', st.opening_balance, '']);
  rows.push([st.account, st.month, st.status, 'payments', '', '', '', '', st.payments, '']);
  rows.push([st.account, st.month, st.status, 'closing_balance', '', '', '', '', st.closing_balance, '']);
  if (st.deposit !== undefined) rows.push([st.account, st.month, st.status, 'deposit', '', '', '', '', st.deposit, '']);
  if (st.final) {
    // The final statement (billing.md section 11 rule 8): what settles the account.
    const f = st.final;
    rows.push([st.account, st.month, st.status, 'refund_due', '', '', '', '', f.refund_due, '']);
    rows.push([st.account, st.month, st.status, 'amount_due', '', '', '', '', f.amount_due, '']);
    for (const e of f.after_move_out) rows.push([st.account, st.month, st.status, `after_move_out:${e.kind}:${e.time}:${e.reference}`, '', '', '', '', e.amount, '']);
    rows.push([st.account, st.month, st.status, 'outstanding', '', '', '', '', f.outstanding, '']);
  }
  tables.push(rows);
  // Raw registers and the multiplier in force (section 11 rule 6): reading x multiplier = primary kWh.
  tables.push([
    ['meter', 'from', 'to', 'start_reading', 'start_time', 'multiplier', 'start_primary', 'end_reading', 'end_time', 'end_multiplier', 'end_primary', 'kwh', 'estimated'],
    ...st.meters.map((m) => [m.meter, m.from, m.to, m.start_reading ?? '', m.start_time ?? '', m.multiplier, m.start_primary ?? '', m.end_reading ?? '', m.end_time ?? '', m.end_multiplier, m.end_primary ?? '', m.kwh, m.estimated ? 'yes' : '']),
  ]);
  const changes = st.meters.flatMap((m) => m.changes.map((c) => [m.meter, c.time, c.final_reading, c.final_estimated ? 'yes' : '', c.initial_reading, c.multiplier_before, c.multiplier_after, c.serial ?? '']));
  if (changes.length) tables.push([['meter_change', 'time', 'final_reading', 'final_estimated', 'initial_reading', 'multiplier_before', 'multiplier_after', 'serial'], ...changes]);
  const cells = [['share', 'date', 'period', 'kwh', 'basis', 'your_weight', 'total_weight', 'your_kwh', 'your_seconds', 'cell_seconds']];
  const secs = (c: { your_seconds?: number; cell_seconds?: number }) => [c.your_seconds !== undefined ? String(c.your_seconds) : '', c.cell_seconds !== undefined ? String(c.cell_seconds) : ''];
  for (const p of st.pools) for (const c of p.cells) cells.push([`common:${p.pool}`, c.date, c.period, c.kwh, c.basis, c.your_weight, c.total_weight, c.your_kwh, ...secs(c)]);
  for (const c of st.loss.cells) cells.push(['loss', c.date, c.period, c.kwh, c.basis, c.your_weight, c.total_weight, c.your_kwh, ...secs(c)]);
  tables.push(cells);
  tables.push([['payment_time', 'amount', 'reference'], ...st.payment_list.map((p) => [p.time, p.amount, p.reference])]);
  return tables.map((t) => t.map((r) => r.map(csvCell).join(',')).join('\r\n')).join('\r\n\r\n') + '\r\n';
}

// ---- printable HTML (zh / en) -----------------------------------------------------

type Lang = 'zh' | 'en';

const TEXT = {
  zh: {
    title: '电费账单',
    property: '物业',
    number: '账单编号',
    account: '户号',
    month: '账期',
    status: { open: '未结账（数据可能更新）', closed: '已结账', provisional: '退租日尚未结算（数据可能更新）', final: '最终' },
    finalTitle: '退租结算单',
    moveIn: '入住',
    moveOut: '退租',
    deposit: '押金（不计入余额）',
    change: (m: string, at: string, fin: string, est: boolean, init: string, a: string, b: string) => `${m} 于 ${at} 换表：旧表止码 ${fin} kWh${est ? '（估计）' : ''}，新表起码 ${init} kWh，倍率 ${a} → ${b}。`,
    finalRows: { refund: '应退金额', due: '应补金额', after: '退租后的款项', outstanding: '未结清' },
    kind: { own: '本户电表', common: '公共区域分摊', loss: '线损分摊' },
    period: { sharp: '尖峰', peak: '高峰', flat: '平段', valley: '低谷', deep_valley: '深谷' },
    cols: ['项目', '时段', '电量 (kWh)', '单价 (元/kWh)', '金额 (元)'],
    estimated: '* 含跨数据缺口的估算电量',
    total: '本期电费合计',
    opening: '期初余额',
    payments: '本期充值',
    closing: '期末余额',
    meters: '电表读数',
    meterCols: ['电表', '起码', '止码', '倍率', '电量 (kWh)'],
    meterNote: '电量 = (止码 − 起码) × 倍率（期间换表或表码翻转时按分段计算）。',
    pools: '公共区域分摊明细',
    poolCols: ['公共区域', '分摊方式', '区域总电量 (kWh)', '您的权重 / 总权重', '比例', '您的电量 (kWh)', '金额 (元)'],
    lossTitle: '线损明细',
    lossRows: { master: '总表电量', sub: '各分表电量合计', loss: '线损电量', rate: '线损率', cap: '正常线损上限', allocated: '可分摊线损', abnormal: '异常线损（物业承担，不向租户收取）', share: '您的分摊' },
    paymentsTitle: '充值记录',
    paymentCols: ['时间', '金额 (元)', '流水号'],
    adjustments: '已结算日的更正（已计入上表）',
    correctionsTitle: '结账后的数据更正（已计入余额，本账单不变）',
    how: '费用如何计算',
    howLine: '每行金额 = 每日该时段电量 × 您的电价，按日四舍五入到分后求和；余额 = 期初余额 + 充值 − 电费。公共区域和线损按日、按时段分摊，CSV 文件列出每一格的权重。',
    basis: { area: '按面积 (m²)', consumption: '按用电量 (kWh)', equal: '平均 (户)', landlord: '无人在场，由业主承担' },
    method: { area: '按面积', consumption: '按各户用电量', equal: '平均' },
    pool: (name: string, method: string, n: number, you: boolean) => `公共区域「${name}」的电量${method}分摊给 ${n} 户${you ? '（含您）' : '（不含您）'}。`,
    loss: (rate: string, method: string) => `线损 = 总表电量 − 各户电量 − 公共区域电量。不超过总表电量 ${rate} 的部分${method}分摊；超出部分为异常损耗，由物业承担，不向租户收取。`,
    prices: '您的电价',
    area: '您的面积',
    generated: '生成时间',
    none: '无',
  },
  en: {
    title: 'Electricity statement',
    property: 'Property',
    number: 'Statement no.',
    account: 'Account',
    month: 'Month',
    status: { open: 'open (data may still change)', closed: 'closed', provisional: 'move-out day not settled yet (may still change)', final: 'final' },
    finalTitle: 'Final statement',
    moveIn: 'Moved in',
    moveOut: 'Moved out',
    deposit: 'Deposit held (not in the balance)',
    change: (m: string, at: string, fin: string, est: boolean, init: string, a: string, b: string) => `${m} replaced at ${at}: old meter's final reading ${fin} kWh${est ? ' (estimated)' : ''}, new meter's initial reading ${init} kWh, multiplier ${a} -> ${b}.`,
    finalRows: { refund: 'Refund due', due: 'Amount due', after: 'After moving out', outstanding: 'Outstanding' },
    kind: { own: 'Your own meter', common: 'Common area share', loss: 'Line loss share' },
    period: { sharp: 'Sharp', peak: 'Peak', flat: 'Flat', valley: 'Valley', deep_valley: 'Deep valley' },
    cols: ['Item', 'Period', 'Energy (kWh)', 'Price (CNY/kWh)', 'Amount (CNY)'],
    estimated: '* includes energy estimated across a gap in the readings',
    total: 'Total for the month',
    opening: 'Opening balance',
    payments: 'Payments',
    closing: 'Closing balance',
    meters: 'Meter readings',
    meterCols: ['Meter', 'Start reading', 'End reading', 'Multiplier', 'Energy (kWh)'],
    meterNote: 'Energy = (end - start) x multiplier (in parts if the meter was replaced or its register rolled over).',
    pools: 'Common areas',
    poolCols: ['Common area', 'Shared by', 'Area energy (kWh)', 'Your weight / total', 'Share', 'Your energy (kWh)', 'Amount (CNY)'],
    lossTitle: 'Line loss',
    lossRows: { master: 'Master meter', sub: 'All sub-meters', loss: 'Loss', rate: 'Loss rate', cap: 'Normal loss cap', allocated: 'Loss shared', abnormal: 'Abnormal loss (borne by the property, never charged)', share: 'Your share' },
    paymentsTitle: 'Payments',
    paymentCols: ['Time', 'Amount (CNY)', 'Reference'],
    adjustments: 'Corrections of settled days (already in the lines above)',
    correctionsTitle: 'Data corrected after closing (carried in your balance; this statement does not change)',
    how: 'How the amounts are worked out',
    howLine: 'Each amount = the energy of each day in that period × your price, rounded to the fen per day, then summed. Balance = opening + payments − charges. Common areas and loss are shared per day and period; the CSV lists every cell with its weights.',
    basis: { area: 'floor area (m²)', consumption: 'own use (kWh)', equal: 'equally (accounts)', landlord: 'nobody there: borne by the landlord' },
    method: { area: 'by floor area', consumption: "by each account's own use", equal: 'equally' },
    pool: (name: string, method: string, n: number, you: boolean) => `Common area "${name}" is shared ${method} among ${n} accounts${you ? ' (you included)' : ' (not you)'}.`,
    loss: (rate: string, method: string) => `Loss = master meter − tenant meters − common meters. Up to ${rate} of the master energy is shared ${method}; anything above is abnormal loss, borne by the property and never charged to tenants.`,
    prices: 'Your prices',
    area: 'Your floor area',
    generated: 'Generated',
    none: 'none',
  },
} as const;


/** 0.03 -> "3%" (decimal, exact). */
function pct(rate: string): string {
  return `${new Dec(rate).times(100).toString()}%`;
}

export function statementHtml(st: StatementOut, lang: Lang, generatedAt: string): string {
  const t = TEXT[lang];
  const th = (cols: readonly string[], numericFrom: number) => `<tr>${cols.map((c, i) => `<th${i >= numericFrom ? ' class="n"' : ''}>${esc(c)}</th>`).join('')}</tr>`;
  const line = (l: { kind: keyof typeof t.kind; pool?: string; period: Period; kwh: string; price: string; amount: string; estimated?: boolean }) =>
    `<tr><td>${esc(t.kind[l.kind])}${l.pool ? ` · ${esc(st.explain.pools.find((p) => p.id === l.pool)?.name ?? l.pool)}` : ''}${l.estimated ? ' *' : ''}</td><td>${esc(t.period[l.period])}</td><td class="n">${l.kwh}</td><td class="n">${l.price}</td><td class="n">${l.amount}</td></tr>`;
  const head = th(t.cols, 2);
  const adj = st.adjustments.length
    ? `<h2>${esc(t.adjustments)}</h2><table><tr><th>${lang === 'zh' ? '日期' : 'Date'}</th>${t.cols.map((c, i) => `<th${i >= 2 ? ' class="n"' : ''}>${esc(c)}</th>`).join('')}<th>${lang === 'zh' ? '原因' : 'Reason'}</th></tr>${st.adjustments
        .map((a) => `<tr><td>${a.date}</td>${line(a).slice(4, -5)}<td>${esc(a.reason)}</td></tr>`)
        .join('')}</table>`
    : '';
  const corr = st.corrections_after_close.length ? `<h2>${esc(t.correctionsTitle)}</h2><table>${head}${st.corrections_after_close.map((c) => line(c)).join('')}</table>` : '';
  // Raw registers, and x the multiplier where it is not 1 (billing.md section 11 rule 6).
  const reading = (raw: string | null, mult: string, primary: string | null) => (raw === null ? '–' : mult === '1' ? raw : `${raw} × ${mult} = ${primary}`);
  const meters = `<h2>${esc(t.meters)}</h2><table>${th(t.meterCols, 1)}${st.meters
    .map(
      (m) =>
        `<tr><td>${esc(m.meter)}${m.estimated ? ' *' : ''}</td><td class="n">${reading(m.start_reading, m.multiplier, m.start_primary)}</td><td class="n">${reading(m.end_reading, m.end_multiplier, m.end_primary)}</td><td class="n">${m.multiplier === m.end_multiplier ? m.multiplier : `${m.multiplier} → ${m.end_multiplier}`}</td><td class="n">${m.kwh}</td></tr>`,
    )
    .join('')}</table>${st.meters
    .flatMap((m) => m.changes.map((c) => `<p class="meta">${esc(t.change(m.meter, c.time, c.final_reading, c.final_estimated, c.initial_reading, c.multiplier_before, c.multiplier_after))}</p>`))
    .join('')}<p class="meta">${esc(t.meterNote)}</p>`;
  const occupancy = [st.move_in ? `${esc(t.moveIn)}: ${esc(st.move_in)}` : '', st.move_out ? `${esc(t.moveOut)}: ${esc(st.move_out)}` : '', st.deposit !== undefined ? `${esc(t.deposit)}: ${st.deposit}` : '']
    .filter(Boolean)
    .join(' · ');
  const f = st.final;
  const finalBlock = f
    ? `<h2>${esc(t.finalTitle)}</h2><table><tr><td>${esc(t.closing)}</td><td class="n">${st.closing_balance}</td></tr><tr><td>${esc(t.deposit)}</td><td class="n">${f.deposit}</td></tr><tr class="sum"><td>${esc(t.finalRows.refund)}</td><td class="n">${f.refund_due}</td></tr><tr class="sum"><td>${esc(t.finalRows.due)}</td><td class="n">${f.amount_due}</td></tr>${f.after_move_out
        .map((e) => `<tr><td>${esc(t.finalRows.after)}: ${esc(e.time)} ${esc(e.kind)} ${esc(e.reference)}</td><td class="n">${e.amount}</td></tr>`)
        .join('')}<tr class="sum"><td>${esc(t.finalRows.outstanding)}</td><td class="n">${f.outstanding}</td></tr></table>`
    : '';
  const pools = st.pools.length
    ? `<h2>${esc(t.pools)}</h2><table>${th(t.poolCols, 2)}${st.pools
        .map(
          (p) =>
            `<tr><td>${esc(p.name)}${p.estimated ? ' *' : ''}</td><td>${esc(t.basis[p.basis])}</td><td class="n">${p.kwh}</td><td class="n">${esc(p.your_weight)} / ${esc(p.total_weight)}</td><td class="n">${p.percent}%</td><td class="n">${p.your_kwh}</td><td class="n">${p.amount}</td></tr>`,
        )
        .join('')}</table>`
    : '';
  const l = st.loss;
  const lossRow = (k: keyof typeof t.lossRows, v: string) => `<tr><td>${esc(t.lossRows[k])}</td><td class="n">${esc(v)}</td></tr>`;
  const loss = `<h2>${esc(t.lossTitle)}</h2><table>${lossRow('master', `${l.master_kwh} kWh`)}${lossRow('sub', `${l.submeters_kwh} kWh`)}${lossRow('loss', `${l.loss_kwh} kWh`)}${lossRow('rate', pct(l.loss_rate))}${lossRow('cap', pct(l.normal_rate))}${lossRow('allocated', `${l.allocated_kwh} kWh`)}${lossRow('abnormal', `${l.abnormal_kwh} kWh`)}${lossRow('share', `${esc(t.basis[l.basis])}: ${l.your_weight} / ${l.total_weight} (${l.percent}%) → ${l.your_kwh} kWh, ${l.amount}${l.estimated ? ' *' : ''}`)}</table>`;
  const pays = `<h2>${esc(t.paymentsTitle)}</h2>${st.payment_list.length ? `<table>${th(t.paymentCols, 1)}${st.payment_list.map((p) => `<tr><td>${esc(p.time)}</td><td class="n">${p.amount}</td><td>${esc(p.reference)}</td></tr>`).join('')}</table>` : `<p>${esc(t.none)}</p>`}`;
  const estimatedNote = st.lines.some((x) => x.estimated) || st.meters.some((m) => m.estimated) ? `<p class="meta">${esc(t.estimated)}</p>` : '';
  return `<!doctype html>
<html lang="${lang === 'zh' ? 'zh-CN' : 'en'}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(st.final ? t.finalTitle : t.title)} ${esc(st.account)} ${st.month}</title>
<style>
body{font-family:system-ui,"Noto Sans CJK SC","PingFang SC",sans-serif;margin:1.5rem auto;max-width:48rem;padding:0 1rem;color:#111}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}th,td{border-bottom:1px solid #ccc;padding:.3rem .4rem;text-align:left}
.n{text-align:right;font-variant-numeric:tabular-nums}.sum td{font-weight:600}h1{font-size:1.4rem}h2{font-size:1.05rem;margin-top:1.4rem}
.meta{color:#444}@media print{body{margin:0;max-width:none}a{display:none}}
</style></head><body>
<h1>${esc(st.final ? t.finalTitle : t.title)}</h1>
<p class="meta">${esc(t.property)}: <b>${esc(st.property)}</b> · ${esc(t.number)}: <b>${esc(st.statement_no)}</b></p>
<p class="meta">${esc(t.account)}: <b>${esc(st.account)}</b> ${esc(st.name)} · ${esc(t.month)}: <b>${st.month}</b> (${st.from} – ${st.to}) · ${esc(t.status[st.status])}</p>
<table>${head}${st.lines.map((x) => line(x)).join('')}
<tr class="sum"><td colspan="4">${esc(t.total)}</td><td class="n">${st.total_amount}</td></tr></table>
${estimatedNote}
<table>
<tr><td>${esc(t.opening)}</td><td class="n">${st.opening_balance}</td></tr>
<tr><td>${esc(t.payments)}</td><td class="n">${st.payments}</td></tr>
<tr><td>${esc(t.total)}</td><td class="n">-${st.total_amount}</td></tr>
<tr class="sum"><td>${esc(t.closing)}</td><td class="n">${st.closing_balance}</td></tr>
</table>
${occupancy ? `<p class="meta">${occupancy}</p>\n` : ''}${finalBlock}${meters}${pools}${loss}${pays}${adj}${corr}
<h2>${esc(t.how)}</h2>
<p>${esc(t.howLine)}</p>
<ul>${st.explain.pools.map((p) => `<li>${esc(t.pool(p.name, t.method[p.method as keyof typeof t.method] ?? p.method, p.members, p.includes_you))}</li>`).join('')}<li>${esc(t.loss(pct(st.explain.loss.normal_rate), t.method[st.explain.loss.method as keyof typeof t.method] ?? st.explain.loss.method))}</li></ul>
<p>${esc(t.prices)}: ${st.explain.prices.map((p) => `${esc(t.period[p.period])} ${p.price}`).join(' · ')} ${esc(st.currency)}/kWh. ${esc(t.area)}: ${esc(st.explain.area_m2)} m².</p>
<p class="meta">${esc(t.generated)}: ${esc(generatedAt)}</p>
</body></html>
`;
}
