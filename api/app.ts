import { fileURLToPath } from 'node:url';
import express from 'express';
import QRCode from 'qrcode';
import type { Express, NextFunction, Request, Response } from 'express';
import type { RedisClient } from '../lib/redis.ts';
import { addDays, BillingInputError, parseRfc3339, QUALITY_KINDS, reconcile, SiteFileError } from '../core/index.ts';
import type { Account, Site } from '../core/index.ts';
import type { InfluxV1 } from '../influx/client.ts';
import { createLogger } from '../lib/logger.ts';
import { InputFileError } from '../lib/site-file.ts';
import type { Logger } from '../lib/logger.ts';
import { PaymentRejectedError, recordPayment } from '../workers/index.ts';
import type { AuditLog } from './audit-log.ts';
import { RedisAuditLog } from './audit-log.ts';
import { AuthFailureLimiter, authenticate } from './auth/auth.ts';
import type { SecondaryAuth } from './auth/auth.ts';
import { cookieValue, DEFAULT_LINK_MINUTES, DeviceSessions, SESSION_COOKIE, SESSION_DAYS } from './auth/device-sessions.ts';
import type { AuthFailureLimit } from './auth/auth.ts';
import { RedisTokenStore, validateNewToken } from './auth/token-store.ts';
import type { Role, TokenRecord, TokenStore } from './auth/token-store.ts';
import { ReadModel, masterDay } from './data/read-model.ts';
import { StoredResults, VersionWatch } from './data/site-versions.ts';
import { SITE_FIELD, StampWatch, stampsVersion, watchedMeters } from './data/stamp-watch.ts';
import { CachedTokenStore } from './auth/credential-cache.ts';
import { linesPerDay } from './data/reconcile-lines.ts';
import { HttpError, badRequest, conflict, errorHandler, forbidden, notFound, notFoundHandler, unsupportedMediaType } from './errors.ts';
import { kwhText, moneyText, parseMoneyFen } from './format.ts';
import { formatLocal, localMidnight, localParts, monthRange, nextMonth } from './local-time.ts';
import type { MonthStore } from './month-store.ts';
import { RedisMonthStore } from './month-store.ts';
import { openapiDocument, operations } from './openapi.ts';
import type { Operation } from './openapi.ts';
import { SiteMismatchError, SiteRef } from './site-ref.ts';
import { finalStatementFor, statementCsv, statementFor, statementHtml } from './statement.ts';
import type { PaymentKind } from '../core/index.ts';
import { siteReloadChannel } from '../workers/index.ts';
import { OpenApiValidator, formatErrors } from './validate.ts';
import { adviceFor, adviceReadsOpenDays, settledThroughOf } from './advice.ts';
import { TENANT_EVENT_KINDS, tenantEvents } from './tenant-events.ts';
import { tenantStatement } from './tenant-view.ts';
import { billStatsCsv, monthStatementsHtml } from './manager-exports.ts';
import type { Lang } from './tenant-events.ts';
import { relayHandlers } from './relay.ts';
import type { HandlerCtx, RouteHandler } from './handler.ts';
import type { TopupProviders } from '../lib/topup/index.ts';
import { topupRoutes } from './topup-routes.ts';
import type { TopupRouteDeps } from './topup-routes.ts';
import { apiKeys } from './redis-keys.ts';
import { TenantReader } from './data/tenant-read.ts';
import { installTenantLane } from './tenant-lane.ts';
import { hashToken } from './auth/token-store.ts';

export interface ApiDeps {
  /** The site served; a manager's reload swaps it. */
  readonly site: SiteRef;
  readonly influx: InfluxV1;
  /** Tokens, audit log, closed months and the payments' idempotency index live here. */
  readonly redis: RedisClient;
  /** Redis key prefix for the API's keys (tests isolate with a random one). @defaultValue 'submeter:api:' */
  readonly keyPrefix?: string;
  /** Key prefix the workers' payments use (workers/keys.ts). @defaultValue 'submeter' */
  readonly workersKeyPrefix?: string;
  readonly tokens?: TokenStore;
  readonly audit?: AuditLog;
  readonly months?: MonthStore;
  /** The clock (tests freeze it). @defaultValue Date.now */
  readonly now?: () => number;
  readonly logger?: Logger;
  readonly authFailures?: AuthFailureLimit;
  /** Statement cache lifetime in ms. @defaultValue 1000 */
  readonly cacheMs?: number;
  /** Express `trust proxy` (behind a reverse proxy, so the auth-failure limit sees the client address). @defaultValue false */
  readonly trustProxy?: boolean | number | string;
  /** Online top-up provider adapters (docs/topup.md); without them top-up answers 'not enabled'. */
  readonly topupProviders?: TopupProviders;
  /** The tenant fast lane in front of Express's router (api/tenant-lane.ts); false: every request through the Express chain (the lane's equivalence test). @defaultValue true */
  readonly lane?: boolean;
  /** Test hook at each stage of a provider notification (the crash test kills the process there). */
  readonly topupOnStage?: TopupRouteDeps['onStage'];
}

// What a route handler gets (api/handler.ts, shared with the relay routes).
type Ctx = HandlerCtx;
type Handler = RouteHandler;

const PUBLIC_DIR = fileURLToPath(new URL('./public/', import.meta.url));

/**
 * The Express app, without listen (tests and the benchmark bind port 0; startApi binds
 * the configured port). Routes come from the OpenAPI document: each operation's path,
 * method and `x-roles`, with its parameters and body validated before the handler runs.
 */
export function buildApp(deps: ApiDeps): Express {
  const log = deps.logger ?? createLogger('api');
  const now = deps.now ?? Date.now;
  const prefix = deps.keyPrefix ?? 'submeter:api:';
  const workersPrefix = deps.workersKeyPrefix ?? 'submeter';
  // Stored results (issue 15): what a tenant route serves is kept while the site's version
  // stamps in Redis are unchanged, read once per cacheMs per site (api/data/site-versions.ts).
  const refreshMs = deps.cacheMs ?? 1000;
  const versions = new VersionWatch(deps.redis, prefix, workersPrefix, refreshMs);
  const stored = new StoredResults();
  // The workers' stamps of buckets and events: usage, alerts and advice as stored results too.
  const stamps = new StampWatch(deps.redis, workersPrefix, refreshMs);
  /** The site's last settled day, per charges version (a settlement replaces it; the query after reading it is as fresh or fresher). */
  const settledThrough = new Map<string, { charges: string; value: Promise<string | undefined> }>();
  const credentials = async (s: string) => (await versions.get(s)).credentials;
  const tokens = deps.tokens ?? new CachedTokenStore(new RedisTokenStore(deps.redis, prefix), credentials, () => versions.invalidate());
  const audit = deps.audit ?? new RedisAuditLog(deps.redis, prefix);
  const months = deps.months ?? new RedisMonthStore(deps.redis, prefix);
  const read = new ReadModel({ influx: deps.influx, cacheMs: deps.cacheMs, live: { redis: deps.redis, workersKeyPrefix: workersPrefix } });
  // A write in this process (payment, month close, reload) is seen by its next request.
  read.cache.onClear(() => {
    versions.invalidate();
    stamps.invalidate();
  });
  const doc = openapiDocument();
  const validator = new OpenApiValidator(doc);
  // The site's hash tag in the key (Redis Cluster: one slot per site).
  const limiter = new AuthFailureLimiter(deps.redis, apiKeys(prefix).tagged(deps.site.current.id), deps.authFailures, refreshMs);
  const sessions = new DeviceSessions(deps.redis, apiKeys(prefix).tagged(deps.site.current.id), now, () => credentials(deps.site.current.id), () => versions.invalidate());
  /** The session cookie's attributes: HttpOnly, SameSite=Strict, Secure when the request came over TLS (req.secure, through `trust proxy` behind a proxy). */
  const sessionCookie = (req: Request) => ({ httpOnly: true, sameSite: 'strict' as const, secure: req.secure, path: '/' });
  const site = () => deps.site.current;

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  if (deps.trustProxy !== undefined) app.set('trust proxy', deps.trustProxy);

  /** Every request's first step: security headers and the request log (the tenant lane runs it too). */
  const front = (req: Request, res: Response) => {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    // The request log is at debug: no listener and no clock read per request otherwise
    // (issue 15: a tenant route's budget is ~1.4x a bare Express request).
    if (log.isLevelEnabled('debug')) {
      const t0 = process.hrtime.bigint();
      res.on('finish', () => {
        // Never the Authorization header; the token id identifies the caller.
        log.debug({ method: req.method, path: req.path, status: res.statusCode, ms: Number(process.hrtime.bigint() - t0) / 1e6, token_id: res.locals.auth?.id }, 'request');
      });
    }
  };
  app.use((req, res, next) => {
    front(req, res);
    next();
  });

  // The tenant page: static files, no build step. CSP: only our own script; inline style is
  // allowed because the printable statement opens as a blob document, which inherits it.
  const statics = express.static(PUBLIC_DIR, {
    index: 'index.html',
    setHeaders: (res) => res.setHeader('Content-Security-Policy', "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'"),
  });
  // Not for /api: the static handler looks for a file on disk for every path it sees.
  app.use((req, res, next) => (req.path.startsWith('/api/') ? next() : statics(req, res, next)));
  app.get('/openapi.json', (_req, res) => {
    res.json(doc);
  });

  // Online top-up (issue 14): the providers' notifications carry a signature, not a token.
  const topup = topupRoutes({ site, influx: deps.influx, redis: deps.redis, workersKeyPrefix: deps.workersKeyPrefix, providers: deps.topupProviders, now, log, onStage: deps.topupOnStage, audit: (c, a, t, x) => writeAudit(c, a, t, x), changed: () => read.cache.clear() });
  topup.mountNotify(app);

  // GET routes with a bearer token: answered in front of Express's router, authenticated in
  // one round trip at most (issue 15); anything else goes to the chain below (api/tenant-lane.ts).
  const reader = new TenantReader(deps.redis, prefix, workersPrefix);
  const failed = errorHandler(log);
  if (deps.lane !== false)
    installTenantLane(app, {
      operations: operations().filter((o) => o.method === 'get' && !o.public),
      prepare: (req, res) => {
        front(req, res);
        res.setHeader('Cache-Control', 'no-store');
      },
      answer: (op, req, res) => answerOf(op)(req, res),
      fail: (err, req, res) => failed(err, req, res, () => undefined),
      authenticate: async (req, token, op, params) => {
        const address = req.ip ?? 'unknown';
        const siteId = site().id;
        if (refreshMs <= 0 && !deps.tokens) {
          // Cache off: the counter, the token, the version stamps and the live entry, together.
          const id = op.operationId;
          const meters = params.account && (id === 'getUsage' || id === 'getAdvice') ? watchedMeters(site(), params.account) : undefined;
          const r = await reader.read({
            site: siteId,
            failuresKey: limiter.key(address),
            tokenHash: hashToken(token),
            account: params.account,
            live: id === 'getLive',
            events: id === 'listAlerts',
            ...(meters ? { buckets: id === 'getAdvice' ? [...meters, SITE_FIELD] : meters } : {}),
          });
          if (limiter.blockedBy(address, r.failures.count, r.failures.ttlMs) !== undefined || !r.token || r.token.site !== siteId) return undefined;
          return { record: r.token, read: r };
        }
        // The process's caches (a read at most once a second per address and per site).
        if ((await limiter.blocked(address)) !== undefined) return undefined;
        const record = await tokens.lookup(token, siteId);
        return record?.site === siteId ? { record } : undefined;
      },
    });

  app.use('/api', (_req, res, next) => {
    res.setHeader('Cache-Control', 'no-store');
    next();
  });
  // Routes without authentication (redeeming a login link), before the bearer check.
  for (const op of operations().filter((o) => o.public)) {
    app[op.method](op.path.replace(/\{(\w+)\}/g, ':$1'), express.json({ limit: '16kb' }), (req, res, next) => routeOf(op)(req, res, next));
  }
  // Tenants' phones authenticate with their device session cookie (no Authorization header).
  const deviceAuth: SecondaryAuth = async (req, res) => {
    const secret = cookieValue(req.headers.cookie, SESSION_COOKIE);
    if (!secret) return undefined;
    const found = await sessions.lookup(secret);
    if (!found || found.site !== site().id || !site().accounts.some((a) => a.id === found.account)) {
      res.clearCookie(SESSION_COOKIE, sessionCookie(req)); // a revoked or expired session: forget it
      return { record: undefined };
    }
    return { record: DeviceSessions.asRecord(found) };
  };
  app.use('/api', authenticate(tokens, limiter, () => site().id, deviceAuth));
  app.use('/api', express.json({ limit: '16kb' }));

  const actor = (auth: TokenRecord) => `${auth.role}:${auth.id}`;
  const writeAudit = async (ctx: Ctx, action: string, target: string | undefined, detail: Record<string, unknown>) => {
    await audit.append({ time: new Date(now()).toISOString(), site: ctx.site.id, actor: actor(ctx.auth), action, ...(target ? { target } : {}), detail });
    log.info({ action, target, actor: actor(ctx.auth), ...detail }, 'manager action');
  };

  /** The account a request names; a tenant gets 404 for any account but its own (no existence leak). */
  const accountOf = (ctx: Ctx): Account => {
    const id = ctx.params.account;
    const a = accountById(ctx.site, id);
    if (!a || (ctx.auth.role === 'tenant' && ctx.auth.account !== id)) throw notFound(`no account ${id}`);
    return a;
  };

  /** The site's version stamps: as the request's one round trip read them, else the process's (at most refreshMs old). */
  const versionsOf = (ctx: Ctx) => ctx.res.locals.tenantRead?.versions ?? versions.get(ctx.site.id);
  /** The workers' bucket and event stamps: as the request's one round trip read them, else the process's (at most refreshMs old). */
  const stampsOf = (ctx: Ctx) => ctx.res.locals.tenantRead?.stamps ?? stamps.get(ctx.site.id);
  const settledThroughFor = (st: Site, charges: string) => {
    const hit = settledThrough.get(st.id);
    if (hit && hit.charges === charges) return hit.value;
    const value = settledThroughOf(deps.influx, st);
    settledThrough.set(st.id, { charges, value });
    value.catch(() => settledThrough.get(st.id)?.value === value && settledThrough.delete(st.id));
    return value;
  };

  const range = (ctx: Ctx) => {
    const { from, to } = ctx.query;
    if (!(from < to)) throw badRequest('from must be before to', `${ctx.req.path}?from`);
    if (Date.parse(to) - Date.parse(from) > 400 * 86_400_000) throw badRequest('at most 400 days per request', `${ctx.req.path}?to`);
    return { from, to };
  };

  const handlers: Record<string, Handler> = {
    async getMe({ site, auth }) {
      const a = auth.account ? accountById(site, auth.account) : undefined;
      return { site: site.id, site_name: site.name, currency: site.currency, timezone: site.timezone, role: auth.role, account: auth.account ?? null, account_name: a?.name ?? null, token_id: auth.id, contact: site.contact ?? null };
    },

    async listAccounts({ site }) {
      const balances = await read.balances(site, now());
      return {
        accounts: site.accounts.map((a) => {
          const b = balances.get(a.id)!;
          const low = a.lowBalance !== undefined ? parseMoneyFen(a.lowBalance)! : undefined;
          return {
            account: a.id,
            name: a.name,
            area_m2: a.areaM2,
            tariff: a.tariff,
            balance: moneyText(b.fen),
            balance_source: b.source,
            status: b.status,
            low_balance: low !== undefined ? moneyText(low) : null,
            hours_left: b.hoursLeft,
          };
        }),
      };
    },

    async getLive(ctx) {
      return read.live(ctx.site, accountOf(ctx), now(), ctx.res.locals.tenantRead?.live);
    },

    async getUsage(ctx) {
      const a = accountOf(ctx);
      const { from, to } = range(ctx);
      const interval = ctx.query.interval as '15m' | '1h' | '1d';
      // Bounded answers: at most about 9,000 points per period.
      const maxDays = { '15m': 93, '1h': 366, '1d': 400 }[interval];
      if (Date.parse(to) - Date.parse(from) > maxDays * 86_400_000) throw badRequest(`interval ${interval} allows at most ${maxDays} days`, `${ctx.req.path}?interval`);
      // A stored result (issue 15): the account's buckets move only with a write that stamps
      // their meter (workers/api-stamps.ts); the range's answer needs no clock.
      const meters = watchedMeters(ctx.site, a.id);
      const s = await stampsOf(ctx);
      ctx.res.type('application/json; charset=utf-8');
      return stored.get(`usage|${ctx.site.id}|${a.id}|${from}|${to}|${interval}`, `${stampsVersion(s.buckets, meters)}|${siteStamp(ctx.site)}`, async () => JSON.stringify({ account: a.id, from, to, interval, points: await read.usage(ctx.site, a, from, to, interval) }));
    },

    async listBills(ctx) {
      const a = accountOf(ctx);
      const t = now();
      // A stored result: the monthly totals change with the charges and the closed months (and the day).
      const v = await versionsOf(ctx);
      ctx.res.type('application/json; charset=utf-8');
      return stored.get(`bills|${ctx.site.id}|${a.id}`, `${v.charges}|${v.months}|${localParts(t, ctx.site.timezone).date}|${siteStamp(ctx.site)}`, async () => JSON.stringify(await listBillsOf(ctx.site, a, t)));
    },
  };

  /** An account's monthly statements with totals and status (listBills). */
  const listBillsOf = async (st: Site, a: Account, t: number) => {
    const ctx = { site: st };
    const [totals, closed] = await Promise.all([read.monthlyTotals(ctx.site, a, t), months.list(ctx.site.id)]);
    const current = localParts(t, ctx.site.timezone).date.slice(0, 7);
    const all = new Set<string>([...totals.keys(), ...closed.map((c) => c.month), current]);
    const bills = await Promise.all(
      [...all]
        .filter((m) => m <= current)
        .sort()
        .reverse()
        .map(async (month) => {
          const c = closed.find((x) => x.month === month);
          const frozen = c ? (await months.get(ctx.site.id, month))?.statements.find((s) => s.account === a.id) : undefined;
          const tot = totals.get(month) ?? { fen: 0, wh: 0 };
          const { from, to } = monthRange(month);
          return {
            month,
            from,
            to,
            status: c ? 'closed' : 'open',
            closed_at: c?.closed_at ?? null,
            kwh: frozen ? kwhText(sumKwh(frozen.kwh)) : kwhText(tot.wh),
            total_amount: frozen ? frozen.total_amount : moneyText(tot.fen),
          };
        }),
    );
    return { account: a.id, bills };
  };

  Object.assign(handlers, {
    async getBill(ctx) {
      const a = accountOf(ctx);
      const format = ctx.query.format;
      const view = async () => {
        const full = await statementFor(read, months, ctx.site, a, ctx.params.month);
        return ctx.auth.role === 'tenant' ? tenantStatement(full, ctx.site, a) : full;
      };
      if (format !== 'html') {
        // A stored result (issue 15): computed once while the site's charges, the account's
        // ledger and the closed months are unchanged, then served as it is.
        const v = await versionsOf(ctx);
        const body = await stored.get(`bill|${ctx.site.id}|${a.id}|${ctx.params.month}|${format ?? 'json'}|${ctx.auth.role === 'tenant'}`, `${v.charges}|${v.ledger.get(a.id) ?? ''}|${v.months}|${siteStamp(ctx.site)}`, async () => {
          const st = await view();
          return format === 'csv' ? statementCsv(st) : JSON.stringify(st);
        });
        if (format === 'csv') ctx.res.type('text/csv; charset=utf-8').setHeader('Content-Disposition', `attachment; filename="${a.id}-${ctx.params.month}.csv"`);
        else ctx.res.type('application/json; charset=utf-8');
        return body;
      }
      const st = await view();
      if (format === 'html') {
        ctx.res.type('text/html; charset=utf-8').setHeader('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'");
        return statementHtml(st, ctx.query.lang as 'zh' | 'en', formatLocal(now(), ctx.site.timezone));
      }
      return st;
    },

    async listPayments(ctx) {
      const a = accountOf(ctx);
      // A stored result (issue 15): the ledger changes only through recordPayment, which bumps the account's ledger stamp.
      const v = await versionsOf(ctx);
      ctx.res.type('application/json; charset=utf-8');
      return stored.get(`payments|${ctx.site.id}|${a.id}`, `${v.ledger.get(a.id) ?? ''}|${siteStamp(ctx.site)}`, async () => JSON.stringify({ payments: await read.payments(ctx.site, a.id) }));
    },

    async recordPayment(ctx) {
      const a = accountOf(ctx);
      const amount = String(ctx.body.amount);
      const fen = parseMoneyFen(amount);
      // billing.md section 11: a kind; the sign rules of each kind are recordPayment's.
      const kind = (ctx.body.kind as PaymentKind | undefined) ?? 'payment';
      const to = ctx.body.to as string | undefined;
      if (fen === undefined || (kind === 'payment' && fen <= 0)) throw badRequest('amount must be a positive decimal with at most 2 places', `${ctx.req.path}#amount`);
      const reference = String(ctx.body.reference);
      // The core's RFC 3339 parser: an offset is required and the year must be in range.
      const time = ctx.body.time !== undefined ? parseRfc3339(String(ctx.body.time)) : now();
      if (typeof time === 'string') throw badRequest(`time ${time}`, `${ctx.req.path}#time`);
      let r: Awaited<ReturnType<typeof recordPayment>>;
      try {
        r = await recordPayment({ site: ctx.site, influx: deps.influx, redis: deps.redis, keyPrefix: deps.workersKeyPrefix, now }, { account: a.id, fen, reference, time, ...(kind !== 'payment' ? { kind } : {}), ...(to !== undefined ? { to } : {}) });
      } catch (err) {
        if (err instanceof PaymentRejectedError) {
          await writeAudit(ctx, 'payment.refused', a.id, { reference, amount, reason: err.message });
          throw err.code === 'conflict' ? conflict(err.message) : badRequest(err.message, err.message.startsWith('payment time') ? `${ctx.req.path}#time` : undefined);
        }
        throw err;
      }
      // A duplicate answers the payment as first recorded (its time, not this call's).
      await writeAudit(ctx, r.status === 'recorded' ? 'payment.record' : 'payment.duplicate', a.id, { reference, amount, time: new Date(r.time).toISOString() });
      read.cache.clear();
      ctx.res.status(r.status === 'recorded' ? 201 : 200);
      return { status: r.status, payment: { time: formatLocal(r.time, ctx.site.timezone), account: a.id, amount: moneyText(r.fen), reference, ...(kind !== 'payment' ? { kind } : {}), ...(to !== undefined ? { to } : {}) } };
    },

    async getFinalStatement(ctx) {
      const a = accountOf(ctx);
      if (a.moveOut === undefined) throw notFound(`account ${a.id} has no move_out in the site file: no final statement`);
      const full = await finalStatementFor(read, ctx.site, a);
      const st = ctx.auth.role === 'tenant' ? tenantStatement(full, ctx.site, a) : full;
      const format = ctx.query.format;
      if (format === 'csv') {
        ctx.res.type('text/csv; charset=utf-8').setHeader('Content-Disposition', `attachment; filename="${a.id}-final.csv"`);
        return statementCsv(st);
      }
      if (format === 'html') {
        ctx.res.type('text/html; charset=utf-8').setHeader('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'");
        return statementHtml(st, ctx.query.lang as 'zh' | 'en', formatLocal(now(), ctx.site.timezone));
      }
      return st;
    },

    async listAlerts(ctx) {
      const a = accountOf(ctx);
      // A stored result (issue 15): the account's events move only with a write that stamps it (workers/api-stamps.ts).
      const s = await stampsOf(ctx);
      const tenant = ctx.auth.role === 'tenant';
      const lang = ctx.query.lang as Lang;
      ctx.res.type('application/json; charset=utf-8');
      return stored.get(`alerts|${ctx.site.id}|${a.id}|${tenant}|${tenant ? lang : ''}`, `${s.events.get(a.id) ?? ''}|${siteStamp(ctx.site)}`, async () => {
        // A tenant sees only events about its own money, in its language (api/tenant-events.ts).
        if (tenant) return JSON.stringify({ alerts: tenantEvents(await read.events(ctx.site, { account: a.id, kinds: TENANT_EVENT_KINDS, limit: 100 }), a, lang) });
        return JSON.stringify({ alerts: await read.events(ctx.site, { account: a.id, limit: 100 }) });
      });
    },

    async getAdvice(ctx) {
      const a = accountOf(ctx);
      const { from, to } = range(ctx);
      // A stored result (issue 15): settled days move with the charges version, the account's
      // buckets with its meters' stamps, and a range with days not settled yet with every
      // meter's (its days with data are the site's).
      const [v, s] = await Promise.all([versionsOf(ctx), stampsOf(ctx)]);
      const open = adviceReadsOpenDays(to, await settledThroughFor(ctx.site, v.charges));
      const version = `${v.charges}|${stampsVersion(s.buckets, watchedMeters(ctx.site, a.id))}|${open ? (s.buckets.get(SITE_FIELD) ?? '') : ''}|${siteStamp(ctx.site)}`;
      ctx.res.type('application/json; charset=utf-8');
      return stored.get(`advice|${ctx.site.id}|${a.id}|${from}|${to}`, version, async () => JSON.stringify(await adviceFor(deps.influx, ctx.site, a, from, to)));
    },

    async getBillStats(ctx) {
      const { from, to } = range(ctx);
      const sts = await read.statements(ctx.site, ctx.site.accounts, from, to);
      const sum = (f: (s: (typeof sts)[number]) => string, places: number) => sts.reduce((acc, s) => acc + (parseFixedOr0(f(s), places)), 0);
      const totals = {
        kwh: { own: kwhText(sum((s) => s.kwh.own, 3)), common: kwhText(sum((s) => s.kwh.common, 3)), loss: kwhText(sum((s) => s.kwh.loss, 3)) },
        total_amount: moneyText(sum((s) => s.total_amount, 2)),
        opening_balance: moneyText(sum((s) => s.opening_balance, 2)),
        payments: moneyText(sum((s) => s.payments, 2)),
        closing_balance: moneyText(sum((s) => s.closing_balance, 2)),
      };
      if (ctx.query.format === 'csv') {
        ctx.res.type('text/csv; charset=utf-8').setHeader('Content-Disposition', `attachment; filename="${ctx.site.id}-bills-${from}-${to}.csv"`);
        return billStatsCsv(ctx.site, from, to, sts, totals);
      }
      return {
        from,
        to,
        accounts: sts.map((s) => ({ account: s.account, name: s.name, kwh: s.kwh, total_amount: s.total_amount, opening_balance: s.opening_balance, payments: s.payments, closing_balance: s.closing_balance })),
        totals,
      };
    },

    async getMonthStatements(ctx) {
      const month = ctx.params.month;
      const sts = await Promise.all(ctx.site.accounts.map((a) => statementFor(read, months, ctx.site, a, month)));
      ctx.res.type('text/html; charset=utf-8').setHeader('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'");
      return monthStatementsHtml(ctx.site, month, sts, ctx.query.lang as 'zh' | 'en', formatLocal(now(), ctx.site.timezone));
    },

    async getMaster(ctx) {
      const { from, to } = range(ctx);
      const days = await read.masterDays(ctx.site, from, to);
      const tot = (k: keyof (typeof days)[number]) => days.reduce((s, d) => s + parseFixedOr0(String(d[k]), 3), 0);
      return { from, to, totals: masterDay(from, tot('kwh'), tot('tenant_kwh'), tot('common_kwh'), tot('loss_kwh'), tot('loss_allocated_kwh'), tot('loss_abnormal_kwh')), days };
    },

    async getReconcile(ctx) {
      const { from, to } = range(ctx);
      if (!ctx.site.utility) throw conflict("the site file has no 'utility' key (utility: { tariff: <id>, markup_cap: 0.1 }); nothing to reconcile against");
      const [days, statements, lines] = await Promise.all([read.cells(ctx.site, from, to), read.statements(ctx.site, ctx.site.accounts, from, to), linesPerDay(deps.influx, ctx.site, from, to)]);
      // The core's reconcile on the stored settlement: the day cells (the utility's charge),
      // each day's lines (each tenant's mix at the utility's prices) and the accounts'
      // totals, which the statements hold (equal to the core bill, api.test.ts).
      const tz = ctx.site.timezone;
      const dates = [...new Set([...days.map((d) => d.date), ...lines.keys()])].sort();
      const cellsOf = new Map(days.map((d) => [d.date, d.cells]));
      const settled = { site: ctx.site, from, to, fromMs: localMidnight(from, tz), toMs: localMidnight(to, tz), days: dates.map((date) => ({ date, lines: lines.get(date) ?? [], cells: cellsOf.get(date) ?? [], flags: [] })), fromDay: 0, flags: [] };
      const accounts = statements.map((st) => ({ account: st.account, lines: st.lines, kwh: st.kwh, total_amount: st.total_amount, opening_balance: st.opening_balance, payments: st.payments, closing_balance: st.closing_balance }));
      try {
        return reconcile(settled, { site: ctx.site.id, from, to, currency: ctx.site.currency, accounts, master: undefined as never, quality: [] });
      } catch (err) {
        if (err instanceof BillingInputError) throw conflict(err.message);
        throw err;
      }
    },

    async getMeterHealth(ctx) {
      return { meters: await read.meterHealth(ctx.site, now()) };
    },

    async getQuality(ctx) {
      const { from, to } = range(ctx);
      const flags = await read.events(ctx.site, { kinds: QUALITY_KINDS, from: localMidnight(from, ctx.site.timezone), to: localMidnight(to, ctx.site.timezone), limit: 1000 });
      return { from, to, flags };
    },

    async listMonths(ctx) {
      return { months: await months.list(ctx.site.id) };
    },

    async closeMonth(ctx) {
      const month = ctx.params.month;
      const today = localParts(now(), ctx.site.timezone).date;
      if (`${nextMonth(month)}-01` > today) throw conflict(`${month} is not over yet; it can be closed from ${nextMonth(month)}-01`);
      const { from, to } = monthRange(month);
      // Freeze only a settled month: the workers write the site_day summary of each day
      // they settle, so its last day must be there (settlement runs after midnight + grace).
      if (!(await read.daySettled(ctx.site, addDays(to, -1)))) throw conflict(`the last day of ${month} (${addDays(to, -1)}) is not settled yet; try again after the settlement run`);
      read.cache.clear(); // freeze what the data says now, not a cached view
      const statements = await read.statements(ctx.site, ctx.site.accounts, from, to);
      const closed = { month, closed_at: new Date(now()).toISOString(), by: actor(ctx.auth), statements };
      if (!(await months.close(ctx.site.id, closed))) throw conflict(`${month} is already closed`);
      read.cache.clear(); // nothing cached may still say the month is open
      const total = statements.reduce((s, st) => s + parseFixedOr0(st.total_amount, 2), 0);
      await writeAudit(ctx, 'month.close', month, { accounts: statements.length, total_amount: moneyText(total) });
      return { month, closed_at: closed.closed_at, accounts: statements.length, total_amount: moneyText(total) };
    },

    async listTokens(ctx) {
      return { tokens: await tokens.list(ctx.site.id) };
    },

    async createToken(ctx) {
      const role = ctx.body.role as Role;
      const account = ctx.body.account as string | undefined;
      const label = ctx.body.label as string | undefined;
      const problem = validateNewToken({ site: ctx.site.id, role, account });
      if (problem) throw badRequest(problem, `${ctx.req.path}#account`);
      if (account && !ctx.site.accounts.some((a) => a.id === account)) throw notFound(`no account ${account}`);
      const created = await tokens.create({ site: ctx.site.id, role, account, label });
      await writeAudit(ctx, 'token.create', created.record.id, { role, ...(account ? { account } : {}), ...(label ? { label } : {}) });
      ctx.res.status(201);
      return created;
    },

    async revokeToken(ctx) {
      if (!(await tokens.revoke(ctx.site.id, ctx.params.id))) throw notFound(`no token ${ctx.params.id}`);
      await writeAudit(ctx, 'token.revoke', ctx.params.id, {});
      ctx.res.status(204);
      return undefined;
    },

    async reloadSite(ctx) {
      try {
        const next = deps.site.reload();
        read.cache.clear();
        // The workers reload their own copy of the file and re-settle what it touches (billing.md section 11).
        await deps.redis.publish(siteReloadChannel(deps.workersKeyPrefix ?? 'submeter'), next.id).catch((err: Error) => log.warn({ err: err.message }, 'could not tell the workers about the reload'));
        await writeAudit(ctx, 'site.reload', next.id, { ok: true });
        return { site: next.id, name: next.name, meters: next.meters.length, accounts: next.accounts.length, pools: next.pools.length, tariffs: next.tariffs.length };
      } catch (err) {
        log.warn({ err }, 'site reload refused');
        await writeAudit(ctx, 'site.reload', ctx.site.id, { ok: false, reason: err instanceof InputFileError ? err.reason : err instanceof SiteFileError ? `invalid site file: ${err.issues.length} problem(s)` : (err as Error).message.split('\n')[0] });
        if (err instanceof SiteFileError) {
          throw new HttpError(422, 'invalid_site', `the site file has ${err.issues.length} problem(s); the running site is unchanged`, {
            issues: err.issues.map((i) => ({ path: i.path, message: i.message, ...(i.line ? { line: i.line } : {}) })),
          });
        }
        if (err instanceof SiteMismatchError) throw conflict(err.message);
        // The reason only: an answer never carries a server file path.
        throw new HttpError(422, 'site_unreadable', err instanceof InputFileError ? err.reason : 'the site file cannot be read; see the server log');
      }
    },

    async createLoginLink(ctx) {
      const a = accountOf(ctx);
      const label = ctx.body.label as string | undefined;
      const minutes = (ctx.body.minutes as number | undefined) ?? DEFAULT_LINK_MINUTES;
      // The page's address as the tenant will reach it: the manager page sends its own.
      const base = ((ctx.body.base_url as string | undefined) ?? `${ctx.req.protocol}://${ctx.req.get('host')}/`).replace(/\/?$/, '/');
      const { code, expiresAt } = await sessions.issueLink({ site: ctx.site.id, account: a.id, label, by: actor(ctx.auth), minutes });
      // The code goes in the fragment: browsers never send it to a server, so no proxy or
      // access log sees it, and the page removes it from the address bar once used.
      const url = `${base}#login=${code}`;
      const qr = await QRCode.toString(url, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
      await writeAudit(ctx, 'login-link.create', a.id, { minutes, ...(label ? { label } : {}) });
      ctx.res.status(201);
      return { account: a.id, url, code, expires: formatLocal(expiresAt, ctx.site.timezone), qr_svg: qr };
    },

    async startSession(ctx) {
      const address = ctx.req.ip ?? 'unknown';
      const tooMany = (ms: number) => {
        ctx.res.setHeader('Retry-After', String(Math.ceil(ms / 1000)));
        return new HttpError(429, 'too_many_requests', 'too many failed attempts from this address; try again later');
      };
      const wait = await limiter.blocked(address);
      if (wait !== undefined) throw tooMany(wait);
      const used = await sessions.redeem(String(ctx.body.code), ctx.site.id);
      const account = used && ctx.site.accounts.find((x) => x.id === used.session.account);
      if (!used || !account) {
        // A guessed or replayed code counts like a failed login.
        const over = await limiter.fail(address);
        if (over !== undefined) throw tooMany(over);
        if (used) await sessions.revoke(used.session.id);
        throw new HttpError(401, 'unauthorized', 'this login link is unknown, already used or expired; ask your property manager for a new one');
      }
      ctx.res.cookie(SESSION_COOKIE, used.secret, { ...sessionCookie(ctx.req), maxAge: SESSION_DAYS * 86_400_000 });
      await audit.append({ time: new Date(now()).toISOString(), site: ctx.site.id, actor: `device:${used.session.id}`, action: 'session.start', target: account.id, detail: used.session.label ? { label: used.session.label } : {} });
      ctx.res.status(201);
      return { account: account.id, account_name: account.name, session_id: used.session.id };
    },

    async endSession(ctx) {
      if (ctx.auth.via !== 'session') throw conflict('this request used a token, not a device session; a manager revokes tokens with DELETE /api/v1/tokens/{id}');
      await sessions.revoke(ctx.auth.id);
      ctx.res.clearCookie(SESSION_COOKIE, sessionCookie(ctx.req));
      ctx.res.status(204);
      return undefined;
    },

    async listDeviceSessions(ctx) {
      const a = accountOf(ctx);
      return { sessions: (await sessions.list(a.id)).map((x) => ({ id: x.id, account: x.account, ...(x.label ? { label: x.label } : {}), created: x.created })) };
    },

    async revokeDeviceSession(ctx) {
      if (!(await sessions.revoke(ctx.params.id))) throw notFound(`no device session ${ctx.params.id}`);
      await writeAudit(ctx, 'session.revoke', ctx.params.id, {});
      ctx.res.status(204);
      return undefined;
    },

    async getAudit(ctx) {
      return { entries: await audit.list(ctx.site.id, Number(ctx.query.limit ?? 100)) };
    },

    // Prepaid enforcement (issue 13): api/relay.ts.
    ...relayHandlers({ redis: deps.redis, keyPrefix: deps.workersKeyPrefix, now, accountOf, writeAudit }),
  } satisfies Record<string, Handler>);

  Object.assign(handlers, topup.handlers);

  const routes = new Map<string, (req: Request, res: Response, next: NextFunction) => Promise<void>>();
  const answers = new Map<string, (req: Request, res: Response) => Promise<unknown>>();
  function answerOf(op: Operation) {
    return answers.get(op.operationId)!;
  }
  function routeOf(op: Operation) {
    return routes.get(op.operationId)!;
  }
  for (const op of operations()) {
    const handler = handlers[op.operationId];
    if (!handler) throw new Error(`no handler for operation ${op.operationId}`);
    const v = validator.request(op.path, op.method);
    const expressPath = op.path.replace(/\{(\w+)\}/g, ':$1');
    // The route's checks and handler; what it answers (the tenant lane runs it too).
    const answer = async (req: Request, res: Response): Promise<unknown> => {
      // A public operation has no caller yet (its handler does not read ctx.auth).
      const auth = op.public ? (undefined as unknown as TokenRecord) : res.locals.auth!;
      // A tenant naming any account but its own gets 404 before anything else, even on a
      // route its role may not use: no answer tells it which accounts exist.
      if (!op.public && auth.role === 'tenant' && req.params.account !== undefined && req.params.account !== auth.account) throw notFound(`no account ${req.params.account}`);
      if (!op.public && !op.roles.includes(auth.role)) throw forbidden(`a ${auth.role} token may not ${op.method.toUpperCase()} ${op.path}`);
      const params = { ...(req.params as Record<string, string>) };
      if (!v.params(params)) throw badRequest(`bad path parameter: ${formatErrors(v.params.errors).join('; ')}`, req.path);
      const query = { ...(req.query as Record<string, string>) };
      if (!v.query(query)) throw badRequest(`bad query: ${formatErrors(v.query.errors).join('; ')}`, `${req.path}?${firstPath(v.query.errors)}`);
      // A body the route reads must be JSON (express.json leaves any other type unparsed).
      if (v.body && !req.is('application/json')) throw unsupportedMediaType('the body must be JSON: send Content-Type: application/json');
      const body = (req.body ?? {}) as Record<string, unknown>;
      if (v.body && !v.body(body)) throw badRequest(`bad body: ${formatErrors(v.body.errors).join('; ')}`, `${req.path}#${firstPath(v.body.errors)}`);
      return handler({ req, res, site: site(), auth, params, query, body });
    };
    const route = async (req: Request, res: Response, next: NextFunction) => {
      try {
        const out = await answer(req, res);
        if (res.statusCode === 204) res.end();
        else if (typeof out === 'string' || Buffer.isBuffer(out)) res.send(out);
        else res.json(out);
      } catch (err) {
        next(err);
      }
    };
    routes.set(op.operationId, route);
    answers.set(op.operationId, answer);
    if (!op.public) app[op.method](expressPath, route);
  }

  // A known path with a method it does not have: 405 with the methods it has (RFC 9110
  // section 15.5.6), not 404.
  const byPath = new Map<RegExp, string[]>();
  for (const op of operations()) {
    const re = new RegExp(`^${op.path.replace(/\{\w+\}/g, '[^/]+')}/?$`);
    const known = [...byPath.keys()].find((k) => k.source === re.source);
    if (known) byPath.get(known)!.push(op.method.toUpperCase());
    else byPath.set(re, [op.method.toUpperCase()]);
  }
  app.use('/api', (req, _res, next) => {
    for (const [re, methods] of byPath) {
      if (!re.test(req.originalUrl.split('?')[0])) continue;
      const allow = [...new Set([...methods, ...(methods.includes('GET') ? ['HEAD'] : [])])].join(', ');
      return next(new HttpError(405, 'method_not_allowed', `${req.method} is not allowed on ${req.originalUrl.split('?')[0]}; allowed: ${allow}`, { allow }));
    }
    next();
  });

  app.use(notFoundHandler);
  app.use(errorHandler(log));
  return app;
}

/** Accounts by id per site object (a tenant request names one of 1,000: not a scan of the list each time). */
const accountMaps = new WeakMap<Site, Map<string, Account>>();
function accountById(site: Site, id: string): Account | undefined {
  let m = accountMaps.get(site);
  if (!m) accountMaps.set(site, (m = new Map(site.accounts.map((a) => [a.id, a]))));
  return m.get(id);
}

/** A number per site object: a reloaded site file is another object, so results of the old one are not served. */
const siteStamps = new WeakMap<Site, number>();
let nextSiteStamp = 0;
function siteStamp(site: Site): number {
  let n = siteStamps.get(site);
  if (n === undefined) siteStamps.set(site, (n = ++nextSiteStamp));
  return n;
}

function firstPath(errors: readonly { instancePath: string; params?: Record<string, unknown> }[] | null | undefined): string {
  const e = errors?.[0];
  if (!e) return '';
  const p = e.instancePath.replace(/^\//, '');
  const extra = (e.params?.additionalProperty ?? e.params?.missingProperty) as string | undefined;
  return p || extra || '';
}

function parseFixedOr0(text: string, places: number): number {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
  if (!m) return 0;
  const v = Number(m[2] + (m[3] ?? '').padEnd(places, '0').slice(0, places));
  return m[1] === '-' ? -v : v;
}

function sumKwh(k: { own: string; common: string; loss: string }): number {
  return parseFixedOr0(k.own, 3) + parseFixedOr0(k.common, 3) + parseFixedOr0(k.loss, 3);
}
