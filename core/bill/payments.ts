import { BillingInputError } from '../errors.ts';
import type { PaymentRow } from '../readings/csv.ts';
import type { QualityFlag } from '../types.ts';
import { byteOrder, moneyText } from '../units.ts';

/**
 * billing.md section 1, payments: one payment per reference. A payment's content is its
 * (account, numeric amount, kind) (kind: billing.md section 11; a plain payment's content is
 * (account, amount) as before); its instant is not part of it (issue 11): a retry that was
 * stamped "now" again is the same payment, not a conflict. A transfer is two rows of one
 * reference at one instant on two accounts with opposite amounts: its content is the pair.
 * Rows of one reference with the same content are one payment, at the earliest of their
 * instants. When contents differ, the earliest row (by instant, then amount, then account,
 * then kind) is kept, with every row of its content, and each other content is rejected and
 * flagged `payment_conflict` once, at the instant of its earliest row.
 */
export interface PaymentSet {
  /** Accepted payments sorted by instant, account, reference. */
  readonly payments: readonly PaymentRow[];
  readonly flags: readonly QualityFlag[];
}

const kindOf = (r: { readonly kind?: string }) => r.kind ?? 'payment';

function compareRows(a: PaymentRow, b: PaymentRow): number {
  return a.time - b.time || a.fen - b.fen || byteOrder(a.account, b.account) || byteOrder(kindOf(a), kindOf(b));
}

/** The content that makes two rows of one reference the same payment (a transfer: each of its two rows). */
export function paymentContent(p: { readonly account: string; readonly fen: number; readonly kind?: string }): string {
  return kindOf(p) === 'payment' ? `${p.account}|${p.fen}` : `${p.account}|${p.fen}|${kindOf(p)}`;
}

/** `A101 -20.00`, with the kind when it is not a plain payment (`A101 -20.00 refund`). */
const what = (r: PaymentRow) => `${r.account} ${moneyText(r.fen)}${kindOf(r) !== 'payment' ? ` ${r.kind}` : ''}`;

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
    const seen = new Set([paymentContent(kept), ...(pair ? [paymentContent(pair)] : [])]);
    for (const r of list.slice(1)) {
      const content = paymentContent(r);
      if (seen.has(content)) continue; // the kept payment again (a retry), or a content already flagged
      seen.add(content);
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
