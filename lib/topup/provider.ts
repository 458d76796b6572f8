import type { PaymentNotice, StatementRow, TopupProviderName } from '../../core/index.ts';

/**
 * One small interface for every payment provider (docs/topup.md, "Providers"). An adapter
 * speaks its provider's wire format and cryptography and hands back normalised facts; it
 * decides nothing about money (core/topup does) and stores nothing (workers/topup does).
 */
export interface TopupProvider {
  readonly name: TopupProviderName;
  /** Creates the order at the provider: the QR code content (WeChat, Alipay) or a pay link (Stripe). */
  createOrder(order: NewProviderOrder): Promise<CreatedProviderOrder>;
  /**
   * Verifies a notification's signature over the raw body BEFORE reading anything in it,
   * then parses it. Throws SignatureError (answer 401, nothing happens) when it does not
   * verify; never returns unverified content.
   */
  verifyNotification(raw: RawNotification, nowMs: number): VerifiedNotification;
  /** The HTTP answer the provider expects: success stops its retries; failure makes it retry later. */
  notificationReply(ok: boolean, why?: string): { status: number; type: string; body: string };
  /** Asks the provider where an order stands (an order still pending after a few minutes). */
  queryOrder(order: ProviderOrderRef): Promise<ProviderOrderStatus>;
  /** Closes an unpaid order at the provider so that it can no longer be paid (best effort). */
  closeOrder(order: ProviderOrderRef): Promise<void>;
  refund(refund: ProviderRefundRequest): Promise<ProviderRefundResult>;
  /** Downloads and parses the provider's statement (bill) of one day. */
  statement(day: StatementDay): Promise<StatementRow[]>;
  /** Parses a statement file in the provider's downloadable format (tests and the CLI read local files). */
  parseStatement(file: Buffer): StatementRow[];
}

export interface NewProviderOrder {
  readonly orderId: string;
  readonly fen: number;
  readonly currency: string;
  /** Shown to the payer. */
  readonly description: string;
  readonly expiresAt: number;
  /** Absolute URL of our notification endpoint for this provider. */
  readonly notifyUrl: string;
  /** Where a browser returns after paying (Stripe). */
  readonly returnUrl: string;
  readonly nowMs: number;
}

export interface CreatedProviderOrder {
  /** Content to encode in a QR code (weixin://..., https://qr.alipay.com/...). */
  readonly qrCode?: string;
  /** A link that opens the payment page. */
  readonly payUrl?: string;
  /** The provider's id for the order when it is not our order id (Stripe Checkout Session). */
  readonly providerOrderId?: string;
}

export interface ProviderOrderRef {
  readonly orderId: string;
  readonly providerOrderId?: string;
}

export interface RawNotification {
  /** Lower-case header names. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The body exactly as received: signatures are over these bytes. */
  readonly body: Buffer;
}

/** What a verified notification or query says of a paid order (the core's PaymentNotice without the provider). */
export type PaymentFacts = Omit<PaymentNotice, 'provider'>;

export type VerifiedNotification =
  | ({ readonly kind: 'payment'; readonly provider: TopupProviderName } & PaymentFacts)
  | { readonly kind: 'refund'; readonly provider: TopupProviderName; readonly orderId: string; readonly refundNo: string; readonly refundId: string; readonly fen: number; readonly time: number; readonly merchantOk: boolean }
  /** Verified, but nothing to do (another event type, a failed payment, a refund notice we record elsewhere). */
  | { readonly kind: 'ignored'; readonly provider: TopupProviderName; readonly reason: string };

export type ProviderOrderStatus =
  | ({ readonly status: 'paid' } & PaymentFacts)
  | { readonly status: 'pending' | 'closed' | 'unknown' };

export interface ProviderRefundRequest {
  readonly orderId: string;
  readonly providerOrderId?: string;
  readonly transaction: string;
  /** Our refund number (the ledger reference and every statement carry it). */
  readonly refundNo: string;
  readonly fen: number;
  /** The order's amount (WeChat wants both). */
  readonly totalFen: number;
  readonly currency: string;
  readonly reason: string;
  readonly notifyUrl: string;
}

export interface ProviderRefundResult {
  /** succeeded: the money went back; pending: a notification (or the statement) will tell; failed: nothing moved. */
  readonly status: 'succeeded' | 'pending' | 'failed';
  readonly refundId: string;
  readonly time: number;
  readonly detail?: string;
}

export interface StatementDay {
  /** YYYY-MM-DD, the provider's statement day. */
  readonly date: string;
  /** The day's bounds in epoch ms (Stripe report runs take an interval). */
  readonly fromMs: number;
  readonly toMs: number;
  readonly timezone: string;
}

/** A notification that does not verify: answer 401 and do nothing with it. */
export class SignatureError extends Error {
  override readonly name = 'SignatureError';
}

/** The provider answered, and said no (bad request, unknown order...): retrying the same call will not help. */
export class ProviderRejectedError extends Error {
  override readonly name = 'ProviderRejectedError';
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** The provider could not be reached or failed (network, 5xx, a response that does not verify): retry later. */
export class ProviderUnavailableError extends Error {
  override readonly name = 'ProviderUnavailableError';
}

/** First value of a header. */
export function header(h: RawNotification['headers'], name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Money text with at most 2 decimals (the providers' yuan fields) to integer fen, exactly. */
export function yuanToFen(text: string): number {
  const m = /^(-?)(\d+)(?:\.(\d{1,2}))?$/.exec(text.trim());
  if (!m) throw new ProviderRejectedError(`not an amount with at most 2 decimals: ${JSON.stringify(text.slice(0, 40))}`, 'bad_amount');
  const v = Number(m[2]) * 100 + Number((m[3] ?? '').padEnd(2, '0'));
  return m[1] === '-' ? -v : v;
}

/** Integer fen as provider money text ("100.00"). */
export function fenToYuan(fen: number): string {
  const neg = fen < 0;
  const a = Math.abs(fen);
  return `${neg ? '-' : ''}${Math.floor(a / 100)}.${String(a % 100).padStart(2, '0')}`;
}

/** "yyyy-MM-dd HH:mm:ss" in China Standard Time (UTC+8, no DST), as WeChat's and Alipay's files and fields write it. */
export function parseChinaTime(text: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})$/.exec(text.trim());
  if (!m) throw new ProviderRejectedError(`not a time yyyy-MM-dd HH:mm:ss: ${JSON.stringify(text.slice(0, 40))}`, 'bad_time');
  return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4] - 8, +m[5], +m[6]);
}

export function formatChinaTime(ms: number): string {
  return new Date(ms + 8 * 3_600_000).toISOString().slice(0, 19).replace('T', ' ');
}

/** fetch with a timeout; network faults become ProviderUnavailableError. */
export async function httpCall(url: string, init: RequestInit & { timeoutMs?: number }): Promise<{ status: number; headers: Headers; body: Buffer }> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(init.timeoutMs ?? 10_000) });
  } catch (err) {
    throw new ProviderUnavailableError(`${new URL(url).host}: ${(err as Error).message}`);
  }
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status >= 500 || res.status === 429) throw new ProviderUnavailableError(`${new URL(url).host} answered ${res.status}`);
  return { status: res.status, headers: res.headers, body };
}
