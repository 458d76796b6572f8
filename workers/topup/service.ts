import type { RedisClient } from '../../lib/redis.ts';
import { addDays, checkTopupAmount, judgePayment, moneyText, paymentReference, reconcileStatement, refundable, refundReference, zoneOf } from '../../core/index.ts';
import type { ReconcileItem, Site, TopupProviderName } from '../../core/index.ts';
import type { InfluxV1 } from '../../influx/client.ts';
import { eventLine } from '../../influx/event-lines.ts';
import { createLogger } from '../../lib/logger.ts';
import type { Logger } from '../../lib/logger.ts';
import { ProviderRejectedError, SignatureError } from '../../lib/topup/index.ts';
import type { PaymentFacts, RawNotification, TopupProviders } from '../../lib/topup/index.ts';
import { loadPayments, PaymentRejectedError, recordPayment } from '../payments.ts';
import { newOrderId, newRefundNo, OrderStore } from './order-store.ts';
import type { RefundRecord, TopupOrder } from './order-store.ts';

/**
 * Online top-up, end to end on the workers' side of the fence (docs/topup.md): orders,
 * verified notifications, the pending-order poll, refunds and the daily statement
 * reconciliation. The API's routes and the workers' `topup` queue both call this; every
 * credit and refund goes through recordPayment (the one payment path) with the provider's
 * transaction id (or our refund number) as the reference and the provider's time.
 */

export interface TopupServiceOptions {
  readonly site: () => Site;
  readonly influx: InfluxV1;
  readonly redis: RedisClient;
  /** The workers' key prefix (payments and orders). @defaultValue 'submeter' */
  readonly keyPrefix?: string;
  readonly providers: TopupProviders;
  /** @defaultValue Date.now */
  readonly now?: () => number;
  readonly log?: Logger;
  /**
   * Called as a notification passes each stage. Tests use it to kill the process between
   * verification and the reply (the provider then retries); nothing else needs it.
   */
  readonly onStage?: (stage: 'verified' | 'flipped' | 'credited') => void;
}

/** A request the rules refuse (4xx for the API); `code` names why. */
export class TopupError extends Error {
  override readonly name = 'TopupError';
  constructor(
    readonly code: 'disabled' | 'bad_provider' | 'bad_amount' | 'not_found' | 'conflict' | 'provider',
    message: string,
  ) {
    super(message);
  }
}

export type PaymentOutcome = 'credited' | 'credited_late' | 'already' | 'conflict';

export interface ReconcileReportItem {
  readonly type: ReconcileItem['type'];
  readonly action: 'credited' | 'alarm';
  readonly reference: string;
  readonly order: string;
  readonly account: string;
  readonly provider_amount: string | null;
  readonly ledger_amount: string | null;
  readonly time: string;
  readonly reason: string;
}

export interface ReconcileReport {
  readonly site: string;
  readonly provider: TopupProviderName;
  readonly date: string;
  readonly generated_at: string;
  readonly statement_rows: number;
  readonly matched: number;
  readonly credited: number;
  readonly alarms: number;
  readonly items: readonly ReconcileReportItem[];
}

/** WeChat Pay and Alipay cut their statements at China midnight; Stripe's report runs take the site's zone. */
function statementZone(provider: TopupProviderName, site: Site): string {
  return provider === 'stripe' ? site.timezone : 'Asia/Shanghai';
}

export class TopupService {
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly prefix: string;
  constructor(private readonly o: TopupServiceOptions) {
    this.now = o.now ?? Date.now;
    this.log = o.log ?? createLogger('topup');
    this.prefix = o.keyPrefix ?? 'submeter';
  }

  private get site(): Site {
    return this.o.site();
  }

  store(site = this.site): OrderStore {
    return new OrderStore(this.o.redis, this.prefix, site.id);
  }

  // --- orders ---------------------------------------------------------------------------

  /** A tenant's order: checked against the site's limits, stored, then created at the provider. */
  async createOrder(input: { account: string; fen: number; provider: string; baseUrl: string }): Promise<TopupOrder> {
    const site = this.site;
    const cfg = site.topup;
    if (!cfg) throw new TopupError('disabled', 'online top-up is not enabled on this site');
    const provider = cfg.providers.find((p) => p === input.provider);
    const adapter = provider && this.o.providers.get(provider);
    if (!provider || !adapter) throw new TopupError('bad_provider', `provider must be one of ${cfg.providers.join(', ')}`);
    const problem = checkTopupAmount(cfg, input.fen);
    if (problem) throw new TopupError('bad_amount', problem);
    const account = site.accounts.find((a) => a.id === input.account);
    if (!account) throw new TopupError('not_found', `no account ${input.account}`);
    const now = this.now();
    const id = newOrderId(now);
    const base = (cfg.publicUrl ?? input.baseUrl).replace(/\/+$/, '');
    const order = { id, site: site.id, account: account.id, provider, fen: input.fen, currency: site.currency, created: now, expiresAt: now + cfg.expiryMs };
    // Stored before the provider hears of it: a notification can never find an order we do not know.
    const store = this.store(site);
    await store.create(order);
    let created;
    try {
      created = await adapter.createOrder({ orderId: id, fen: input.fen, currency: site.currency, description: `电费充值 Electricity ${site.name} ${account.id}`, expiresAt: order.expiresAt, notifyUrl: `${base}/api/v1/topup/notify/${provider}`, returnUrl: `${base}/?topup=${id}`, nowMs: now });
    } catch (err) {
      await store.transition(id, 'created', { state: 'expired', conflict: `not created at ${provider}: ${(err as Error).message}`.slice(0, 300) });
      if (err instanceof ProviderRejectedError) throw new TopupError('provider', `${provider} refused the order: ${err.message}`);
      throw err;
    }
    await store.setFields(id, { ...(created.qrCode ? { qr_code: created.qrCode } : {}), ...(created.payUrl ? { pay_url: created.payUrl } : {}), ...(created.providerOrderId ? { provider_order: created.providerOrderId } : {}) });
    this.log.info({ order: id, account: account.id, provider, fen: input.fen }, 'top-up order created');
    return (await store.get(id))!;
  }

  async getOrder(id: string): Promise<TopupOrder | undefined> {
    return this.store().get(id);
  }

  async listOrders(limit = 200): Promise<TopupOrder[]> {
    return this.store().list(limit);
  }

  // --- notifications --------------------------------------------------------------------

  /**
   * A provider's notification: verified over the raw bytes, applied, and answered success
   * only once what it says is durable (a credit in the ledger, or a conflict event).
   */
  async handleNotification(provider: string, raw: RawNotification): Promise<{ reply: { status: number; type: string; body: string }; outcome: string }> {
    const adapter = this.o.providers.get(provider as TopupProviderName);
    if (!adapter) return { reply: { status: 404, type: 'application/json', body: JSON.stringify({ error: 'not_found', message: `no top-up provider ${provider} on this site` }) }, outcome: 'unknown_provider' };
    let v;
    try {
      v = adapter.verifyNotification(raw, this.now());
    } catch (err) {
      if (!(err instanceof SignatureError)) throw err;
      // Never the body: it is unverified input.
      this.log.warn({ provider, why: err.message }, 'top-up notification refused: signature');
      return { reply: adapter.notificationReply(false, 'signature'), outcome: 'bad_signature' };
    }
    this.o.onStage?.('verified');
    try {
      let outcome: string;
      if (v.kind === 'payment') outcome = await this.applyPayment(v.provider, v, 'notification');
      else if (v.kind === 'refund') outcome = await this.applyRefundNotice(v.provider, v.refundNo, v.refundId, v.time, v.merchantOk);
      else outcome = `ignored: ${v.reason}`;
      return { reply: adapter.notificationReply(true), outcome };
    } catch (err) {
      this.log.error({ provider, err: (err as Error).message }, 'top-up notification not applied; the provider will retry');
      return { reply: adapter.notificationReply(false, 'failed'), outcome: 'error' };
    }
  }

  /**
   * A verified payment (notification, query answer): judged by core against the order, the
   * order's state flipped once by compare-and-set, then credited through recordPayment.
   * Retries and races end in 'already', which re-writes the same ledger line (a no-op), so
   * a crash anywhere between the flip and the reply is repaired by the provider's retry.
   */
  async applyPayment(provider: TopupProviderName, facts: PaymentFacts, by: 'notification' | 'query' | 'reconciliation'): Promise<PaymentOutcome> {
    const store = this.store();
    const reference = paymentReference(provider, facts.transaction);
    for (let attempt = 0; attempt < 5; attempt++) {
      const order = await store.get(facts.orderId);
      const verdict = judgePayment(order, { ...facts, provider });
      if (verdict.action === 'conflict') {
        if (order && (order.state === 'created' || order.state === 'expired') && !(await store.transition(order.id, order.state, { state: 'conflict', conflict: verdict.reason.slice(0, 500), updated: String(this.now()) }))) continue;
        await this.event('topup_conflict', reference, facts.paidAt, `${verdict.code}: ${verdict.reason}; nothing credited`, facts.fen);
        this.log.warn({ provider, order: facts.orderId, code: verdict.code }, 'top-up conflict: nothing credited');
        return 'conflict';
      }
      if (verdict.action === 'already') {
        // The first flip stored the provider's time: every retry credits the same content.
        const ok = await this.credit(order!, facts.transaction, order!.paidAt ?? facts.paidAt);
        this.o.onStage?.('credited');
        return ok ? 'already' : 'conflict';
      }
      const flipped = await store.transition(order!.id, order!.state, { state: 'paid', transaction: facts.transaction, paid_at: String(facts.paidAt), late: verdict.late ? '1' : '0', credited_by: by, updated: String(this.now()) });
      if (!flipped) continue; // another delivery got there first: judge again
      this.o.onStage?.('flipped');
      const ok = await this.credit(order!, facts.transaction, facts.paidAt);
      if (ok && verdict.late) await this.event('topup_late', reference, facts.paidAt, `order ${order!.id} of ${order!.account} paid at ${new Date(facts.paidAt).toISOString()}, after it expired at ${new Date(order!.expiresAt).toISOString()}; credited`, facts.fen);
      this.o.onStage?.('credited');
      this.log.info({ provider, order: order!.id, account: order!.account, fen: facts.fen, late: verdict.late, by }, 'top-up credited');
      return !ok ? 'conflict' : verdict.late ? 'credited_late' : 'credited';
    }
    throw new Error(`order ${facts.orderId} kept changing while a payment was applied`);
  }

  /** recordPayment with the provider's transaction as reference; false when the ledger refused it (a conflict event says why). */
  private async credit(order: TopupOrder, transaction: string, time: number): Promise<boolean> {
    const reference = paymentReference(order.provider, transaction);
    try {
      await recordPayment({ site: this.site, influx: this.o.influx, redis: this.o.redis, keyPrefix: this.prefix, now: this.now }, { account: order.account, fen: order.fen, reference, time });
      return true;
    } catch (err) {
      if (!(err instanceof PaymentRejectedError)) throw err;
      await this.event('topup_conflict', reference, time, `ledger refused the credit of order ${order.id}: ${err.message}`, order.fen);
      return false;
    }
  }

  // --- refunds --------------------------------------------------------------------------

  /** A manager's refund (full or part): its own negative ledger line once the provider confirms it. */
  async refund(orderId: string, fen: number, reason: string, baseUrl: string): Promise<RefundRecord> {
    const store = this.store();
    const order = await store.get(orderId);
    if (!order) throw new TopupError('not_found', `no order ${orderId}`);
    const problem = refundable({ ...order, refundedFen: order.refundedFen + order.pendingRefundFen }, fen);
    if (problem) throw new TopupError('conflict', problem);
    const adapter = this.o.providers.get(order.provider);
    if (!adapter) throw new TopupError('provider', `provider ${order.provider} is not configured`);
    const now = this.now();
    const rec: RefundRecord = { refundNo: newRefundNo(now), order: order.id, fen, state: 'pending', created: now, reason };
    const why = await store.reserveRefund(rec);
    if (why) throw new TopupError('conflict', `order ${order.id} cannot be refunded ${moneyText(fen)}: ${why}`);
    const base = (this.site.topup?.publicUrl ?? baseUrl).replace(/\/+$/, '');
    let result;
    try {
      result = await adapter.refund({ orderId: order.id, providerOrderId: order.providerOrderId, transaction: order.transaction!, refundNo: rec.refundNo, fen, totalFen: order.fen, currency: order.currency, reason, notifyUrl: `${base}/api/v1/topup/notify/${order.provider}` });
    } catch (err) {
      if (err instanceof ProviderRejectedError) {
        await store.finishRefund({ ...rec, state: 'failed', detail: err.message.slice(0, 300) });
        throw new TopupError('provider', `${order.provider} refused the refund: ${err.message}`);
      }
      // Unreachable: the refund may or may not have happened; it stays pending (reserved), and
      // the provider's notification or statement settles it.
      throw err;
    }
    if (result.status === 'failed') {
      const failed: RefundRecord = { ...rec, state: 'failed', refundId: result.refundId, detail: result.detail };
      await store.finishRefund(failed);
      return failed;
    }
    if (result.status === 'pending') return { ...rec, refundId: result.refundId };
    return this.completeRefund(rec, result.refundId, result.time || now);
  }

  private async applyRefundNotice(provider: TopupProviderName, refundNo: string, refundId: string, time: number, merchantOk: boolean): Promise<string> {
    const rec = await this.store().refund(refundNo);
    if (!rec || !merchantOk) {
      await this.event('topup_conflict', refundReference(provider, refundNo), time, `refund notice for ${rec ? 'another merchant' : 'unknown refund'} ${refundNo}; nothing recorded`, 0);
      return 'conflict';
    }
    if (rec.state !== 'pending') return 'already';
    await this.completeRefund(rec, refundId, time);
    return 'refunded';
  }

  /** Ledger first (durable, idempotent by reference), then the order's refund totals, once. */
  private async completeRefund(rec: RefundRecord, refundId: string, time: number): Promise<RefundRecord> {
    const store = this.store();
    const order = (await store.get(rec.order))!;
    await recordPayment({ site: this.site, influx: this.o.influx, redis: this.o.redis, keyPrefix: this.prefix, now: this.now }, { account: order.account, fen: -rec.fen, reference: refundReference(order.provider, rec.refundNo), time });
    const done: RefundRecord = { ...rec, state: 'succeeded', refundId, time };
    await store.finishRefund(done);
    this.log.info({ order: order.id, refund: rec.refundNo, fen: rec.fen }, 'top-up refunded');
    return done;
  }

  // --- the pending-order poll -----------------------------------------------------------

  /**
   * Orders still unpaid `query_after` after creation are asked of their provider: a payment
   * whose notification was lost is credited; an order past its expiry is closed at the
   * provider and marked expired (a payment that still arrives is credited and flagged).
   */
  async pollPending(): Promise<{ queried: number; paid: number; expired: number }> {
    const cfg = this.site.topup;
    const out = { queried: 0, paid: 0, expired: 0 };
    if (!cfg) return out;
    const store = this.store();
    const now = this.now();
    for (const id of await store.openBefore(now - cfg.queryAfterMs)) {
      const order = await store.get(id);
      if (!order || order.state !== 'created') {
        await store.dropOpen(id);
        continue;
      }
      const adapter = this.o.providers.get(order.provider);
      if (!adapter) continue;
      try {
        out.queried++;
        const st = await adapter.queryOrder({ orderId: order.id, providerOrderId: order.providerOrderId });
        if (st.status === 'paid') {
          const { status: _s, ...facts } = st;
          if ((await this.applyPayment(order.provider, facts, 'query')).startsWith('credited')) out.paid++;
          continue;
        }
        if (now < order.expiresAt) continue;
        if (st.status === 'pending') await adapter.closeOrder({ orderId: order.id, providerOrderId: order.providerOrderId });
        if (await store.transition(order.id, 'created', { state: 'expired', updated: String(now) })) out.expired++;
      } catch (err) {
        this.log.warn({ order: id, provider: order.provider, err: (err as Error).message }, 'pending top-up query failed; next poll retries');
      }
    }
    return out;
  }

  // --- daily reconciliation -------------------------------------------------------------

  /** The day before `now` in a provider's statement zone. */
  yesterday(provider: TopupProviderName): string {
    return addDays(zoneOf(statementZone(provider, this.site)).dateOf(this.now()), -1);
  }

  /**
   * Reconciles one provider's statement of one day (downloaded, or `file` in its format)
   * against the ledger: the missing successful payments are credited with a reason, every
   * other difference is an alarm event and a line of the stored report.
   */
  async reconcile(provider: TopupProviderName, date: string, file?: Buffer): Promise<ReconcileReport> {
    const site = this.site;
    const adapter = this.o.providers.get(provider);
    if (!adapter) throw new TopupError('bad_provider', `provider ${provider} is not configured on this site`);
    const tz = statementZone(provider, site);
    const zone = zoneOf(tz);
    const fromMs = zone.midnight(date);
    const toMs = zone.midnight(addDays(date, 1));
    const rows = file ? adapter.parseStatement(file) : await adapter.statement({ date, fromMs, toMs, timezone: tz });
    const ledger = (await loadPayments(this.o.influx, site.id, fromMs - 86_400_000, toMs + 86_400_000)).filter((p) => p.reference.startsWith(`${provider}:`));
    const store = this.store(site);
    const orders = await store.many(rows.map((r) => r.orderId));
    const result = reconcileStatement({ provider, date, fromMs, toMs, rows, ledger, orders });
    const credited = new Set<string>();
    for (const c of result.credits) {
      const order = orders.get(c.order)!;
      if (order.state === 'created' || order.state === 'expired') await store.transition(order.id, order.state, { state: 'paid', transaction: c.transaction, paid_at: String(c.time), late: c.time > order.expiresAt ? '1' : '0', credited_by: 'reconciliation', updated: String(this.now()) });
      const r = await recordPayment({ site, influx: this.o.influx, redis: this.o.redis, keyPrefix: this.prefix, now: this.now }, { account: c.account, fen: c.fen, reference: c.reference, time: c.time }).catch((err: unknown) => {
        if (err instanceof PaymentRejectedError) return undefined;
        throw err;
      });
      if (r?.status === 'recorded') {
        credited.add(c.reference);
        await this.event('topup_reconciled', c.reference, c.time, c.reason, c.fen);
      }
    }
    const items: ReconcileReportItem[] = [];
    for (const i of result.items) {
      // A credit that the ledger already had (outside the loaded window) was no mismatch.
      if (i.action === 'credit' && !credited.has(i.reference)) continue;
      if (i.action === 'alarm') await this.event('topup_mismatch', i.reference, i.time, `${i.type}: ${i.reason}`, (i.providerFen ?? i.ledgerFen ?? 0));
      items.push({
        type: i.type,
        action: i.action === 'credit' ? 'credited' : 'alarm',
        reference: i.reference,
        order: i.order,
        account: i.account,
        provider_amount: i.providerFen === null ? null : moneyText(i.providerFen),
        ledger_amount: i.ledgerFen === null ? null : moneyText(i.ledgerFen),
        time: zoneOf(site.timezone).format(i.time),
        reason: i.reason,
      });
    }
    const report: ReconcileReport = {
      site: site.id,
      provider,
      date,
      generated_at: new Date(this.now()).toISOString(),
      statement_rows: result.statementRows,
      matched: result.matched + (result.credits.length - credited.size),
      credited: credited.size,
      alarms: items.filter((i) => i.action === 'alarm').length,
      items,
    };
    await store.saveReport(date, provider, report);
    if (report.alarms) this.log.warn({ provider, date, alarms: report.alarms }, 'top-up reconciliation found differences');
    return report;
  }

  /** The providers this service can reach, in the site file's order. */
  providers(): TopupProviderName[] {
    return (this.site.topup?.providers ?? []).filter((p) => this.o.providers.has(p));
  }

  async reports(): Promise<ReconcileReport[]> {
    return (await this.store().reports()) as ReconcileReport[];
  }

  /** A manager-only event (no account tag: a tenant's alert list never shows it), keyed by reference so a replay overwrites. */
  private async event(kind: string, reference: string, time: number, detail: string, fen: number): Promise<void> {
    await this.o.influx.write(eventLine(this.site.id, { kind, reference, detail, value: fen / 100, time }));
  }
}
