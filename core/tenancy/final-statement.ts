import { computeBillRun } from '../bill/run.ts';
import type { ReadingSource } from '../bill/run.ts';
import { dedupePayments } from '../bill/payments.ts';
import { BillingInputError } from '../errors.ts';
import type { PaymentKind, PaymentRow } from '../readings/csv.ts';
import type { Account, Site } from '../site/model.ts';
import { addDays } from '../tou/local-date.ts';
import type { LocalDate } from '../tou/local-date.ts';
import { zoneOf } from '../tou/zone.ts';
import type { AccountBill, BillLine } from '../types.ts';
import { byteOrder, moneyFen, moneyText } from '../units.ts';

/**
 * The final statement of a tenant who moves out (billing.md section 11, rule 9): the
 * charges of the move-out month up to the move-out instant, the prepaid balance then, the
 * deposit held, and what settles the account: a refund due (balance + deposit > 0) or an
 * amount due. Ledger lines at or after the move-out instant (the refund, the deposit
 * returned, a transfer, a last payment) are listed after it, and `outstanding` is what is
 * still open (0.00 once settled). Pure: the caller brings the bill of the range
 * (finalStatementRange) and the account's ledger.
 */

export interface LedgerEntry {
  readonly time: string;
  readonly kind: PaymentKind;
  readonly amount: string;
  readonly reference: string;
}

export interface FinalStatement {
  readonly site: string;
  readonly account: string;
  readonly name: string;
  readonly currency: string;
  /** RFC 3339 at the site's offset, or null when the account has been there from the start. */
  readonly move_in: string | null;
  readonly move_out: string;
  /** First local date of the statement: the move-out month's first day, or the move-in date if later. */
  readonly from: LocalDate;
  /** The statement ends at the move-out instant (RFC 3339). */
  readonly to: string;
  readonly lines: readonly BillLine[];
  readonly kwh: AccountBill['kwh'];
  readonly total_amount: string;
  readonly opening_balance: string;
  /** Payments, refunds and transfers in [from, move_out): deposits are apart. */
  readonly payments: string;
  /** The prepaid balance at move-out: opening + payments - total. */
  readonly closing_balance: string;
  /** Deposits held at move-out. */
  readonly deposit: string;
  /** closing + deposit when positive, else 0.00. */
  readonly refund_due: string;
  /** -(closing + deposit) when positive, else 0.00. */
  readonly amount_due: string;
  /** Ledger lines of the account at or after move-out, by time then reference. */
  readonly after_move_out: readonly LedgerEntry[];
  /** closing + deposit + the lines after move-out: 0.00 when the account is settled. */
  readonly outstanding: string;
}

/** The bill range a final statement needs: [from, to) local dates, `to` after the move-out day. */
export function finalStatementRange(site: Site, account: Account): { from: LocalDate; to: LocalDate } {
  if (account.moveOut === undefined) throw new BillingInputError(`account ${account.id} has no move_out: no final statement`, { field: 'account' });
  const zone = zoneOf(site.timezone);
  // The last occupied instant is moveOut - 1 ms: a move-out at local midnight ends the day before.
  const lastDay = zone.dateOf(account.moveOut - 1);
  let from = `${lastDay.slice(0, 7)}-01`;
  if (account.moveIn !== undefined) {
    const inDay = zone.dateOf(account.moveIn);
    if (inDay > from) from = inDay;
  }
  return { from, to: addDays(lastDay, 1) };
}

/**
 * @param bill the account's bill of finalStatementRange (section 6; its payments are not used:
 *   they run to the end of the move-out day, the statement's to the move-out instant)
 * @param ledger the site's accepted ledger rows (dedupePayments), any accounts
 */
export function finalStatement(site: Site, account: Account, bill: AccountBill, ledger: readonly PaymentRow[]): FinalStatement {
  const { from } = finalStatementRange(site, account);
  const zone = zoneOf(site.timezone);
  const fromMs = zone.midnight(from);
  const moveOut = account.moveOut!;
  let paid = 0;
  let deposit = 0;
  const after: (PaymentRow & { kind: PaymentKind })[] = [];
  for (const r of ledger) {
    if (r.account !== account.id) continue;
    const kind = r.kind ?? 'payment';
    if (r.time >= moveOut) after.push({ ...r, kind });
    else if (kind === 'deposit') deposit += r.fen;
    else if (r.time >= fromMs) paid += r.fen;
  }
  const opening = moneyFen(bill.opening_balance);
  const total = moneyFen(bill.total_amount);
  const closing = opening + paid - total;
  const due = closing + deposit;
  after.sort((a, b) => a.time - b.time || byteOrder(a.reference, b.reference));
  const outstanding = after.reduce((s, r) => s + r.fen, due);
  return {
    site: site.id,
    account: account.id,
    name: account.name,
    currency: site.currency,
    move_in: account.moveIn !== undefined ? zone.format(account.moveIn) : null,
    move_out: zone.format(moveOut),
    from,
    to: zone.format(moveOut),
    lines: bill.lines,
    kwh: bill.kwh,
    total_amount: bill.total_amount,
    opening_balance: bill.opening_balance,
    payments: moneyText(paid),
    closing_balance: moneyText(closing),
    deposit: moneyText(deposit),
    refund_due: moneyText(Math.max(due, 0)),
    amount_due: moneyText(Math.max(-due, 0)),
    after_move_out: after.map((r) => ({ time: zone.format(r.time), kind: r.kind, amount: moneyText(r.fen), reference: r.reference })),
    outstanding: moneyText(outstanding),
  };
}

/** The offline final statement (`submeter final-statement`, the testcases): bill of the range, then the statement. */
export function computeFinalStatement(site: Site, readings: ReadingSource, payments: Iterable<PaymentRow>, accountId: string): FinalStatement {
  const account = site.accounts.find((a) => a.id === accountId);
  if (!account) throw new BillingInputError(`unknown account '${accountId}'`, { field: 'account' });
  const rows = [...payments];
  const { from, to } = finalStatementRange(site, account);
  const bill = computeBillRun(site, readings, rows, from, to).accounts.find((a) => a.account === accountId)!;
  return finalStatement(site, account, bill, dedupePayments(rows).payments);
}

/** As `submeter final-statement` prints it: 2-space JSON and a final newline. */
export function finalStatementJson(st: FinalStatement): string {
  return `${JSON.stringify(st, null, 2)}\n`;
}
