import type { PaymentRow } from '../readings/csv.ts';
import type { QualityFlag } from '../types.ts';
import { byteOrder, moneyText } from '../units.ts';

/**
 * billing.md section 1, payments: one payment per reference. A payment's content is its
 * (account, numeric amount); its instant is not part of it (issue 11): a retry that was
 * stamped "now" again is the same payment, not a conflict. Rows of one reference with the
 * same content are one payment, at the earliest of their instants. When contents differ,
 * the earliest row (by instant, then amount, then account) is kept, with every row of its
 * content, and each other content is rejected and flagged `payment_conflict` once, at the
 * instant of its earliest row.
 */
export interface PaymentSet {
  /** Accepted payments sorted by instant, account, reference. */
  readonly payments: readonly PaymentRow[];
  readonly flags: readonly QualityFlag[];
}

function compareRows(a: PaymentRow, b: PaymentRow): number {
  return a.time - b.time || a.fen - b.fen || byteOrder(a.account, b.account);
}

/** The content that makes two rows of one reference the same payment. */
export function paymentContent(p: { readonly account: string; readonly fen: number }): string {
  return `${p.account}|${p.fen}`;
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
    list.sort(compareRows);
    const kept = list[0];
    payments.push(kept);
    const seen = new Set([paymentContent(kept)]);
    for (const r of list.slice(1)) {
      const content = paymentContent(r);
      if (seen.has(content)) continue; // the kept payment again (a retry), or a content already flagged
      seen.add(content);
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
