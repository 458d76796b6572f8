import express from 'express';
import type { Express, Request, Response } from 'express';
import type { HandlerCtx } from './handler.ts';
import type { RedisClient } from '../lib/redis.ts';
import QRCode from 'qrcode';
import type { Site, TopupProviderName } from '../core/index.ts';
import { moneyText } from '../core/index.ts';
import type { InfluxV1 } from '../influx/client.ts';
import type { Logger } from '../lib/logger.ts';
import { ProviderUnavailableError } from '../lib/topup/index.ts';
import type { TopupProviders } from '../lib/topup/index.ts';
import { TopupError, TopupService } from '../workers/index.ts';
import type { ReconcileReport, RefundRecord, TopupOrder, TopupServiceOptions } from '../workers/index.ts';
import type { Role, TokenRecord } from './auth/token-store.ts';
import { badRequest, conflict, HttpError, notFound } from './errors.ts';
import { parseMoneyFen } from './format.ts';
import { formatLocal } from './local-time.ts';

/**
 * Online top-up routes (issue 14, docs/topup.md): the tenant's order and its status, the
 * managers' list, refunds and reconciliation reports (bearer tokens, through the
 * OpenAPI-driven router in app.ts), and the providers' notification endpoints, which carry
 * no token but the provider's signature over the raw body, so they are mounted before the
 * token check and the JSON parser.
 */

type Ctx = HandlerCtx;

export interface TopupRouteDeps {
  readonly site: () => Site;
  readonly influx: InfluxV1;
  readonly redis: RedisClient;
  readonly workersKeyPrefix?: string;
  /** Adapters of the site's providers; without them every top-up route answers 409 "not enabled". */
  readonly providers?: TopupProviders;
  readonly now: () => number;
  readonly log: Logger;
  readonly onStage?: TopupServiceOptions['onStage'];
  readonly audit: (ctx: Ctx, action: string, target: string | undefined, detail: Record<string, unknown>) => Promise<void>;
  /** Balances changed: drop the API's read cache. */
  readonly changed: () => void;
}

export function topupRoutes(d: TopupRouteDeps) {
  const service = new TopupService({ site: d.site, influx: d.influx, redis: d.redis, keyPrefix: d.workersKeyPrefix, providers: d.providers ?? new Map(), now: d.now, log: d.log, onStage: d.onStage });
  const baseUrl = (req: Request) => `${req.protocol}://${req.get('host') ?? '127.0.0.1'}`;

  const run = async <T>(f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch (err) {
      if (err instanceof TopupError) throw err.code === 'not_found' ? notFound(err.message) : new HttpError(409, err.code === 'conflict' ? 'conflict' : `topup_${err.code}`, err.message);
      if (err instanceof ProviderUnavailableError) {
        d.log.warn({ err: err.message }, 'payment provider unavailable');
        throw new HttpError(503, 'unavailable', 'the payment provider is unavailable; try again shortly');
      }
      throw err;
    }
  };

  const handlers = {
    async getTopupOptions({ site }: Ctx) {
      const t = site.topup;
      const providers = (t?.providers ?? []).filter((p) => d.providers?.has(p));
      if (!t || !providers.length) return { enabled: false, currency: site.currency, providers: [], presets: [], min: null, max: null, expiry_minutes: null };
      return { enabled: true, currency: site.currency, providers, presets: t.presetsFen.map(moneyText), min: moneyText(t.minFen), max: moneyText(t.maxFen), expiry_minutes: Math.round(t.expiryMs / 60_000) };
    },

    async createTopup(ctx: Ctx) {
      const account = ctx.params.account;
      if (!ctx.site.accounts.some((a) => a.id === account)) throw notFound(`no account ${account}`);
      const fen = parseMoneyFen(String(ctx.body.amount));
      if (fen === undefined || fen <= 0) throw badRequest('amount must be a positive decimal with at most 2 places', `${ctx.req.path}#amount`);
      const order = await run(() => service.createOrder({ account, fen, provider: String(ctx.body.provider), baseUrl: baseUrl(ctx.req) }));
      ctx.res.status(201);
      return orderOut(order, ctx.site, ctx.auth.role);
    },

    async getTopup(ctx: Ctx) {
      const order = await service.getOrder(ctx.params.order);
      // Another account's order answers exactly like a missing one.
      if (!order || order.account !== ctx.params.account) throw notFound(`no order ${ctx.params.order}`);
      return orderOut(order, ctx.site, ctx.auth.role);
    },

    async listTopups(ctx: Ctx) {
      const orders = await service.listOrders(Number(ctx.query.limit ?? 200));
      return { orders: await Promise.all(orders.map((o) => orderOut(o, ctx.site, ctx.auth.role))) };
    },

    async refundTopup(ctx: Ctx) {
      const fen = parseMoneyFen(String(ctx.body.amount));
      if (fen === undefined || fen <= 0) throw badRequest('amount must be a positive decimal with at most 2 places', `${ctx.req.path}#amount`);
      const reason = String(ctx.body.reason);
      const r = await run(() => service.refund(ctx.params.order, fen, reason, baseUrl(ctx.req)));
      await d.audit(ctx, 'topup.refund', ctx.params.order, { refund: r.refundNo, amount: moneyText(fen), state: r.state, reason });
      d.changed();
      ctx.res.status(201);
      return refundOut(r, ctx.site);
    },

    async getTopupReconciliation(ctx: Ctx) {
      const reports = await service.reports();
      if (ctx.query.format === 'csv') {
        ctx.res.type('text/csv; charset=utf-8').setHeader('Content-Disposition', `attachment; filename="topup-reconciliation-${ctx.site.id}.csv"`);
        return reconciliationCsv(reports);
      }
      return { reports };
    },

    async runTopupReconciliation(ctx: Ctx) {
      const provider = String(ctx.body.provider) as TopupProviderName;
      const date = String(ctx.body.date);
      if (!ctx.site.topup || !d.providers?.has(provider)) throw conflict(`provider ${provider} is not enabled on this site`);
      const report = await run(() => service.reconcile(provider, date));
      await d.audit(ctx, 'topup.reconcile', `${provider}:${date}`, { credited: report.credited, alarms: report.alarms });
      d.changed();
      return report;
    },
  };

  /** POST /api/v1/topup/notify/:provider, before the bearer-token check: raw bytes in, the provider's answer out. */
  const mountNotify = (app: Express) => {
    app.post('/api/v1/topup/notify/:provider', express.raw({ type: () => true, limit: '64kb' }), async (req: Request, res: Response) => {
      res.setHeader('Cache-Control', 'no-store');
      try {
        const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
        const { reply, outcome } = await service.handleNotification(String(req.params.provider), { headers: req.headers, body });
        d.log.info({ provider: req.params.provider, outcome, status: reply.status }, 'top-up notification');
        if (outcome.startsWith('credited') || outcome === 'refunded') d.changed();
        res.status(reply.status).type(reply.type).send(reply.body);
      } catch (err) {
        d.log.error({ provider: req.params.provider, err: (err as Error).message }, 'top-up notification failed');
        res.status(500).type('application/json').send(JSON.stringify({ code: 'FAIL', message: 'try again' }));
      }
    });
  };

  return { handlers, mountNotify, service };
}

/** The QR code a phone scans, as an SVG data URL (the same library as the login-link QR codes). */
async function qrImage(text: string): Promise<string> {
  const svg = await QRCode.toString(text, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
  return `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`;
}

/** An order as the API shows it; a tenant never sees a conflict's reason, the transaction or how it was credited. */
export async function orderOut(o: TopupOrder, site: Site, role: Role) {
  const tz = site.timezone;
  const manager = role !== 'tenant';
  return {
    order: o.id,
    account: o.account,
    provider: o.provider,
    amount: moneyText(o.fen),
    currency: o.currency,
    state: !manager && o.state === 'conflict' ? 'review' : o.state,
    created: formatLocal(o.created, tz),
    expires_at: formatLocal(o.expiresAt, tz),
    paid_at: o.paidAt !== undefined ? formatLocal(o.paidAt, tz) : null,
    late: o.late,
    refunded: moneyText(o.refundedFen),
    qr_code: o.state === 'created' ? (o.qrCode ?? null) : null,
    qr_image: o.state === 'created' && o.qrCode ? await qrImage(o.qrCode) : null,
    pay_url: o.state === 'created' ? (o.payUrl ?? null) : null,
    ...(manager && o.transaction ? { transaction: o.transaction } : {}),
    ...(manager && o.creditedBy ? { credited_by: o.creditedBy } : {}),
    ...(manager && o.conflict ? { conflict: o.conflict } : {}),
  };
}

function refundOut(r: RefundRecord, site: Site) {
  return {
    refund: r.refundNo,
    order: r.order,
    amount: moneyText(r.fen),
    state: r.state,
    created: formatLocal(r.created, site.timezone),
    reason: r.reason,
    ...(r.refundId ? { provider_refund_id: r.refundId } : {}),
    ...(r.time ? { time: formatLocal(r.time, site.timezone) } : {}),
    ...(r.detail ? { detail: r.detail } : {}),
  };
}

function csvField(v: unknown): string {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function reconciliationCsv(reports: readonly ReconcileReport[]): string {
  const head = ['date', 'provider', 'type', 'action', 'reference', 'order', 'account', 'provider_amount', 'ledger_amount', 'time', 'reason'];
  const lines = [head.join(',')];
  for (const r of reports) for (const i of r.items) lines.push([r.date, r.provider, i.type, i.action, i.reference, i.order, i.account, i.provider_amount, i.ledger_amount, i.time, i.reason].map(csvField).join(','));
  return `${lines.join('\n')}\n`;
}
