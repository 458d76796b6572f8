import type { TopupProviderName } from '../site/model.ts';
import { byteOrder, moneyText } from '../units.ts';
import type { OrderFacts } from './rules.ts';
import { paymentReference, refundReference } from './rules.ts';

/**
 * Daily reconciliation of a provider's statement against the ledger (docs/topup.md,
 * "Reconciliation"). Pure: the worker downloads and parses the statement, loads the
 * ledger and the orders, and calls this. Only one case changes money, and only through
 * the one payment path: a successful payment at the provider that the ledger lacks, for
 * an order we know with the same amount, is credited with a reason. Everything else is an
 * alarm for the managers; nothing is changed silently.
 */

/** One line of a provider statement, whatever the provider's file format. */
export interface StatementRow {
  readonly kind: 'payment' | 'refund';
  /** Our order id (out_trade_no, client_reference_id). */
  readonly orderId: string;
  /** The provider's payment transaction id. */
  readonly transaction: string;
  /** Refund rows: our refund number. */
  readonly refundNo?: string;
  /** Integer fen, positive for both kinds. */
  readonly fen: number;
  readonly currency: string;
  /** Epoch ms of the payment or refund at the provider. */
  readonly time: number;
}

export interface LedgerLine {
  readonly reference: string;
  readonly account: string;
  readonly fen: number;
  readonly time: number;
}

export type MismatchType = 'missing_in_ledger' | 'missing_at_provider' | 'amount_mismatch' | 'unknown_order' | 'refund_missing_in_ledger';

export interface ReconcileItem {
  readonly type: MismatchType;
  /** credit: credited automatically (the only case); alarm: a manager decides. */
  readonly action: 'credit' | 'alarm';
  readonly reference: string;
  readonly order: string;
  readonly account: string;
  /** Integer fen as the provider has it (negative for refunds); null when the provider has no record. */
  readonly providerFen: number | null;
  /** Integer fen as the ledger has it; null when the ledger has no line. */
  readonly ledgerFen: number | null;
  readonly time: number;
  readonly reason: string;
}

export interface ReconcileInput {
  readonly provider: TopupProviderName;
  /** The provider's statement day, YYYY-MM-DD. */
  readonly date: string;
  /** The day's bounds (epoch ms): ledger lines inside must appear in the statement. */
  readonly fromMs: number;
  readonly toMs: number;
  readonly rows: readonly StatementRow[];
  /**
   * Ledger lines of this provider's references, over a window wider than the day (a
   * payment near midnight may sit on either side); matched by reference.
   */
  readonly ledger: readonly LedgerLine[];
  readonly orders: ReadonlyMap<string, OrderFacts>;
}

export interface ReconcileCredit {
  readonly account: string;
  readonly fen: number;
  readonly reference: string;
  readonly time: number;
  readonly order: string;
  readonly transaction: string;
  readonly reason: string;
}

export interface ReconcileResult {
  readonly provider: TopupProviderName;
  readonly date: string;
  readonly statementRows: number;
  readonly matched: number;
  /** Sorted by time, then reference. */
  readonly items: readonly ReconcileItem[];
  /** What to credit through the payment path (the items with action 'credit'). */
  readonly credits: readonly ReconcileCredit[];
}

export function reconcileStatement(input: ReconcileInput): ReconcileResult {
  const { provider, date } = input;
  const byRef = new Map<string, LedgerLine>();
  for (const l of input.ledger) if (!byRef.has(l.reference)) byRef.set(l.reference, l);
  const seen = new Set<string>();
  const items: ReconcileItem[] = [];
  const credits: ReconcileCredit[] = [];
  let matched = 0;

  for (const row of input.rows) {
    const order = input.orders.get(row.orderId);
    const account = order?.account ?? '';
    if (row.kind === 'payment') {
      const reference = paymentReference(provider, row.transaction);
      seen.add(reference);
      const line = byRef.get(reference);
      if (line) {
        if (line.fen === row.fen) matched++;
        else items.push({ type: 'amount_mismatch', action: 'alarm', reference, order: row.orderId, account: line.account, providerFen: row.fen, ledgerFen: line.fen, time: row.time, reason: `${provider} collected ${moneyText(row.fen)}, the ledger credited ${moneyText(line.fen)}` });
        continue;
      }
      if (!order) {
        items.push({ type: 'unknown_order', action: 'alarm', reference, order: row.orderId, account: '', providerFen: row.fen, ledgerFen: null, time: row.time, reason: `${provider} collected ${moneyText(row.fen)} for order ${row.orderId}, which this site does not know` });
      } else if (order.fen !== row.fen || order.currency !== row.currency || order.provider !== provider) {
        items.push({ type: 'amount_mismatch', action: 'alarm', reference, order: row.orderId, account, providerFen: row.fen, ledgerFen: null, time: row.time, reason: `${provider} collected ${moneyText(row.fen)} ${row.currency} for order ${row.orderId} of ${moneyText(order.fen)} ${order.currency} (${order.provider}); not credited` });
      } else if (order.state === 'refunded' || order.state === 'conflict' || (order.state === 'paid' && order.transaction !== row.transaction)) {
        items.push({ type: 'missing_in_ledger', action: 'alarm', reference, order: row.orderId, account, providerFen: row.fen, ledgerFen: null, time: row.time, reason: `${provider} collected ${moneyText(row.fen)} for order ${row.orderId}, which is ${order.state}${order.transaction ? ` by ${order.transaction}` : ''}; not credited` });
      } else {
        const reason = `reconciliation of the ${provider} statement of ${date}: paid at ${provider} (${row.transaction}) but missing in the ledger; credited`;
        items.push({ type: 'missing_in_ledger', action: 'credit', reference, order: row.orderId, account, providerFen: row.fen, ledgerFen: null, time: row.time, reason });
        credits.push({ account, fen: row.fen, reference, time: row.time, order: row.orderId, transaction: row.transaction, reason });
      }
    } else {
      const reference = refundReference(provider, row.refundNo ?? '');
      seen.add(reference);
      const line = byRef.get(reference);
      if (line && line.fen === -row.fen) matched++;
      else if (line) items.push({ type: 'amount_mismatch', action: 'alarm', reference, order: row.orderId, account: line.account, providerFen: -row.fen, ledgerFen: line.fen, time: row.time, reason: `${provider} refunded ${moneyText(row.fen)}, the ledger has ${moneyText(line.fen)}` });
      else items.push({ type: 'refund_missing_in_ledger', action: 'alarm', reference, order: row.orderId, account, providerFen: -row.fen, ledgerFen: null, time: row.time, reason: `${provider} refunded ${moneyText(row.fen)} of order ${row.orderId} (refund ${row.refundNo ?? '?'}), the ledger has no such refund` });
    }
  }
  for (const l of input.ledger) {
    if (seen.has(l.reference) || l.time < input.fromMs || l.time >= input.toMs) continue;
    seen.add(l.reference);
    items.push({ type: 'missing_at_provider', action: 'alarm', reference: l.reference, order: '', account: l.account, providerFen: null, ledgerFen: l.fen, time: l.time, reason: `the ledger has ${moneyText(l.fen)} for ${l.account} under ${l.reference}; the ${provider} statement of ${date} has no such ${l.fen < 0 ? 'refund' : 'payment'}` });
  }
  items.sort((a, b) => a.time - b.time || byteOrder(a.reference, b.reference));
  return { provider, date, statementRows: input.rows.length, matched, items, credits };
}
