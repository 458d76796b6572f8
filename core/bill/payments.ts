import { BillingInputError } from '../errors.ts';
import type { PaymentRow } from '../readings/csv.ts';
import type { QualityFlag } from '../types.ts';
import { byteOrder, moneyText } from '../units.ts';

/**
 * billing.md section 1, payments: one payment per reference. Rows of one reference with
 * the same content (instant, account, amount) are one payment; when contents differ the
 * earliest (by instant, then amount, then account) is kept and every other content is
 * rejected and flagged `payment_conflict` at its own instant.
 */
export interface PaymentSet {
  /** Accepted payments sorted by instant, account, reference. */
  readonly payments: readonly PaymentRow[];
  readonly flags: readonly QualityFlag[];
}

const kindOf = (r: PaymentRow) => r.kind ?? 'payment';

function compareContent(a: PaymentRow, b: PaymentRow): number {
  return a.time - b.time || a.fen - b.fen || byteOrder(a.account, b.account) || byteOrder(kindOf(a), kindOf(b));
}

/** `A101 -20.00`, with the kind when it is not a plain payment (`A101 -20.00 refund`). */
const what = (r: PaymentRow) => `${r.account} ${moneyText(r.fen)}${r.kind && r.kind !== 'payment' ? ` ${r.kind}` : ''}`;

/** @param format how the kept payment's instant is written in a flag's detail (the site's local RFC 3339 in bills). */
export function dedupePayments(rows: Iterable<PaymentRow>, format: (utc: number) => string = (t) => new Date(t).toISOString()): PaymentSet {
  const byRef = new Map<string, PaymentRow[]>();
  for (const r of rows) {
    const list = byRef.get(r.reference);
    if (list) list.push(r);
    else byRef.set(r.reference, [r]);
  }
  const payments: PaymentRow[] = [];
  const flags: QualityFlag[] = [];
  for (const [reference, list] of byRef) {
    list.sort(compareContent);
    const kept = list[0];
    payments.push(kept);
    // A transfer (billing.md section 11) is two rows under one reference: its content is
    // the pair, the earliest row and the other side (same instant, opposite amount).
    let pair: PaymentRow | undefined;
    if (kept.kind === 'transfer') {
      pair = list.find((r) => r.kind === 'transfer' && r.time === kept.time && r.fen === -kept.fen && r.account !== kept.account);
      if (!pair) {
        throw new BillingInputError(`transfer ${reference}: needs two rows at one instant with opposite amounts on two accounts, found only ${what(kept)} at ${format(kept.time)}`, { field: 'reference' });
      }
      payments.push(pair);
    }
    const already = pair ? `a transfer of ${moneyText(pair.fen)} from ${kept.account} to ${pair.account}` : what(kept);
    let last = kept;
    for (const r of list.slice(1)) {
      if (compareContent(r, last) === 0 || (pair && compareContent(r, pair) === 0)) continue; // the same payment again
      last = r;
      flags.push({
        meter: '',
        time: r.time,
        kind: 'payment_conflict',
        detail: `reference ${reference}: ${what(r)} rejected, the reference is already ${already} at ${format(kept.time)}`,
      });
    }
  }
  payments.sort((a, b) => a.time - b.time || byteOrder(a.account, b.account) || byteOrder(a.reference, b.reference));
  return { payments, flags };
}
