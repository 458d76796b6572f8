import { createHmac, timingSafeEqual } from 'node:crypto';
import { splitCsvLine } from '../../core/index.ts';
import type { StatementRow } from '../../core/index.ts';
import type { StripeCredentials } from './credentials.ts';
import type { CreatedProviderOrder, NewProviderOrder, ProviderOrderRef, ProviderOrderStatus, ProviderRefundRequest, ProviderRefundResult, RawNotification, StatementDay, TopupProvider, VerifiedNotification } from './provider.ts';
import { header, httpCall, ProviderRejectedError, ProviderUnavailableError, SignatureError, yuanToFen } from './provider.ts';

/**
 * Stripe Checkout (a hosted payment page; the pay link). Formats per the public docs cited
 * in docs/topup.md:
 * - webhooks: `Stripe-Signature: t=<unix s>,v1=<hex>[,v1=...]`, v1 = HMAC-SHA256 of
 *   `<t>.<raw body>` with the endpoint secret, compared in constant time against every v1;
 *   t must be within 5 minutes (Stripe's default tolerance) against replays;
 * - the API: form-encoded POSTs with a bearer secret key and an Idempotency-Key;
 * - the statement: the report run `balance_change_from_activity.itemized.3` (CSV), with the
 *   payment's and refund's metadata columns that carry our order and refund numbers.
 */

const TOLERANCE_S = 300;
/** Checkout Sessions must stay open at least 30 minutes (Stripe refuses a shorter expires_at). */
const MIN_SESSION_S = 30 * 60 + 60;
const REPORT_TYPE = 'balance_change_from_activity.itemized.3';
const REPORT_COLUMNS = ['balance_transaction_id', 'created_utc', 'currency', 'gross', 'reporting_category', 'payment_intent_id', 'payment_metadata[order]', 'refund_metadata[refund_no]'];

export class StripeCheckout implements TopupProvider {
  readonly name = 'stripe' as const;
  private readonly live: boolean;
  constructor(
    private readonly c: StripeCredentials,
    /** The site id, written into each session's metadata and checked on the way back. */
    private readonly site: string,
  ) {
    this.live = c.secret_key.includes('_live_');
  }

  async createOrder(o: NewProviderOrder): Promise<CreatedProviderOrder> {
    const expires = Math.max(Math.floor(o.expiresAt / 1000), Math.floor(o.nowMs / 1000) + MIN_SESSION_S);
    const s = await this.call('POST', '/v1/checkout/sessions', {
      mode: 'payment',
      client_reference_id: o.orderId,
      'line_items[0][quantity]': '1',
      'line_items[0][price_data][currency]': o.currency.toLowerCase(),
      'line_items[0][price_data][unit_amount]': String(o.fen),
      'line_items[0][price_data][product_data][name]': o.description.slice(0, 250),
      'metadata[order]': o.orderId,
      'metadata[site]': this.site,
      'payment_intent_data[metadata][order]': o.orderId,
      'payment_intent_data[metadata][site]': this.site,
      success_url: o.returnUrl,
      expires_at: String(expires),
    }, `order-${o.orderId}`);
    if (typeof s.url !== 'string' || typeof s.id !== 'string') throw new ProviderUnavailableError('stripe: checkout session without url');
    return { payUrl: s.url, providerOrderId: s.id };
  }

  verifyNotification(raw: RawNotification, nowMs: number): VerifiedNotification {
    const sigHeader = header(raw.headers, 'stripe-signature') ?? '';
    let t = '';
    const v1: string[] = [];
    for (const part of sigHeader.split(',')) {
      const eq = part.indexOf('=');
      const k = part.slice(0, eq).trim();
      const v = part.slice(eq + 1).trim();
      if (k === 't') t = v;
      else if (k === 'v1') v1.push(v);
    }
    if (!/^\d{1,12}$/.test(t) || v1.length === 0) throw new SignatureError('stripe: Stripe-Signature needs t= and v1=');
    if (Math.abs(nowMs / 1000 - Number(t)) > TOLERANCE_S) throw new SignatureError('stripe: the signed timestamp is outside the 5-minute tolerance');
    const expected = createHmac('sha256', this.c.webhook_secret).update(Buffer.concat([Buffer.from(`${t}.`), raw.body])).digest();
    const ok = v1.some((s) => {
      const got = /^[0-9a-f]{64}$/i.test(s) ? Buffer.from(s, 'hex') : Buffer.alloc(0);
      return got.length === expected.length && timingSafeEqual(got, expected);
    });
    if (!ok) throw new SignatureError('stripe: no v1 signature matches');
    let e: StripeEvent;
    try {
      e = JSON.parse(raw.body.toString('utf8')) as StripeEvent;
    } catch {
      throw new SignatureError('stripe: the signed body is not JSON');
    }
    const s = e.data?.object ?? {};
    if ((e.type === 'checkout.session.completed' || e.type === 'checkout.session.async_payment_succeeded') && s.payment_status === 'paid') {
      return { kind: 'payment', provider: 'stripe', ...this.facts(s, Number(e.created) * 1000, e.livemode) };
    }
    return { kind: 'ignored', provider: 'stripe', reason: `event ${e.type}${s.payment_status ? ` (${s.payment_status})` : ''}` };
  }

  notificationReply(ok: boolean, why = 'failed') {
    return ok ? { status: 200, type: 'application/json', body: '{"received":true}' } : { status: why === 'signature' ? 401 : 500, type: 'application/json', body: JSON.stringify({ error: why }) };
  }

  async queryOrder(o: ProviderOrderRef): Promise<ProviderOrderStatus> {
    if (!o.providerOrderId) return { status: 'unknown' };
    const s = (await this.call('GET', `/v1/checkout/sessions/${encodeURIComponent(o.providerOrderId)}?expand[]=payment_intent.latest_charge`)) as StripeSession;
    if (s.status === 'complete' && s.payment_status === 'paid') {
      const pi = s.payment_intent as { id?: string; latest_charge?: { created?: number } } | string | undefined;
      const paidS = typeof pi === 'object' ? pi.latest_charge?.created : undefined;
      return { status: 'paid', ...this.facts({ ...s, payment_intent: typeof pi === 'object' ? pi.id : pi }, (paidS ?? s.created ?? 0) * 1000, s.livemode) };
    }
    return { status: s.status === 'expired' ? 'closed' : 'pending' };
  }

  async closeOrder(o: ProviderOrderRef): Promise<void> {
    if (o.providerOrderId) await this.call('POST', `/v1/checkout/sessions/${encodeURIComponent(o.providerOrderId)}/expire`, {});
  }

  async refund(r: ProviderRefundRequest): Promise<ProviderRefundResult> {
    const res = await this.call('POST', '/v1/refunds', { payment_intent: r.transaction, amount: String(r.fen), 'metadata[refund_no]': r.refundNo, 'metadata[order]': r.orderId }, `refund-${r.refundNo}`);
    const status = res.status === 'succeeded' ? 'succeeded' : res.status === 'pending' || res.status === 'requires_action' ? 'pending' : 'failed';
    return { status, refundId: String(res.id), time: Number(res.created) * 1000, detail: String(res.status) };
  }

  async statement(day: StatementDay): Promise<StatementRow[]> {
    const params: Record<string, string> = {
      report_type: REPORT_TYPE,
      'parameters[interval_start]': String(Math.floor(day.fromMs / 1000)),
      'parameters[interval_end]': String(Math.floor(day.toMs / 1000)),
      'parameters[timezone]': day.timezone,
    };
    REPORT_COLUMNS.forEach((c, i) => (params[`parameters[columns][${i}]`] = c));
    let run = await this.call('POST', '/v1/reporting/report_runs', params);
    // Report runs are asynchronous; poll a bounded number of times (a later job retries).
    for (let i = 0; i < 30 && run.status === 'pending'; i++) {
      await new Promise((r) => setTimeout(r, Math.min(200 * 2 ** i, 5000)));
      run = await this.call('GET', `/v1/reporting/report_runs/${encodeURIComponent(String(run.id))}`);
    }
    const url = (run.result as { url?: string } | undefined)?.url;
    if (run.status !== 'succeeded' || !url) throw new ProviderUnavailableError(`stripe: report run ${String(run.id)} is ${String(run.status)}`);
    const file = await httpCall(url, { method: 'GET', headers: { Authorization: `Bearer ${this.c.secret_key}` } });
    if (file.status !== 200) throw new ProviderRejectedError(`stripe: report file answered ${file.status}`, 'report_file');
    return this.parseStatement(file.body);
  }

  /** The itemized balance-change report: one line per balance transaction; charges and refunds are ours, fees and payouts are not. */
  parseStatement(file: Buffer): StatementRow[] {
    const lines = file.toString('utf8').replace(/^\uFEFF/, '').split(/\r?\n/).filter((l) => l.trim());
    const head = splitCsvLine(lines[0] ?? '');
    const col = (n: string) => head.indexOf(n);
    const missing = REPORT_COLUMNS.filter((n) => col(n) < 0 && n !== 'balance_transaction_id');
    if (missing.length) throw new ProviderRejectedError(`stripe report: missing column(s) ${missing.join(', ')}`, 'report_format');
    const rows: StatementRow[] = [];
    for (const line of lines.slice(1)) {
      const f = splitCsvLine(line);
      const get = (n: string) => (f[col(n)] ?? '').trim();
      const cat = get('reporting_category');
      // gross is in major units with the currency's decimals (2 for the currencies a site bills in).
      const base = { orderId: get('payment_metadata[order]'), transaction: get('payment_intent_id'), currency: get('currency').toUpperCase(), time: Date.parse(`${get('created_utc').replace(' ', 'T')}Z`) };
      if (cat === 'charge') rows.push({ kind: 'payment', ...base, fen: yuanToFen(get('gross')) });
      else if (cat === 'refund') rows.push({ kind: 'refund', ...base, refundNo: get('refund_metadata[refund_no]'), fen: Math.abs(yuanToFen(get('gross'))) });
    }
    return rows;
  }

  private facts(s: StripeSession, paidAt: number, livemode: boolean | undefined) {
    const site = s.metadata?.site;
    return {
      orderId: String(s.client_reference_id ?? s.metadata?.order ?? ''),
      transaction: String(s.payment_intent ?? ''),
      fen: Number(s.amount_total),
      currency: String(s.currency ?? '').toUpperCase(),
      paidAt,
      // The endpoint secret already proves the account; the mode and our site tag prove it is this deployment's order.
      merchantOk: livemode === this.live && site === this.site,
      merchant: `livemode ${String(livemode)} site ${String(site)}`,
    };
  }

  private async call(method: 'GET' | 'POST', path: string, form?: Record<string, string>, idempotencyKey?: string): Promise<Record<string, unknown>> {
    const res = await httpCall(this.c.api_base.replace(/\/+$/, '') + path, {
      method,
      headers: {
        Authorization: `Bearer ${this.c.secret_key}`,
        ...(form ? { 'Content-Type': 'application/x-www-form-urlencoded' } : {}),
        ...(idempotencyKey ? { 'Idempotency-Key': idempotencyKey } : {}),
      },
      ...(form && method === 'POST' ? { body: new URLSearchParams(form).toString() } : {}),
    });
    const json = JSON.parse(res.body.toString('utf8') || '{}') as Record<string, unknown>;
    if (res.status >= 400) {
      const e = (json.error ?? {}) as { code?: string; message?: string; type?: string };
      throw new ProviderRejectedError(`stripe ${method} ${path.split('?')[0]}: ${res.status} ${e.code ?? e.type ?? ''} ${e.message ?? ''}`.trim(), e.code ?? String(res.status));
    }
    return json;
  }
}

interface StripeSession {
  id?: string;
  status?: string;
  payment_status?: string;
  client_reference_id?: string;
  amount_total?: number;
  currency?: string;
  payment_intent?: unknown;
  created?: number;
  livemode?: boolean;
  metadata?: Record<string, string>;
}

interface StripeEvent {
  id?: string;
  type?: string;
  created?: number;
  livemode?: boolean;
  data?: { object?: StripeSession };
}
