import { createHmac, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SimNotification, SimOptions } from './base.ts';
import { ProviderSim, sendJson } from './base.ts';

/**
 * Stripe simulator: Checkout Sessions, refunds, report runs with the itemized
 * balance-change CSV, and webhook events signed `t=..,v1=..` (HMAC-SHA256 with an endpoint
 * secret generated at start).
 */
export class StripeSim extends ProviderSim {
  readonly secretKey = `sk_test_${randomBytes(24).toString('base64url')}`;
  readonly webhookSecret = `whsec_${randomBytes(24).toString('base64url')}`;
  /** Where webhooks go (Stripe's endpoints are configured in its dashboard, not per session). */
  webhookUrl = '';
  private readonly sessions = new Map<string, { id: string; order: string; site: string; created: number; expiresAt: number; status: 'open' | 'complete' | 'expired'; pi?: string }>();
  private readonly files = new Map<string, string>();
  private readonly idem = new Map<string, string>();
  statementEdit?: (rows: StripeReportRow[]) => StripeReportRow[];

  constructor(opts: SimOptions = {}) {
    super(opts);
  }

  get credentials() {
    return { secret_key: this.secretKey, webhook_secret: this.webhookSecret, api_base: this.url };
  }

  protected handle(req: IncomingMessage, body: Buffer, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', this.url);
    if (req.headers.authorization !== `Bearer ${this.secretKey}`) return sendJson(res, 401, { error: { type: 'invalid_request_error', message: 'Invalid API Key provided' } });
    const f = new URLSearchParams(body.toString('utf8'));
    const idem = req.headers['idempotency-key'];
    if (typeof idem === 'string' && this.idem.has(idem)) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(this.idem.get(idem));
      return;
    }
    const send = (status: number, obj: unknown) => {
      const text = JSON.stringify(obj);
      if (typeof idem === 'string' && status < 400) this.idem.set(idem, text);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(text);
    };
    let m: RegExpExecArray | null;
    if (req.method === 'POST' && url.pathname === '/v1/checkout/sessions') {
      const order = f.get('client_reference_id') ?? '';
      const expiresAt = Number(f.get('expires_at')) * 1000;
      if (expiresAt < this.now() + 30 * 60_000) return send(400, { error: { type: 'invalid_request_error', param: 'expires_at', message: 'expires_at must be at least 30 minutes from creation' } });
      const id = `cs_test_${randomBytes(16).toString('base64url')}`;
      this.sessions.set(id, { id, order, site: f.get('metadata[site]') ?? '', created: this.now(), expiresAt, status: 'open' });
      this.orders.set(order, { id: order, providerId: id, fen: Number(f.get('line_items[0][price_data][unit_amount]')), currency: (f.get('line_items[0][price_data][currency]') ?? '').toUpperCase(), notifyUrl: this.webhookUrl, description: f.get('line_items[0][price_data][product_data][name]') ?? '', expiresAt, status: 'pending', refunds: [] });
      return send(200, this.session(id));
    }
    if (req.method === 'GET' && (m = /^\/v1\/checkout\/sessions\/([^/]+)$/.exec(url.pathname))) {
      if (!this.sessions.has(m[1])) return send(404, { error: { type: 'invalid_request_error', code: 'resource_missing' } });
      return send(200, this.session(m[1], url.searchParams.getAll('expand[]').includes('payment_intent.latest_charge')));
    }
    if (req.method === 'POST' && (m = /^\/v1\/checkout\/sessions\/([^/]+)\/expire$/.exec(url.pathname))) {
      const s = this.sessions.get(m[1]);
      if (!s) return send(404, { error: { code: 'resource_missing' } });
      if (s.status === 'open') {
        s.status = 'expired';
        this.order(s.order).status = 'closed';
      }
      return send(200, this.session(m[1]));
    }
    if (req.method === 'POST' && url.pathname === '/v1/refunds') {
      const o = [...this.orders.values()].find((x) => x.transaction === f.get('payment_intent'));
      if (!o) return send(404, { error: { code: 'resource_missing', message: 'No such payment_intent' } });
      const amount = Number(f.get('amount'));
      if (amount + o.refunds.reduce((s, r) => s + r.fen, 0) > o.paidFen!) return send(400, { error: { code: 'charge_already_refunded', message: 'Refund amount exceeds the charge' } });
      const r = { refundNo: f.get('metadata[refund_no]') ?? '', refundId: `re_${randomBytes(12).toString('base64url')}`, fen: amount, at: Math.floor(this.now() / 1000) * 1000 };
      o.refunds.push(r);
      return send(200, { id: r.refundId, object: 'refund', amount, currency: o.currency.toLowerCase(), payment_intent: o.transaction, status: 'succeeded', created: r.at / 1000, metadata: { refund_no: r.refundNo, order: o.id } });
    }
    if (req.method === 'POST' && url.pathname === '/v1/reporting/report_runs') {
      const from = Number(f.get('parameters[interval_start]')) * 1000;
      const to = Number(f.get('parameters[interval_end]')) * 1000;
      const cols: string[] = [];
      for (let i = 0; f.has(`parameters[columns][${i}]`); i++) cols.push(f.get(`parameters[columns][${i}]`)!);
      const id = `frr_${randomBytes(10).toString('hex')}`;
      const file = `file_${randomBytes(10).toString('hex')}`;
      this.files.set(file, this.report(from, to, cols));
      this.files.set(id, file);
      // First answer pending, like Stripe; the poll then finds it done.
      return send(200, { id, object: 'reporting.report_run', status: 'pending', report_type: f.get('report_type'), result: null });
    }
    if (req.method === 'GET' && (m = /^\/v1\/reporting\/report_runs\/([^/]+)$/.exec(url.pathname))) {
      const file = this.files.get(m[1]);
      if (!file) return send(404, { error: { code: 'resource_missing' } });
      return send(200, { id: m[1], object: 'reporting.report_run', status: 'succeeded', result: { id: file, object: 'file', url: `${this.url}/v1/files/${file}/contents` } });
    }
    if (req.method === 'GET' && (m = /^\/v1\/files\/([^/]+)\/contents$/.exec(url.pathname))) {
      res.writeHead(200, { 'content-type': 'text/csv' });
      res.end(this.files.get(m[1]) ?? '');
      return;
    }
    send(404, { error: { type: 'invalid_request_error', message: `Unrecognized request URL (${req.method}: ${url.pathname})` } });
  }

  pay(orderId: string, opts: { fen?: number; at?: number } = {}): SimNotification {
    const o = this.order(orderId);
    const s = this.sessions.get(o.providerId!)!;
    if (o.status !== 'paid') {
      o.status = 'paid';
      o.transaction = `pi_${randomBytes(12).toString('base64url')}`;
      o.paidFen = opts.fen ?? o.fen;
      o.paidAt = Math.floor((opts.at ?? this.now()) / 1000) * 1000;
      s.status = 'complete';
      s.pi = o.transaction;
    }
    const event = { id: `evt_${randomBytes(12).toString('base64url')}`, object: 'event', api_version: '2025-04-30.basil', created: o.paidAt! / 1000, livemode: false, type: 'checkout.session.completed', data: { object: this.session(s.id) } };
    return this.signed(JSON.stringify(event));
  }

  /** A webhook of any body, signed now (to test ignored event types). */
  signed(bodyText: string): SimNotification {
    const body = Buffer.from(bodyText, 'utf8');
    const t = Math.floor(this.now() / 1000);
    const v1 = createHmac('sha256', this.webhookSecret).update(`${t}.${bodyText}`).digest('hex');
    return { url: this.webhookUrl, headers: { 'content-type': 'application/json; charset=utf-8', 'stripe-signature': `t=${t},v1=${v1}` }, body };
  }

  statementFile(date: string): Buffer {
    const from = Date.parse(`${date}T00:00:00Z`);
    return Buffer.from(this.report(from, from + 86_400_000, ['balance_transaction_id', 'created_utc', 'currency', 'gross', 'reporting_category', 'payment_intent_id', 'payment_metadata[order]', 'refund_metadata[refund_no]']));
  }

  private report(from: number, to: number, cols: string[]): string {
    let rows: StripeReportRow[] = [];
    for (const o of this.orders.values()) {
      if (o.status === 'paid' && o.paidAt! >= from && o.paidAt! < to) rows.push({ id: `txn_${o.transaction!.slice(3)}`, time: o.paidAt!, currency: o.currency.toLowerCase(), fen: o.paidFen!, category: 'charge', pi: o.transaction!, order: o.id, refundNo: '' });
      for (const r of o.refunds) if (r.at >= from && r.at < to) rows.push({ id: `txn_${r.refundId.slice(3)}`, time: r.at, currency: o.currency.toLowerCase(), fen: -r.fen, category: 'refund', pi: o.transaction!, order: o.id, refundNo: r.refundNo });
    }
    if (this.statementEdit) rows = this.statementEdit(rows);
    const value = (r: StripeReportRow, c: string) =>
      ({ balance_transaction_id: r.id, created_utc: new Date(r.time).toISOString().slice(0, 19).replace('T', ' '), currency: r.currency, gross: `${r.fen < 0 ? '-' : ''}${Math.floor(Math.abs(r.fen) / 100)}.${String(Math.abs(r.fen) % 100).padStart(2, '0')}`, reporting_category: r.category, payment_intent_id: r.pi, 'payment_metadata[order]': r.order, 'refund_metadata[refund_no]': r.refundNo })[c] ?? '';
    return [cols.join(','), ...rows.sort((a, b) => a.time - b.time).map((r) => cols.map((c) => value(r, c)).join(','))].join('\n') + '\n';
  }

  private session(id: string, expandCharge = false) {
    const s = this.sessions.get(id)!;
    const o = this.order(s.order);
    const pi = s.pi ? (expandCharge ? { id: s.pi, object: 'payment_intent', latest_charge: { id: `ch_${s.pi.slice(3)}`, created: o.paidAt! / 1000 } } : s.pi) : null;
    return {
      id,
      object: 'checkout.session',
      mode: 'payment',
      url: s.status === 'open' ? `${this.url}/pay/${id}` : null,
      client_reference_id: s.order,
      amount_total: o.status === 'paid' ? o.paidFen : o.fen,
      currency: o.currency.toLowerCase(),
      status: s.status,
      payment_status: s.status === 'complete' ? 'paid' : 'unpaid',
      payment_intent: pi,
      created: Math.floor(s.created / 1000),
      expires_at: Math.floor(s.expiresAt / 1000),
      livemode: false,
      metadata: { order: s.order, site: s.site },
    };
  }
}

export interface StripeReportRow {
  id: string;
  time: number;
  currency: string;
  /** Signed fen: refunds negative. */
  fen: number;
  category: 'charge' | 'refund';
  pi: string;
  order: string;
  refundNo: string;
}
