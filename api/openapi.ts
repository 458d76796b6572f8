import type { Role } from './auth/token-store.ts';
import { topupNotifyPaths, topupOps, topupSchemas } from './topup-openapi.ts';

/**
 * The OpenAPI 3.1 document: the one description of the API. The app registers its routes
 * from it (method, path, roles in `x-roles`) and validates every request against it; the
 * tests validate every response against it. Schemas are JSON Schema 2020-12.
 */

const s = (type: string, extra: object = {}) => ({ type, ...extra });
const str = (extra: object = {}) => s('string', extra);
const nullable = (schema: object) => ({ oneOf: [schema, { type: 'null' }] });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const obj = (properties: Record<string, object>, required = Object.keys(properties), extra: object = {}) => ({
  type: 'object',
  properties,
  required,
  additionalProperties: false,
  ...extra,
});
const arr = (items: object) => ({ type: 'array', items });

const KWH = str({ pattern: '^-?\\d+\\.\\d{3}$', description: 'kWh, 3 decimals' });
const MONEY = str({ pattern: '^-?\\d+\\.\\d{2}$', description: 'CNY, 2 decimals' });
const PRICE = str({ pattern: '^\\d+\\.\\d{6}$', description: 'CNY/kWh, 6 decimals' });
const PERIOD = str({ enum: ['sharp', 'peak', 'flat', 'valley', 'deep_valley'] });
const TIME = str({ format: 'date-time', description: 'RFC 3339 at the site offset' });
const DATE = str({ pattern: '^\\d{4}-\\d{2}-\\d{2}$', format: 'date' });
const MONTH = str({ pattern: '^\\d{4}-(0[1-9]|1[0-2])$' });
const ID = str({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$' });

const schemas = {
  ...topupSchemas({ obj, str, s, arr, nullable, ref, MONEY, TIME, DATE }),
  Error: obj(
    {
      error: str({ description: 'machine code, e.g. not_found' }),
      message: str(),
      path: str({ description: 'request path, or the offending parameter' }),
      issues: arr(obj({ path: str(), message: str(), line: s('integer') }, ['path', 'message'])),
    },
    ['error', 'message', 'path'],
  ),
  Me: obj({
    site: str(),
    site_name: str(),
    currency: str(),
    timezone: str(),
    role: str({ enum: ['manager', 'tenant', 'viewer'] }),
    account: nullable(str()),
    account_name: nullable(str()),
    token_id: str(),
  }),
  Live: obj({
    account: str(),
    time: TIME,
    period: nullable(PERIOD),
    price: nullable(PRICE),
    power_kw: nullable(str({ pattern: '^-?\\d+\\.\\d{3}$' })),
    cost_per_hour: nullable(MONEY),
    balance: MONEY,
    balance_source: str({ enum: ['live', 'settled'], description: "live: the workers' balance series; settled: opening + payments - settled charges" }),
    hours_left: nullable(str({ pattern: '^\\d+\\.\\d$' })),
    low_balance: nullable(MONEY),
    status: str({ enum: ['ok', 'low', 'negative'] }),
    today: arr(obj({ period: PERIOD, kwh: KWH })),
    today_kwh: KWH,
  }),
  Usage: obj({
    account: str(),
    from: DATE,
    to: DATE,
    interval: str({ enum: ['15m', '1h', '1d'] }),
    points: arr(obj({ time: TIME, period: PERIOD, kwh: KWH })),
  }),
  BillList: obj({
    account: str(),
    bills: arr(obj({ month: MONTH, from: DATE, to: DATE, status: str({ enum: ['open', 'closed'] }), closed_at: nullable(str({ format: 'date-time' })), kwh: KWH, total_amount: MONEY })),
  }),
  Line: obj({ kind: str({ enum: ['own', 'common', 'loss'] }), pool: str(), period: PERIOD, kwh: KWH, price: PRICE, amount: MONEY }, ['kind', 'period', 'kwh', 'price', 'amount']),
  Adjustment: obj(
    { date: DATE, kind: str({ enum: ['own', 'common', 'loss'] }), pool: str(), period: PERIOD, kwh: KWH, price: PRICE, amount: MONEY, reason: str() },
    ['date', 'kind', 'period', 'kwh', 'price', 'amount', 'reason'],
  ),
  Statement: obj({
    site: str(),
    account: str(),
    name: str(),
    month: MONTH,
    from: DATE,
    to: DATE,
    currency: str(),
    status: str({ enum: ['open', 'closed'] }),
    closed_at: nullable(str({ format: 'date-time' })),
    lines: arr(ref('Line')),
    kwh: obj({ own: KWH, common: KWH, loss: KWH }),
    total_amount: MONEY,
    opening_balance: MONEY,
    payments: MONEY,
    closing_balance: MONEY,
    adjustments: { ...arr(ref('Adjustment')), description: 'corrections of settled days in this month (already inside lines)' },
    corrections_after_close: {
      ...arr(obj({ kind: str({ enum: ['own', 'common', 'loss'] }), pool: str(), period: PERIOD, price: PRICE, kwh: KWH, amount: MONEY }, ['kind', 'period', 'price', 'kwh', 'amount'])),
      description: 'closed months only: what the data says now minus the frozen statement; charged in the balance, the statement itself never changes',
    },
    explain: ref('Explain'),
  }),
  Explain: obj({
    prices: arr(obj({ period: PERIOD, price: PRICE })),
    pools: arr(obj({ id: str(), name: str(), method: str({ enum: ['area', 'consumption', 'equal'] }), accounts: arr(str()), includes_you: s('boolean') })),
    loss: obj({ normal_rate: str(), method: str({ enum: ['area', 'consumption', 'equal'] }) }),
    area_m2: str(),
  }),
  Payment: obj({ time: TIME, account: str(), amount: MONEY, reference: str() }),
  PaymentList: obj({ payments: arr(ref('Payment')) }),
  PaymentRequest: obj(
    {
      amount: str({ pattern: '^(0|[1-9]\\d{0,9})(\\.\\d{1,2})?$', description: 'CNY, positive, at most 2 decimals' }),
      reference: str({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9_.:/-]*$' }),
      time: str({ format: 'date-time', description: 'when the money was received; default now' }),
    },
    ['amount', 'reference'],
  ),
  PaymentResult: obj({ status: str({ enum: ['recorded', 'duplicate'] }), payment: ref('Payment') }),
  Event: obj({ time: TIME, kind: str(), account: str(), meter: str(), detail: str() }),
  EventList: obj({ alerts: arr(ref('Event')) }),
  Advice: obj({
    account: str(),
    from: DATE,
    to: DATE,
    currency: str(),
    days: s('integer'),
    shift_share: str(),
    periods: arr(obj({ period: PERIOD, kwh: KWH, kwh_per_day: KWH, price: PRICE })),
    peak_kwh: KWH,
    shift_kwh: KWH,
    shift_to: PERIOD,
    saving: MONEY,
    night_base_kw: str({ pattern: '^\\d+\\.\\d{3}$' }),
    tips: arr(str()),
  }),
  AccountList: obj({
    accounts: arr(
      obj({
        account: str(),
        name: str(),
        area_m2: str(),
        tariff: str(),
        balance: MONEY,
        balance_source: str({ enum: ['live', 'settled'] }),
        status: str({ enum: ['ok', 'low', 'negative'] }),
        low_balance: nullable(MONEY),
        hours_left: nullable(str()),
      }),
    ),
  }),
  BillStats: obj({
    from: DATE,
    to: DATE,
    accounts: arr(obj({ account: str(), name: str(), kwh: obj({ own: KWH, common: KWH, loss: KWH }), total_amount: MONEY, opening_balance: MONEY, payments: MONEY, closing_balance: MONEY })),
    totals: obj({ kwh: obj({ own: KWH, common: KWH, loss: KWH }), total_amount: MONEY, payments: MONEY }),
  }),
  MasterDay: obj({
    date: DATE,
    kwh: KWH,
    tenant_kwh: KWH,
    common_kwh: KWH,
    loss_kwh: KWH,
    loss_allocated_kwh: KWH,
    loss_abnormal_kwh: KWH,
    loss_rate: str({ pattern: '^-?\\d+\\.\\d{4}$' }),
    abnormal: s('boolean'),
  }),
  Master: obj({ from: DATE, to: DATE, totals: ref('MasterDay'), days: arr(ref('MasterDay')) }),
  Reconciliation: obj({
    site: str(),
    from: DATE,
    to: DATE,
    currency: str(),
    utility: obj({ tariff: str(), lines: arr(obj({ period: PERIOD, kwh: KWH, price: PRICE, amount: MONEY })), kwh: KWH, amount: MONEY, average_price: PRICE, flat_price: PRICE }),
    tenants: obj({ kwh: KWH, amount: MONEY, average_price: PRICE }),
    recovery_rate: str({ pattern: '^\\d+\\.\\d{4}$' }),
    unrecovered: MONEY,
    markup_cap: str(),
    price_cap: PRICE,
    accounts: arr(obj({ account: str(), kwh: KWH, amount: MONEY, average_price: PRICE, over_cap: s('boolean') })),
  }),
  MeterHealth: obj({
    meters: arr(
      obj({
        meter: str(),
        role: str({ enum: ['master', 'tenant', 'common'] }),
        account: nullable(str()),
        ok: nullable(s('boolean')),
        errors: nullable(s('number')),
        consecutive_errors: nullable(s('number')),
        latency_ms: nullable(s('number')),
        last_error: nullable(str()),
        last_reading: nullable(TIME),
      }),
    ),
  }),
  Quality: obj({ from: DATE, to: DATE, flags: arr(ref('Event')) }),
  MonthList: obj({ months: arr(obj({ month: MONTH, closed_at: str({ format: 'date-time' }), by: str() })) }),
  CloseResult: obj({ month: MONTH, closed_at: str({ format: 'date-time' }), accounts: s('integer'), total_amount: MONEY }),
  Token: obj(
    { id: str(), site: str(), role: str({ enum: ['manager', 'tenant', 'viewer'] }), account: str(), label: str(), created: str({ format: 'date-time' }) },
    ['id', 'site', 'role', 'created'],
  ),
  TokenList: obj({ tokens: arr(ref('Token')) }),
  TokenRequest: obj({ role: str({ enum: ['manager', 'tenant', 'viewer'] }), account: ID, label: str({ maxLength: 100 }) }, ['role']),
  TokenCreated: obj({ token: str({ description: 'shown once; only its sha256 is stored' }), record: ref('Token') }),
  SiteSummary: obj({ site: str(), name: str(), meters: s('integer'), accounts: s('integer'), pools: s('integer'), tariffs: s('integer') }),
  AuditList: obj({
    entries: arr(obj({ id: str(), time: str({ format: 'date-time' }), site: str(), actor: str(), action: str(), target: str(), detail: s('object') }, ['id', 'time', 'site', 'actor', 'action'])),
  }),
};

const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: ref('Error') } } });
const json = (schema: string, description = 'OK') => ({ description, content: { 'application/json': { schema: ref(schema) } } });
const pathParam = (name: string, schema: object, description: string) => ({ name, in: 'path', required: true, schema, description });
const query = (name: string, schema: object, required = false, description = '') => ({ name, in: 'query', required, schema, ...(description ? { description } : {}) });

const ACCOUNT = pathParam('account', ID, 'account id; a tenant token sees only its own (any other answers 404)');
const FROM = query('from', DATE, true, 'local date, inclusive');
const TO = query('to', DATE, true, 'local date, exclusive');

const ALL: Role[] = ['manager', 'viewer', 'tenant'];
const SITE_READERS: Role[] = ['manager', 'viewer'];
const MANAGER: Role[] = ['manager'];

interface OpSpec {
  readonly operationId: string;
  readonly summary: string;
  readonly roles: readonly Role[];
  readonly parameters?: readonly object[];
  readonly requestBody?: string;
  readonly responses: Record<string, object>;
}

const AUTH_ERRORS = { '401': errorResponse('missing or invalid token'), '429': errorResponse('too many failed logins from this address') };
const std = (roles: readonly Role[], extra: Record<string, object>) => ({
  ...extra,
  '400': errorResponse('a parameter or the body does not match this document'),
  ...AUTH_ERRORS,
  ...(roles.length < 3 ? { '403': errorResponse('this role may not do that') } : {}),
  '503': errorResponse('InfluxDB or Redis is unavailable; retry after the Retry-After seconds'),
});

const ops: Record<string, Record<string, OpSpec>> = {
  ...topupOps({ json, errorResponse, pathParam, query, ACCOUNT, ALL, SITE_READERS, MANAGER }),
  '/api/v1/me': {
    get: { operationId: 'getMe', summary: 'who this token is', roles: ALL, responses: { '200': json('Me') } },
  },
  '/api/v1/accounts': {
    get: { operationId: 'listAccounts', summary: 'accounts with balances and status', roles: SITE_READERS, responses: { '200': json('AccountList') } },
  },
  '/api/v1/accounts/{account}/live': {
    get: { operationId: 'getLive', summary: 'live status: period, price, power, cost per hour, balance, hours left, today by period', roles: ALL, parameters: [ACCOUNT], responses: { '200': json('Live'), '404': errorResponse('no such account (or not yours)') } },
  },
  '/api/v1/accounts/{account}/usage': {
    get: {
      operationId: 'getUsage',
      summary: 'energy per interval and TOU period',
      roles: ALL,
      parameters: [ACCOUNT, FROM, TO, query('interval', { type: 'string', enum: ['15m', '1h', '1d'], default: '1h' })],
      responses: { '200': json('Usage'), '404': errorResponse('no such account (or not yours)') },
    },
  },
  '/api/v1/accounts/{account}/bills': {
    get: { operationId: 'listBills', summary: 'monthly statements with totals and status', roles: ALL, parameters: [ACCOUNT], responses: { '200': json('BillList'), '404': errorResponse('no such account (or not yours)') } },
  },
  '/api/v1/accounts/{account}/bills/{month}': {
    get: {
      operationId: 'getBill',
      summary: 'one monthly statement as JSON, CSV or printable HTML (zh or en)',
      roles: ALL,
      parameters: [ACCOUNT, pathParam('month', MONTH, 'YYYY-MM'), query('format', { type: 'string', enum: ['json', 'csv', 'html'], default: 'json' }), query('lang', { type: 'string', enum: ['zh', 'en'], default: 'zh' })],
      responses: {
        '200': {
          description: 'the statement',
          content: { 'application/json': { schema: ref('Statement') }, 'text/csv': { schema: { type: 'string' } }, 'text/html': { schema: { type: 'string' } } },
        },
        '404': errorResponse('no such account (or not yours)'),
      },
    },
  },
  '/api/v1/accounts/{account}/payments': {
    get: { operationId: 'listPayments', summary: 'payment history, newest first', roles: ALL, parameters: [ACCOUNT], responses: { '200': json('PaymentList'), '404': errorResponse('no such account (or not yours)') } },
    post: {
      operationId: 'recordPayment',
      summary: 'record a payment; idempotent by reference',
      roles: MANAGER,
      parameters: [ACCOUNT],
      requestBody: 'PaymentRequest',
      responses: {
        '201': json('PaymentResult', 'recorded'),
        '200': json('PaymentResult', 'the same payment was already recorded under this reference'),
        '404': errorResponse('no such account'),
        '409': errorResponse('this reference is already used by a different payment'),
      },
    },
  },
  '/api/v1/accounts/{account}/alerts': {
    get: { operationId: 'listAlerts', summary: 'alerts of this account, newest first', roles: ALL, parameters: [ACCOUNT], responses: { '200': json('EventList'), '404': errorResponse('no such account (or not yours)') } },
  },
  '/api/v1/accounts/{account}/advice': {
    get: {
      operationId: 'getAdvice',
      summary: 'load-shift advice: what moving sharp/peak use to valley would save',
      roles: ALL,
      parameters: [ACCOUNT, FROM, TO],
      responses: { '200': json('Advice'), '404': errorResponse('no such account (or not yours)') },
    },
  },
  '/api/v1/stats/bills': {
    get: { operationId: 'getBillStats', summary: 'bill statistics of every account over a range', roles: SITE_READERS, parameters: [FROM, TO], responses: { '200': json('BillStats') } },
  },
  '/api/v1/master': {
    get: { operationId: 'getMaster', summary: 'master meter vs tenants vs common vs loss, per day', roles: SITE_READERS, parameters: [FROM, TO], responses: { '200': json('Master') } },
  },
  '/api/v1/reconcile': {
    get: {
      operationId: 'getReconcile',
      summary: "recovery: what the utility charges for the master meter vs what tenants are charged, each tenant's average price against the resale cap",
      roles: SITE_READERS,
      parameters: [FROM, TO],
      responses: { '200': json('Reconciliation'), '409': errorResponse('the site file has no utility tariff') },
    },
  },
  '/api/v1/meters/health': {
    get: { operationId: 'getMeterHealth', summary: 'meter health and last reading', roles: SITE_READERS, responses: { '200': json('MeterHealth') } },
  },
  '/api/v1/quality': {
    get: { operationId: 'getQuality', summary: 'data-quality flags over a range', roles: SITE_READERS, parameters: [FROM, TO], responses: { '200': json('Quality') } },
  },
  '/api/v1/months': {
    get: { operationId: 'listMonths', summary: 'closed months', roles: SITE_READERS, responses: { '200': json('MonthList') } },
  },
  '/api/v1/months/{month}/close': {
    post: {
      operationId: 'closeMonth',
      summary: 'close a month: its statements become immutable',
      roles: MANAGER,
      parameters: [pathParam('month', MONTH, 'YYYY-MM')],
      responses: { '200': json('CloseResult'), '409': errorResponse('already closed, the month is not over, or its last day is not settled yet') },
    },
  },
  '/api/v1/tokens': {
    get: { operationId: 'listTokens', summary: 'tokens of this site (never the secrets)', roles: MANAGER, responses: { '200': json('TokenList') } },
    post: { operationId: 'createToken', summary: 'create a token; the secret is shown once', roles: MANAGER, requestBody: 'TokenRequest', responses: { '201': json('TokenCreated', 'created'), '404': errorResponse('no such account') } },
  },
  '/api/v1/tokens/{id}': {
    delete: { operationId: 'revokeToken', summary: 'revoke a token', roles: MANAGER, parameters: [pathParam('id', str({ pattern: '^[0-9a-f]{16}$' }), 'token id')], responses: { '204': { description: 'revoked' }, '404': errorResponse('no such token') } },
  },
  '/api/v1/site/reload': {
    post: {
      operationId: 'reloadSite',
      summary: 'reload the site file; refused with every reason if it is invalid',
      roles: MANAGER,
      responses: { '200': json('SiteSummary'), '409': errorResponse('the file is for another site'), '422': errorResponse('the site file is invalid; issues lists each problem with path and line') },
    },
  },
  '/api/v1/audit': {
    get: { operationId: 'getAudit', summary: 'audit log of manager actions, newest first', roles: MANAGER, parameters: [query('limit', { type: 'string', pattern: '^[1-9]\\d{0,3}$' })], responses: { '200': json('AuditList') } },
  },
};

export interface Operation {
  readonly method: 'get' | 'post' | 'delete';
  readonly path: string;
  readonly operationId: string;
  readonly roles: readonly Role[];
}

export function operations(): Operation[] {
  const out: Operation[] = [];
  for (const [path, methods] of Object.entries(ops)) {
    for (const [method, op] of Object.entries(methods)) out.push({ method: method as Operation['method'], path, operationId: op.operationId, roles: op.roles });
  }
  return out;
}

export type OpenApiDocument = ReturnType<typeof openapiDocument>;

export function openapiDocument() {
  const paths: Record<string, Record<string, object>> = {};
  for (const [path, methods] of Object.entries(ops)) {
    paths[path] = {};
    for (const [method, op] of Object.entries(methods)) {
      paths[path][method] = {
        operationId: op.operationId,
        summary: op.summary,
        'x-roles': op.roles,
        ...(op.parameters ? { parameters: op.parameters } : {}),
        ...(op.requestBody ? { requestBody: { required: true, content: { 'application/json': { schema: ref(op.requestBody) } } } } : {}),
        responses: std(op.roles, op.responses),
      };
    }
  }
  Object.assign(paths, topupNotifyPaths());
  return {
    openapi: '3.1.0',
    info: {
      title: 'submeter API',
      version: '1',
      description: 'Prepaid sub-metering and TOU billing: tenant self-service and site management. Amounts are decimal strings (CNY 2 places, kWh 3, prices 6), per billing.md.',
    },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'token from `submeter token create`; roles manager, viewer, tenant' } },
      schemas,
    },
  };
}
