import type { TopupConfig, TopupProviderName } from '../site/model.ts';
import { moneyText } from '../units.ts';

/**
 * The money rules of online top-up (docs/topup.md), pure: which amounts a tenant may
 * order, what a verified provider notification does to an order, and the ledger
 * references a provider's payment and refund are recorded under. The workers and the API
 * call these; nothing else decides them.
 */

export type OrderState = 'created' | 'paid' | 'expired' | 'refunded' | 'conflict';
export const ORDER_STATES: readonly OrderState[] = ['created', 'paid', 'expired', 'refunded', 'conflict'];

/** What the rules need to know of an order. */
export interface OrderFacts {
  readonly id: string;
  readonly account: string;
  readonly provider: TopupProviderName;
  /** Integer fen, > 0. */
  readonly fen: number;
  readonly currency: string;
  readonly state: OrderState;
  /** Epoch ms after which the order may no longer be paid. */
  readonly expiresAt: number;
  /** The provider's transaction id once paid. */
  readonly transaction?: string;
  /** Sum of refunds recorded so far, integer fen >= 0. */
  readonly refundedFen: number;
}

/** A provider notification (or query answer) saying an order was paid, after its signature was verified. */
export interface PaymentNotice {
  readonly provider: TopupProviderName;
  readonly orderId: string;
  readonly transaction: string;
  /** What the provider collected, integer fen. */
  readonly fen: number;
  /** ISO 4217, upper case. */
  readonly currency: string;
  /** Epoch ms of the payment at the provider. */
  readonly paidAt: number;
  /** The notification names our merchant / app (mchid + appid, app_id, account and mode). */
  readonly merchantOk: boolean;
  /** What it named, for the conflict text. */
  readonly merchant: string;
}

export type ConflictCode = 'unknown_order' | 'merchant' | 'provider' | 'currency' | 'amount' | 'refunded' | 'in_conflict' | 'second_payment';

export type PaymentVerdict =
  /** Credit the order (late: paid after its expiry; the money arrived, so it is credited and flagged). */
  | { readonly action: 'credit'; readonly late: boolean }
  /** This very payment was already accepted: make sure its ledger line is durable, credit nothing new. */
  | { readonly action: 'already' }
  /** Credit nothing; managers see a conflict event (never the tenant). */
  | { readonly action: 'conflict'; readonly code: ConflictCode; readonly reason: string };

/** The amount a tenant may order, or why not. */
export function checkTopupAmount(cfg: TopupConfig, fen: number): string | undefined {
  if (!Number.isSafeInteger(fen) || fen <= 0) return 'amount must be a positive amount with at most 2 decimals';
  if (fen < cfg.minFen) return `amount ${moneyText(fen)} is below the minimum top-up ${moneyText(cfg.minFen)}`;
  if (fen > cfg.maxFen) return `amount ${moneyText(fen)} is above the maximum top-up ${moneyText(cfg.maxFen)}`;
  return undefined;
}

/**
 * What a verified payment notification does (docs/topup.md, "Notifications"). Every field
 * the provider reports must equal the order's; anything else is a conflict that credits
 * nothing. A payment arriving after the order expired is still credited (the tenant paid),
 * and flagged.
 */
export function judgePayment(order: OrderFacts | undefined, n: PaymentNotice): PaymentVerdict {
  const paid = `${n.provider} ${n.transaction} (${moneyText(n.fen)} ${n.currency})`;
  if (!order) return { action: 'conflict', code: 'unknown_order', reason: `payment ${paid} for unknown order ${n.orderId}` };
  if (!n.merchantOk) return { action: 'conflict', code: 'merchant', reason: `payment ${paid} for order ${order.id} names merchant ${n.merchant}, not ours` };
  if (n.provider !== order.provider) return { action: 'conflict', code: 'provider', reason: `payment ${paid} for order ${order.id}, which was created with ${order.provider}` };
  if (n.currency !== order.currency) return { action: 'conflict', code: 'currency', reason: `payment ${paid} for order ${order.id} of ${moneyText(order.fen)} ${order.currency}: currency differs` };
  if (n.fen !== order.fen) return { action: 'conflict', code: 'amount', reason: `payment ${paid} for order ${order.id} of ${moneyText(order.fen)} ${order.currency}: amount differs` };
  switch (order.state) {
    case 'created':
      return { action: 'credit', late: n.paidAt > order.expiresAt };
    case 'expired':
      return { action: 'credit', late: true };
    case 'paid':
      return order.transaction === n.transaction
        ? { action: 'already' }
        : { action: 'conflict', code: 'second_payment', reason: `second payment ${paid} for order ${order.id}, already paid by ${order.transaction}` };
    case 'refunded':
      return { action: 'conflict', code: 'refunded', reason: `payment ${paid} for order ${order.id}, which is already refunded` };
    case 'conflict':
      return { action: 'conflict', code: 'in_conflict', reason: `payment ${paid} for order ${order.id}, which is in conflict` };
  }
}

/** How much of a paid order may still be refunded, or why none. */
export function refundable(order: OrderFacts, fen: number): string | undefined {
  if (order.state !== 'paid' && order.state !== 'refunded') return `order ${order.id} is ${order.state}; only a paid order can be refunded`;
  if (!Number.isSafeInteger(fen) || fen <= 0) return 'refund amount must be positive';
  const left = order.fen - order.refundedFen;
  if (fen > left) return `order ${order.id} has ${moneyText(left)} left to refund; ${moneyText(fen)} asked`;
  return undefined;
}

/** The ledger reference of a provider payment: the provider's own transaction id, named by provider so two providers never collide. */
export function paymentReference(provider: TopupProviderName, transaction: string): string {
  return `${provider}:${transaction}`;
}

/** The ledger reference of a refund: our refund number, which every provider's statement carries. */
export function refundReference(provider: TopupProviderName, refundNo: string): string {
  return `${provider}:refund:${refundNo}`;
}
