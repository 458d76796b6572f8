import { FIRST_DATE, LAST_DATE } from '../core/index.ts';
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
// The product's one supported date range (core/date-range.ts): years 2000-2199. `x-message`
// is what a request that does not match is told (api/validate.ts).
const DATE = str({ pattern: '^\\d{4}-\\d{2}-\\d{2}$', format: 'date' });
const MONTH = str({ pattern: '^\\d{4}-(0[1-9]|1[0-2])$' });
const DATE_IN = str({ pattern: '^2[01]\\d{2}-\\d{2}-\\d{2}$', format: 'date', 'x-message': `must be a local date YYYY-MM-DD from ${FIRST_DATE} to ${LAST_DATE}` });
const MONTH_IN = str({ pattern: '^2[01]\\d{2}-(0[1-9]|1[0-2])$', 'x-message': `must be a month YYYY-MM from ${FIRST_DATE.slice(0, 7)} to ${LAST_DATE.slice(0, 7)}` });
const ID = str({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$' });
const RELAY_MODE = str({ enum: ['off', 'dry-run', 'on'] });

/** A share of the verifiable statement (issue 10): basis, weights, the tenant's energy, and every day-period cell. */
const BASIS = str({ enum: ['area', 'consumption', 'equal', 'landlord'], description: 'landlord: nobody of the division was there during the cell (billing.md section 11)' });
const SHARE = {
  basis: BASIS,
  your_weight: str(),
  total_weight: str(),
  percent: str({ pattern: '^\\d+\\.\\d{2}$' }),
  your_kwh: KWH,
  amount: MONEY,
  estimated: s('boolean'),
  cells: arr(
    obj({
      date: DATE,
      period: PERIOD,
      kwh: KWH,
      basis: BASIS,
      your_weight: str(),
      total_weight: str(),
      your_kwh: KWH,
      cell_seconds: s('integer', { description: 'prorated cells (billing.md section 11): the cell length; weights are x seconds there' }),
      your_seconds: s('integer', { description: 'prorated cells: the seconds you occupied' }),
    }),
  ),
};

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
    contact: { ...nullable(obj({ name: str(), phone: str(), email: str() }, [])), description: "whom tenants call about their balance or a top-up (the site file's site.contact)" },
  }),
  Live: obj({
    account: str(),
    time: TIME,
    period: nullable(PERIOD),
    price: nullable(PRICE),
    power_kw: nullable(str({ pattern: '^-?\\d+\\.\\d{3}$' })),
    cost_per_hour: nullable(MONEY),
    balance: MONEY,
    balance_source: str({ enum: ['live', 'computed'], description: "live: the balance worker's last point; computed: no recent point, the API ran the same core function (billing.md section 5) on the same series" }),
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
    status: str({ enum: ['open', 'closed', 'provisional', 'final'], description: 'monthly: open or closed; final statement: provisional until the move-out day is settled, then final' }),
    closed_at: nullable(str({ format: 'date-time' })),
    statement_no: str({ description: 'site-account-YYYYMM (a final statement: -final appended)' }),
    property: str({ description: 'the site name' }),
    lines: arr(ref('StatementLine')),
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
    meters: arr(
      obj({
        meter: str(),
        from: { ...TIME, description: 'the part of the range the account occupied the unit (billing.md section 11)' },
        to: TIME,
        start_reading: nullable({ ...KWH, description: 'raw register' }),
        start_time: nullable(TIME),
        multiplier: str({ description: 'in force at the start (CT x PT)' }),
        start_primary: nullable({ ...KWH, description: 'start_reading x multiplier' }),
        end_reading: nullable({ ...KWH, description: 'raw register' }),
        end_time: nullable(TIME),
        end_multiplier: str(),
        end_primary: nullable({ ...KWH, description: 'end_reading x end_multiplier' }),
        changes: arr(
          obj(
            { time: TIME, final_reading: KWH, final_estimated: s('boolean'), initial_reading: KWH, multiplier_before: str(), multiplier_after: str(), serial: str() },
            ['time', 'final_reading', 'final_estimated', 'initial_reading', 'multiplier_before', 'multiplier_after'],
          ),
        ),
        kwh: KWH,
        estimated: s('boolean'),
      }),
    ),
    pools: arr(obj({ pool: str(), name: str(), kwh: KWH, ...SHARE })),
    loss: obj({
      master_kwh: KWH,
      submeters_kwh: KWH,
      loss_kwh: KWH,
      loss_rate: str({ pattern: '^-?\\d+\\.\\d{4}$' }),
      normal_rate: str(),
      allocated_kwh: KWH,
      abnormal_kwh: KWH,
      ...SHARE,
    }),
    payment_list: arr(obj({ time: TIME, amount: MONEY, reference: str() })),
    explain: ref('Explain'),
    move_in: nullable(TIME),
    move_out: nullable(TIME),
    deposit: { ...MONEY, description: 'deposits held at the end of the range (a final statement: at move-out), apart from the prepaid balance (billing.md section 11)' },
    final: obj(
      {
        move_out: TIME,
        deposit: MONEY,
        refund_due: MONEY,
        amount_due: MONEY,
        after_move_out: arr(obj({ time: TIME, kind: str({ enum: ['payment', 'refund', 'deposit', 'transfer'] }), amount: MONEY, reference: str() })),
        outstanding: MONEY,
      },
      ['move_out', 'deposit', 'refund_due', 'amount_due', 'after_move_out', 'outstanding'],
    ),
  }, ['site', 'account', 'name', 'month', 'from', 'to', 'currency', 'status', 'closed_at', 'lines', 'kwh', 'total_amount', 'opening_balance', 'payments', 'closing_balance', 'adjustments', 'corrections_after_close', 'explain']),
  StatementLine: obj(
    { kind: str({ enum: ['own', 'common', 'loss'] }), pool: str(), period: PERIOD, kwh: KWH, price: PRICE, amount: MONEY, estimated: s('boolean', { description: 'rests partly on energy interpolated across a gap in the readings' }) },
    ['kind', 'period', 'kwh', 'price', 'amount', 'estimated'],
  ),
  Explain: obj({
    prices: arr(obj({ period: PERIOD, price: PRICE })),
    pools: arr(obj({ id: str(), name: str(), method: str({ enum: ['area', 'consumption', 'equal'] }), members: s('integer', { description: 'how many accounts share it (never which)' }), includes_you: s('boolean') })),
    loss: obj({ normal_rate: str(), method: str({ enum: ['area', 'consumption', 'equal'] }) }),
    area_m2: str(),
  }),
  Payment: obj({ time: TIME, account: str(), amount: MONEY, reference: str(), kind: str({ enum: ['payment', 'refund', 'deposit', 'transfer'] }), to: str() }, ['time', 'account', 'amount', 'reference']),
  PaymentList: obj({ payments: arr(ref('Payment')) }),
  PaymentRequest: obj(
    {
      amount: str({ pattern: '^-?(0|[1-9]\\d{0,9})(\\.\\d{1,2})?$', description: 'CNY, at most 2 decimals; positive for a payment or transfer, negative for a refund, either for a deposit (negative: returned)' }),
      kind: str({ enum: ['payment', 'refund', 'deposit', 'transfer'], default: 'payment', description: 'billing.md section 11' }),
      to: { ...ID, description: 'transfer: the receiving account' },
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
    days: s('integer', { description: 'days of the range that have data: what per-day figures divide by' }),
    days_in_range: s('integer'),
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
        balance_source: str({ enum: ['live', 'computed'] }),
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
    totals: obj({ kwh: obj({ own: KWH, common: KWH, loss: KWH }), total_amount: MONEY, opening_balance: MONEY, payments: MONEY, closing_balance: MONEY }),
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
    accounts: arr(
      obj({
        account: str(),
        kwh: KWH,
        amount: MONEY,
        average_price: PRICE,
        utility_amount: { ...MONEY, description: "what the utility would charge for this account's own energy mix (each day's lines at the utility's prices)" },
        cap_amount: { ...MONEY, description: 'utility_amount x (1 + markup_cap)' },
        price_cap: { ...PRICE, description: 'cap_amount / kWh' },
        over_cap: { ...s('boolean'), description: 'amount > cap_amount' },
      }),
    ),
  }),
  MeterHealth: obj({
    meters: arr(
      obj({
        meter: str(),
        role: str({ enum: ['master', 'tenant', 'common'] }),
        account: { ...nullable(str()), description: "a tenant meter's occupant now (the landlord account while the unit is vacant)" },
        vacant: nullable(s('boolean')),
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
  LoginLinkRequest: obj(
    {
      label: str({ maxLength: 100, description: 'who or which device the link is for, shown in the session list' }),
      minutes: s('integer', { minimum: 1, maximum: 1440, default: 30, description: 'how long the link may be used (once)' }),
      base_url: str({ pattern: '^https?://[^/?#\\s]+(/[^?#\\s]*)?$', maxLength: 200, description: "the page's address as the tenant reaches it (default: this request's)" }),
    },
    [],
  ),
  LoginLink: obj({
    account: str(),
    url: str({ description: 'open once on the phone; the code is in the fragment, so it is never sent to a server or logged' }),
    code: str({ description: 'shown once; only its sha256 is stored' }),
    expires: TIME,
    qr_svg: str({ description: 'the url as a QR code (SVG)' }),
  }),
  SessionRequest: obj({ code: str({ minLength: 10, maxLength: 100 }) }),
  SessionCreated: obj({ account: str(), account_name: str(), session_id: str() }),
  DeviceSession: obj({ id: str(), account: str(), label: str(), created: str({ format: 'date-time' }) }, ['id', 'account', 'created']),
  DeviceSessionList: obj({ sessions: arr(ref('DeviceSession')) }),
  AuditList: obj({
    entries: arr(obj({ id: str(), time: str({ format: 'date-time' }), site: str(), actor: str(), action: str(), target: str(), detail: s('object') }, ['id', 'time', 'site', 'actor', 'action'])),
  }),
  // Prepaid enforcement (issue 13, docs/enforcement.md).
  Relay: obj({
    account: str(),
    relay: { type: 'boolean', description: 'the account has a meter with a remote switch' },
    mode: RELAY_MODE,
    power: str({ enum: ['on', 'off', 'unknown'], description: 'as the meters read back' }),
    wanted: str({ enum: ['on', 'off'], description: 'what the policy wants (on mode only; on otherwise)' }),
    since: nullable(TIME),
    reason: str({ description: 'machine code of why, e.g. below-reconnect, protected-account' }),
    why: str({ description: "one sentence in the tenant's language (lang=zh|en)" }),
    restore_amount: nullable({ ...MONEY, description: 'power off: the smallest payment that brings it back' }),
    cut_at: nullable({ ...TIME, description: 'a cut waiting for a protected window to end (night, weekend, holiday): when it comes' }),
    warning: str({ enum: ['none', 'warning', 'final'] }),
    read_at: nullable(TIME),
  }),
  RelayOverride: obj({ kind: str({ enum: ['hold', 'force-close', 'force-trip'] }), reason: str(), by: str(), at: TIME, until: nullable(TIME) }),
  RelayCommand: obj({
    id: str(),
    account: str(),
    target: str({ enum: ['on', 'off'] }),
    version: s('integer'),
    status: str({ enum: ['queued', 'running', 'done', 'refused', 'mismatch', 'unsupported', 'failed'] }),
    reason: str(),
    by: str(),
    created: TIME,
    updated: TIME,
    meters: arr(obj({ meter: str(), status: str(), reply: nullable(str()), sends: s('integer') })),
  }),
  RelayList: obj({
    accounts: arr(
      obj({
        account: str(),
        name: str(),
        mode: RELAY_MODE,
        protected: s('boolean'),
        power: str({ enum: ['on', 'off', 'unknown'] }),
        wanted: str({ enum: ['on', 'off'] }),
        since: nullable(TIME),
        reason: nullable(str()),
        detail: nullable(str()),
        deferred: nullable(obj({ reason: str(), until: nullable(TIME), detail: str() })),
        balance: nullable(MONEY),
        restore_amount: nullable(MONEY),
        warning: str({ enum: ['none', 'warning', 'final'] }),
        mismatch: s('boolean'),
        override: nullable(ref('RelayOverride')),
        meters: arr(obj({ meter: str(), control: str({ enum: ['plain', 'esam'] }), state: str({ enum: ['open', 'closed', 'unknown'] }), read_at: nullable(TIME), text: nullable(str()), error: nullable(str()) })),
      }),
    ),
    pending: arr(ref('RelayCommand')),
    failed: arr(ref('RelayCommand')),
  }),
  RelayAudit: obj({
    entries: arr(
      obj({
        id: str(),
        time: TIME,
        kind: str(),
        account: nullable(str()),
        meter: nullable(str()),
        command: nullable(str()),
        balance: nullable(MONEY),
        reason: nullable(str()),
        detail: nullable(str()),
        before: nullable(obj({ state: str(), raw: s('integer') }, ['state'])),
        after: nullable(obj({ state: str(), raw: s('integer') }, ['state'])),
        by: nullable(str()),
      }),
    ),
  }),
  RelayOverrideRequest: obj(
    { reason: str({ minLength: 3, maxLength: 500, description: 'why: kept in the audit trail' }), until: str({ format: 'date-time', description: 'when the override ends; default until released (a hold should name one)' }) },
    ['reason'],
  ),
  RelayReleaseRequest: obj({ reason: str({ minLength: 3, maxLength: 500 }) }),
  RelayOverrideResult: obj({ account: str(), override: nullable(ref('RelayOverride')), mode: RELAY_MODE, note: str() }),
};

const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: ref('Error') } } });
const json = (schema: string, description = 'OK') => ({ description, content: { 'application/json': { schema: ref(schema) } } });
const pathParam = (name: string, schema: object, description: string) => ({ name, in: 'path', required: true, schema, description });
const query = (name: string, schema: object, required = false, description = '') => ({ name, in: 'query', required, schema, ...(description ? { description } : {}) });

const ACCOUNT = pathParam('account', ID, 'account id; a tenant token sees only its own (any other answers 404)');
const FROM = query('from', DATE_IN, true, 'local date, inclusive');
const TO = query('to', DATE_IN, true, 'local date, exclusive');
const LANG = query('lang', { type: 'string', enum: ['zh', 'en'], default: 'zh' }, false, 'language of texts meant for people');

const ALL: Role[] = ['manager', 'viewer', 'tenant'];
const SITE_READERS: Role[] = ['manager', 'viewer'];
const MANAGER: Role[] = ['manager'];

interface OpSpec {
  readonly operationId: string;
  readonly summary: string;
  readonly roles: readonly Role[];
  /** No authentication (redeeming a login link): no 401/403, its own failures. */
  readonly public?: true;
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
      parameters: [ACCOUNT, pathParam('month', MONTH_IN, 'YYYY-MM'), query('format', { type: 'string', enum: ['json', 'csv', 'html'], default: 'json' }), query('lang', { type: 'string', enum: ['zh', 'en'], default: 'zh' })],
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
  '/api/v1/accounts/{account}/final-statement': {
    get: {
      operationId: 'getFinalStatement',
      summary: 'the final statement of an account that moved out: the verifiable statement to the move-out instant with the final block (deposit, refund or amount due, ledger after move-out; JSON, CSV or printable HTML, zh or en)',
      roles: ALL,
      parameters: [ACCOUNT, query('format', { type: 'string', enum: ['json', 'csv', 'html'], default: 'json' }), query('lang', { type: 'string', enum: ['zh', 'en'], default: 'zh' })],
      responses: {
        '200': {
          description: 'the final statement',
          content: { 'application/json': { schema: ref('Statement') }, 'text/csv': { schema: { type: 'string' } }, 'text/html': { schema: { type: 'string' } } },
        },
        '404': errorResponse('no such account (or not yours), or it has no move_out'),
      },
    },
  },
  '/api/v1/accounts/{account}/alerts': {
    get: {
      operationId: 'listAlerts',
      summary: "alerts of this account, newest first; a tenant gets only events about its own money, worded in `lang`",
      roles: ALL,
      parameters: [ACCOUNT, LANG],
      responses: { '200': json('EventList'), '404': errorResponse('no such account (or not yours)') },
    },
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
    get: {
      operationId: 'getBillStats',
      summary: 'bill statistics of every account over a range, with totals and balances; as JSON or a CSV file for a spreadsheet',
      roles: SITE_READERS,
      parameters: [FROM, TO, query('format', { type: 'string', enum: ['json', 'csv'], default: 'json' })],
      responses: { '200': { description: 'the statistics', content: { 'application/json': { schema: ref('BillStats') }, 'text/csv': { schema: { type: 'string' } } } } },
    },
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
  '/api/v1/months/{month}/statements': {
    get: {
      operationId: 'getMonthStatements',
      summary: "every account's statement of a month as one printable document (one account per page)",
      roles: SITE_READERS,
      parameters: [pathParam('month', MONTH_IN, 'YYYY-MM'), LANG],
      responses: { '200': { description: 'the printable statements', content: { 'text/html': { schema: { type: 'string' } } } } },
    },
  },
  '/api/v1/months/{month}/close': {
    post: {
      operationId: 'closeMonth',
      summary: 'close a month: its statements become immutable',
      roles: MANAGER,
      parameters: [pathParam('month', MONTH_IN, 'YYYY-MM')],
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
  '/api/v1/accounts/{account}/login-links': {
    post: {
      operationId: 'createLoginLink',
      summary: "a one-time login link (and QR code) for the account's tenant: opened once on a phone it signs that device in for 180 days",
      roles: MANAGER,
      parameters: [ACCOUNT],
      requestBody: 'LoginLinkRequest',
      responses: { '201': json('LoginLink', 'created'), '404': errorResponse('no such account') },
    },
  },
  '/api/v1/accounts/{account}/sessions': {
    get: { operationId: 'listDeviceSessions', summary: "the account's signed-in devices", roles: MANAGER, parameters: [ACCOUNT], responses: { '200': json('DeviceSessionList'), '404': errorResponse('no such account') } },
  },
  '/api/v1/sessions/{id}': {
    delete: { operationId: 'revokeDeviceSession', summary: 'sign a device out at once', roles: MANAGER, parameters: [pathParam('id', str({ pattern: '^[0-9a-f]{16}$' }), 'session id')], responses: { '204': { description: 'signed out' }, '404': errorResponse('no such session') } },
  },
  '/api/v1/session': {
    post: {
      operationId: 'startSession',
      summary: 'use a login link: sets the device session cookie (HttpOnly, SameSite=Strict, Secure behind TLS)',
      roles: [],
      public: true,
      requestBody: 'SessionRequest',
      responses: { '201': json('SessionCreated', 'signed in; Set-Cookie carries the session'), '401': errorResponse('the link is unknown, used or expired'), '429': errorResponse('too many failed attempts from this address') },
    },
    delete: { operationId: 'endSession', summary: 'sign this device out (its session cookie)', roles: ALL, responses: { '204': { description: 'signed out; the cookie is cleared' }, '409': errorResponse('this request used a token, not a device session') } },
  },
  '/api/v1/audit': {
    get: { operationId: 'getAudit', summary: 'audit log of manager actions, newest first', roles: MANAGER, parameters: [query('limit', { type: 'string', pattern: '^[1-9]\\d{0,3}$' })], responses: { '200': json('AuditList') } },
  },
  '/api/v1/accounts/{account}/relay': {
    get: {
      operationId: 'getRelay',
      summary: 'power supply (prepaid cut-off): on or off, why, since when, how much to pay to get it back',
      roles: ALL,
      parameters: [ACCOUNT, query('lang', { type: 'string', enum: ['zh', 'en'], default: 'zh' })],
      responses: { '200': json('Relay'), '404': errorResponse('no such account (or not yours)') },
    },
  },
  '/api/v1/relay': {
    get: { operationId: 'listRelays', summary: 'relay state of every account with a relay, pending and failed commands', roles: SITE_READERS, responses: { '200': json('RelayList') } },
  },
  '/api/v1/relay/audit': {
    get: {
      operationId: 'getRelayAudit',
      summary: 'relay audit trail: every decision and command with balance, reason and the register before and after, newest first',
      roles: MANAGER,
      parameters: [query('limit', { type: 'string', pattern: '^[1-9]\\d{0,3}$' }), query('account', ID)],
      responses: { '200': json('RelayAudit') },
    },
  },
  '/api/v1/accounts/{account}/relay/hold': {
    post: {
      operationId: 'holdRelay',
      summary: 'hold: no trip for this account until the given time (the debt is still charged)',
      roles: MANAGER,
      parameters: [ACCOUNT],
      requestBody: 'RelayOverrideRequest',
      responses: { '200': json('RelayOverrideResult'), '404': errorResponse('no such account'), '409': errorResponse('the account has no relay, or until is past') },
    },
  },
  '/api/v1/accounts/{account}/relay/release': {
    post: {
      operationId: 'releaseRelay',
      summary: 'end a hold or a forced state: the policy applies again',
      roles: MANAGER,
      parameters: [ACCOUNT],
      requestBody: 'RelayReleaseRequest',
      responses: { '200': json('RelayOverrideResult'), '404': errorResponse('no such account'), '409': errorResponse('nothing to release') },
    },
  },
  '/api/v1/accounts/{account}/relay/trip': {
    post: {
      operationId: 'tripRelay',
      summary: 'force the power off (until released or the given time)',
      roles: MANAGER,
      parameters: [ACCOUNT],
      requestBody: 'RelayOverrideRequest',
      responses: { '200': json('RelayOverrideResult'), '404': errorResponse('no such account'), '409': errorResponse('the account has no relay or is protected (保电)') },
    },
  },
  '/api/v1/accounts/{account}/relay/close': {
    post: {
      operationId: 'closeRelay',
      summary: 'force the power on (until released or the given time)',
      roles: MANAGER,
      parameters: [ACCOUNT],
      requestBody: 'RelayOverrideRequest',
      responses: { '200': json('RelayOverrideResult'), '404': errorResponse('no such account'), '409': errorResponse('the account has no relay') },
    },
  },
};

export interface Operation {
  readonly method: 'get' | 'post' | 'delete';
  readonly path: string;
  readonly operationId: string;
  readonly roles: readonly Role[];
  /** Served without authentication. */
  readonly public?: true;
}

export function operations(): Operation[] {
  const out: Operation[] = [];
  for (const [path, methods] of Object.entries(ops)) {
    for (const [method, op] of Object.entries(methods)) out.push({ method: method as Operation['method'], path, operationId: op.operationId, roles: op.roles, ...(op.public ? { public: true as const } : {}) });
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
        ...(op.public ? { security: [] } : {}),
        ...(op.parameters ? { parameters: op.parameters } : {}),
        ...(op.requestBody ? { requestBody: { required: true, content: { 'application/json': { schema: ref(op.requestBody) } } } } : {}),
        responses: {
          ...(op.public ? { '400': errorResponse('the body does not match this document'), '503': errorResponse('Redis is unavailable; retry after the Retry-After seconds'), ...op.responses } : std(op.roles, op.responses)),
          ...(op.requestBody ? { '413': errorResponse('the body is larger than 16 KiB'), '415': errorResponse('the body is not JSON (Content-Type: application/json)') } : {}),
        },
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
