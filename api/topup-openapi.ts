import type { Role } from './auth/token-store.ts';

/**
 * The OpenAPI part of online top-up (issue 14, docs/topup.md), in one place so that
 * openapi.ts only spreads it in. Built from openapi.ts's own helpers (passed in), so the
 * document keeps one style.
 */

type Schema = object;
interface SchemaHelpers {
  obj: (properties: Record<string, Schema>, required?: string[], extra?: object) => Schema;
  str: (extra?: object) => Schema;
  s: (type: string, extra?: object) => Schema;
  arr: (items: Schema) => Schema;
  nullable: (schema: Schema) => Schema;
  ref: (name: string) => Schema;
  MONEY: Schema;
  TIME: Schema;
  DATE: Schema;
}

const PROVIDER = ['wechat', 'alipay', 'stripe'];

export function topupSchemas(h: SchemaHelpers) {
  const { obj, str, s, arr, nullable, ref, MONEY, TIME, DATE } = h;
  return {
    TopupOptions: obj({
      enabled: s('boolean'),
      currency: str(),
      providers: arr(str({ enum: PROVIDER })),
      presets: arr(MONEY),
      min: nullable(MONEY),
      max: nullable(MONEY),
      expiry_minutes: nullable(s('integer')),
    }),
    TopupRequest: obj(
      {
        amount: str({ pattern: '^(0|[1-9]\\d{0,9})(\\.\\d{1,2})?$', description: 'money in the site currency, positive, at most 2 decimals, within the site limits' }),
        provider: str({ enum: PROVIDER }),
      },
      ['amount', 'provider'],
    ),
    TopupOrder: obj(
      {
        order: str(),
        account: str(),
        provider: str({ enum: PROVIDER }),
        amount: MONEY,
        currency: str(),
        state: str({ enum: ['created', 'paid', 'expired', 'refunded', 'conflict', 'review'], description: "a tenant sees 'review' where a manager sees 'conflict' (and never its reason)" }),
        created: TIME,
        expires_at: TIME,
        paid_at: nullable(TIME),
        late: s('boolean'),
        refunded: MONEY,
        qr_code: nullable(str({ description: 'content to show as a QR code (WeChat Pay, Alipay)' })),
        qr_image: nullable(str({ description: 'the same QR code as an SVG data URL' })),
        pay_url: nullable(str({ description: 'a link to the payment page (Stripe)' })),
        transaction: str({ description: 'managers only' }),
        credited_by: str({ enum: ['notification', 'query', 'reconciliation'], description: 'managers only' }),
        conflict: str({ description: 'managers only' }),
      },
      ['order', 'account', 'provider', 'amount', 'currency', 'state', 'created', 'expires_at', 'paid_at', 'late', 'refunded', 'qr_code', 'qr_image', 'pay_url'],
    ),
    TopupOrderList: obj({ orders: arr(ref('TopupOrder')) }),
    TopupRefundRequest: obj({ amount: str({ pattern: '^(0|[1-9]\\d{0,9})(\\.\\d{1,2})?$' }), reason: str({ minLength: 1, maxLength: 200 }) }, ['amount', 'reason']),
    TopupRefund: obj(
      { refund: str(), order: str(), amount: MONEY, state: str({ enum: ['pending', 'succeeded', 'failed'] }), created: TIME, reason: str(), provider_refund_id: str(), time: TIME, detail: str() },
      ['refund', 'order', 'amount', 'state', 'created', 'reason'],
    ),
    TopupReconcileRequest: obj({ provider: str({ enum: PROVIDER }), date: DATE }, ['provider', 'date']),
    TopupReconciliation: obj({
      site: str(),
      provider: str({ enum: PROVIDER }),
      date: DATE,
      generated_at: str({ format: 'date-time' }),
      statement_rows: s('integer'),
      matched: s('integer'),
      credited: s('integer'),
      alarms: s('integer'),
      items: arr(
        obj({
          type: str({ enum: ['missing_in_ledger', 'missing_at_provider', 'amount_mismatch', 'unknown_order', 'refund_missing_in_ledger'] }),
          action: str({ enum: ['credited', 'alarm'] }),
          reference: str(),
          order: str(),
          account: str(),
          provider_amount: nullable(MONEY),
          ledger_amount: nullable(MONEY),
          time: TIME,
          reason: str(),
        }),
      ),
    }),
    TopupReconciliationList: obj({ reports: arr(ref('TopupReconciliation')) }),
  };
}

interface OpHelpers {
  json: (schema: string, description?: string) => object;
  errorResponse: (description: string) => object;
  pathParam: (name: string, schema: object, description: string) => object;
  query: (name: string, schema: object, required?: boolean, description?: string) => object;
  ACCOUNT: object;
  ALL: Role[];
  SITE_READERS: Role[];
  MANAGER: Role[];
}

const ORDER_ID = { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' };

export function topupOps(h: OpHelpers) {
  const { json, errorResponse, pathParam, query, ACCOUNT, ALL, SITE_READERS, MANAGER } = h;
  const TENANT: Role[] = ['tenant'];
  return {
    '/api/v1/topup/options': {
      get: { operationId: 'getTopupOptions', summary: 'online top-up: providers, preset amounts and limits of this site', roles: ALL, responses: { '200': json('TopupOptions') } },
    },
    '/api/v1/accounts/{account}/topups': {
      post: {
        operationId: 'createTopup',
        summary: 'a tenant orders a top-up: the answer carries the QR code (WeChat Pay, Alipay) or the pay link (Stripe)',
        roles: TENANT,
        parameters: [ACCOUNT],
        requestBody: 'TopupRequest',
        responses: { '201': json('TopupOrder', 'created'), '404': errorResponse('no such account (or not yours)'), '409': errorResponse('top-up is not enabled, the amount is outside the limits, or the provider refused'), '503': errorResponse('the provider or a data store is unavailable') },
      },
    },
    '/api/v1/accounts/{account}/topups/{order}': {
      get: { operationId: 'getTopup', summary: 'one top-up order (the page polls it until paid)', roles: ALL, parameters: [ACCOUNT, pathParam('order', ORDER_ID, 'order id')], responses: { '200': json('TopupOrder'), '404': errorResponse('no such order on this account') } },
    },
    '/api/v1/topups': {
      get: { operationId: 'listTopups', summary: 'top-up orders, newest first, with conflicts and late payments', roles: SITE_READERS, parameters: [query('limit', { type: 'string', pattern: '^[1-9]\\d{0,3}$' })], responses: { '200': json('TopupOrderList') } },
    },
    '/api/v1/topups/{order}/refunds': {
      post: {
        operationId: 'refundTopup',
        summary: 'refund a paid top-up in full or in part: its own negative ledger line once the provider confirms',
        roles: MANAGER,
        parameters: [pathParam('order', ORDER_ID, 'order id')],
        requestBody: 'TopupRefundRequest',
        responses: { '201': json('TopupRefund', 'refunded, or pending at the provider, or failed (state says which)'), '404': errorResponse('no such order'), '409': errorResponse('the order is not paid or has less left to refund') },
      },
    },
    '/api/v1/topups/reconciliation': {
      get: {
        operationId: 'getTopupReconciliation',
        summary: "the daily statement reconciliations, newest first (JSON, or CSV: one line per difference)",
        roles: SITE_READERS,
        parameters: [query('format', { type: 'string', enum: ['json', 'csv'], default: 'json' })],
        responses: { '200': { description: 'the reports', content: { 'application/json': { schema: { $ref: '#/components/schemas/TopupReconciliationList' } }, 'text/csv': { schema: { type: 'string' } } } } },
      },
      post: {
        operationId: 'runTopupReconciliation',
        summary: "reconcile one provider's statement of one day now (the workers do it daily)",
        roles: MANAGER,
        requestBody: 'TopupReconcileRequest',
        responses: { '200': json('TopupReconciliation'), '409': errorResponse('top-up is not enabled or the provider is not configured'), '503': errorResponse('the provider or a data store is unavailable') },
      },
    },
  };
}

/** The providers' notification endpoints: no bearer token, the provider's signature instead. Documented, not routed through the bearer-token router. */
export function topupNotifyPaths() {
  return {
    '/api/v1/topup/notify/{provider}': {
      post: {
        operationId: 'topupNotify',
        summary: "payment providers' notifications (WeChat Pay API v3, Alipay, Stripe webhooks); verified by the provider's signature over the raw body, answered in the provider's own format only once the credit is durable",
        security: [],
        'x-roles': [],
        parameters: [{ name: 'provider', in: 'path', required: true, schema: { type: 'string', enum: PROVIDER } }],
        requestBody: { required: true, content: { 'application/json': { schema: { type: 'object' } }, 'application/x-www-form-urlencoded': { schema: { type: 'object' } } } },
        responses: {
          '200': { description: 'accepted (Alipay: the text success; Stripe: JSON)' },
          '204': { description: 'accepted (WeChat Pay)' },
          '401': { description: 'the signature does not verify; nothing happened' },
          '404': { description: 'no such provider on this site' },
          '500': { description: 'not applied yet (a store is down); the provider retries' },
        },
      },
    },
  };
}

/** Operations exercised by api/topup.test.ts (a site with top-up), not by api.test.ts's fixture (a site without). */
export const TOPUP_OPERATIONS = ['getTopupOptions', 'createTopup', 'getTopup', 'listTopups', 'refundTopup', 'getTopupReconciliation', 'runTopupReconciliation'] as const;
