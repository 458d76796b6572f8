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

function compareContent(a: PaymentRow, b: PaymentRow): number {
  return a.time - b.time || a.fen - b.fen || byteOrder(a.account, b.account);
}

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
    let last = kept;
    for (const r of list.slice(1)) {
      if (compareContent(r, last) === 0) continue; // same content: the same payment again
      last = r;
      flags.push({
        meter: '',
        time: r.time,
        kind: 'payment_conflict',
        detail: `reference ${reference}: ${r.account} ${moneyText(r.fen)} rejected, the reference is already ${kept.account} ${moneyText(kept.fen)} at ${format(kept.time)}`,
      });
    }
  }
  payments.sort((a, b) => a.time - b.time || byteOrder(a.account, b.account) || byteOrder(a.reference, b.reference));
  return { payments, flags };
}
