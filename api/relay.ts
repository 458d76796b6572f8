import type { RedisClient } from '../lib/redis.ts';
import { DEFAULT_ENFORCEMENT, metersOccupiedBy, policyFor } from '../core/index.ts';
import type { Account, Site } from '../core/index.ts';
import { RelayStore } from '../lib/relay-store.ts';
import type { CommandRecord, OverrideRecord, ReadbackRecord, RelayAuditEntry, WantedRecord } from '../lib/relay-store.ts';
import type { HandlerCtx, RouteHandler } from './handler.ts';
import { conflict } from './errors.ts';
import { moneyText } from './format.ts';
import { formatLocal } from './local-time.ts';
import { relayWhy } from './relay-text.ts';
import type { Lang } from './relay-text.ts';

/**
 * Prepaid enforcement on the API (issue 13). Tenants see their own power supply: on or
 * off, why, since when, and how much to pay to get it back. Managers and viewers see every
 * account's relay, the pending and failed commands and the audit trail; managers hold,
 * release, force a trip or force power on, each with a reason, written to the API audit
 * log and the relay audit trail. The overrides act at the workers' next enforcement cycle
 * (every few seconds); in dry-run nothing is sent whatever they say.
 *
 * The relay state is read from Redis (lib/relay-store.ts), where the workers keep what the
 * policy wants and the collector what the meters read back.
 */

type RelayCtx = HandlerCtx;
type Handler = RouteHandler;

export interface RelayApiDeps {
  readonly redis: RedisClient;
  /** The workers' key prefix (where the relay state lives). @defaultValue 'submeter' */
  readonly keyPrefix?: string;
  readonly now: () => number;
  readonly accountOf: (ctx: RelayCtx) => Account;
  readonly writeAudit: (ctx: RelayCtx, action: string, target: string | undefined, detail: Record<string, unknown>) => Promise<void>;
}

/** The relay meters of the units the account occupies at t (billing.md section 11), as the enforcement worker takes them. */
const relayMeters = (site: Site, account: string, t: number) => metersOccupiedBy(listing(site, account), account, t).filter((m) => m.relay !== undefined);

/**
 * The site with only the meters whose site-file entry lists the account (`account` or
 * `accounts`): the only ones it can ever occupy, so the core's metersOccupiedBy decides
 * among one or two meters instead of the site's thousand on every tenant request (issue
 * 15). One per site object and account; a reloaded site is another object.
 */
const listings = new WeakMap<Site, Map<string, Site>>();
function listing(site: Site, account: string): Site {
  let bySite = listings.get(site);
  if (!bySite) listings.set(site, (bySite = new Map()));
  let narrowed = bySite.get(account);
  if (!narrowed) bySite.set(account, (narrowed = { ...site, meters: site.meters.filter((m) => (m.accounts ?? (m.account ? [m.account] : [])).includes(account)) }));
  return narrowed;
}

/** The account's power as read back: on when every relay meter reads closed, off when every one reads open. */
function power(site: Site, account: string, readbacks: ReadonlyMap<string, ReadbackRecord>, t: number): { power: 'on' | 'off' | 'unknown'; at: number | undefined } {
  const meters = relayMeters(site, account, t);
  const rb = meters.map((m) => readbacks.get(m.id));
  const at = rb.reduce<number | undefined>((t, r) => (r ? Math.min(t ?? r.at, r.at) : t), undefined);
  if (rb.length > 0 && rb.every((r) => r?.state === 'closed')) return { power: 'on', at };
  if (rb.length > 0 && rb.every((r) => r?.state === 'open')) return { power: 'off', at };
  return { power: 'unknown', at };
}

function overrideView(o: OverrideRecord | undefined, tz: string, now: number) {
  if (!o || (o.until !== undefined && o.until <= now)) return null;
  return { kind: o.kind, reason: o.reason, by: o.by, at: formatLocal(o.at, tz), until: o.until !== undefined ? formatLocal(o.until, tz) : null };
}

function commandView(c: CommandRecord, tz: string) {
  return {
    id: c.id,
    account: c.account,
    target: c.target === 'open' ? 'off' : 'on',
    version: c.version,
    status: c.status,
    reason: c.reason,
    by: c.by,
    created: formatLocal(c.createdAt, tz),
    updated: formatLocal(c.updatedAt, tz),
    meters: Object.entries(c.meters).map(([meter, p]) => ({ meter, status: p.status, reply: p.replyText ?? null, sends: p.sends ?? 0 })),
  };
}

function auditView(e: RelayAuditEntry & { id: string }, tz: string) {
  return {
    id: e.id,
    time: formatLocal(e.time, tz),
    kind: e.kind,
    account: e.account ?? null,
    meter: e.meter ?? null,
    command: e.command ?? null,
    balance: e.balanceFen !== undefined ? moneyText(e.balanceFen) : null,
    reason: e.reason ?? null,
    detail: e.detail ?? null,
    before: e.before ?? null,
    after: e.after ?? null,
    by: e.by ?? null,
  };
}

/**
 * The tenant's view (no other account's id or figure in it). Only `on` mode switches
 * anything: in dry-run a used-up balance is a plain "please pay", never a cut.
 */
function tenantView(site: Site, a: Account, w: WantedRecord | undefined, readbacks: ReadonlyMap<string, ReadbackRecord>, lang: Lang, now: number) {
  const tz = site.timezone;
  const policy = policyFor(site.enforcement ?? DEFAULT_ENFORCEMENT, a.id);
  const hasRelay = relayMeters(site, a.id, now).length > 0;
  const p = power(site, a.id, readbacks, now);
  const mode = w?.mode ?? policy.mode;
  const live = mode === 'on' && hasRelay;
  const off = live && (p.power === 'off' || (p.power === 'unknown' && w?.state === 'open'));
  const exhausted = w?.reason === 'balance-exhausted' || w?.reason === 'below-reconnect';
  const reason = !hasRelay ? 'no-relay' : mode === 'off' ? 'mode-off' : !w ? 'no-balance' : off ? (w.reason === 'force-trip' ? 'force-trip' : 'below-reconnect') : !live && exhausted ? 'debt' : w.state === 'open' ? 'balance-ok' : w.reason;
  const restore = off && w && w.restoreFen > 0 ? moneyText(w.restoreFen) : null;
  const deferred = live && !off && w?.deferred ? w.deferred : undefined;
  const cutAt = deferred?.reason === 'protected-window' && deferred.until !== undefined ? formatLocal(deferred.until, tz) : null;
  return {
    account: a.id,
    relay: hasRelay,
    mode,
    power: p.power,
    wanted: w && live ? (w.state === 'open' ? 'off' : 'on') : 'on',
    since: w && live ? formatLocal(w.since, tz) : null,
    reason,
    why: relayWhy(lang, reason, { ...(deferred ? { deferred: deferred.reason, ...(cutAt ? { until: cutAt } : {}) } : {}), warning: w?.warning ?? 'none', ...(restore ? { restore } : {}) }),
    restore_amount: restore,
    cut_at: cutAt,
    warning: w?.warning ?? 'none',
    read_at: p.at !== undefined ? formatLocal(p.at, tz) : null,
  };
}

export function relayHandlers(deps: RelayApiDeps): Record<string, Handler> {
  const storeOf = (site: Site) => new RelayStore(deps.redis, site.id, deps.keyPrefix ?? 'submeter');

  const override = async (ctx: RelayCtx, kind: OverrideRecord['kind']) => {
    const a = deps.accountOf(ctx);
    if (relayMeters(ctx.site, a.id, deps.now()).length === 0) throw conflict(`account ${a.id} has no meter with a relay (meters[].relay in the site file)`);
    const policy = policyFor(ctx.site.enforcement ?? DEFAULT_ENFORCEMENT, a.id);
    if (kind === 'force-trip' && policy.protected) throw conflict(`account ${a.id} is protected (保电): it is never tripped; change enforcement.accounts.${a.id}.protected in the site file first`);
    const now = deps.now();
    const reason = String(ctx.body.reason);
    let until: number | undefined;
    if (ctx.body.until !== undefined) {
      until = Date.parse(String(ctx.body.until));
      if (!(until > now)) throw conflict('until must be in the future');
    }
    const by = `${ctx.auth.role}:${ctx.auth.id}`;
    const store = storeOf(ctx.site);
    const record: OverrideRecord = { kind, reason, by, at: now, ...(until !== undefined ? { until } : {}) };
    await store.setOverride(a.id, record);
    await store.audit({ time: now, kind: 'override', account: a.id, reason, by, detail: `${kind}${until !== undefined ? ` until ${formatLocal(until, ctx.site.timezone)}` : ' until released'}: ${reason}` });
    await deps.writeAudit(ctx, `relay.${kind}`, a.id, { reason, ...(until !== undefined ? { until: new Date(until).toISOString() } : {}) });
    return {
      account: a.id,
      override: overrideView(record, ctx.site.timezone, now),
      mode: policy.mode,
      note: policy.mode === 'on' ? 'applies at the next enforcement cycle (within seconds)' : `enforcement mode is ${policy.mode}: recorded, nothing is sent`,
    };
  };

  return {
    async getRelay(ctx) {
      const a = deps.accountOf(ctx);
      const store = storeOf(ctx.site);
      const now = deps.now();
      // The account's entry and its relay meters' read-backs only: O(1) in the site's size.
      const [wanted, readbacks] = await Promise.all([store.wantedOf(a.id), store.readbacksOf(relayMeters(ctx.site, a.id, now).map((m) => m.id))]);
      return tenantView(ctx.site, a, wanted, readbacks, (ctx.query.lang as Lang) ?? 'zh', now);
    },

    async listRelays(ctx) {
      const store = storeOf(ctx.site);
      const now = deps.now();
      const tz = ctx.site.timezone;
      const [wanted, readbacks, overrides, commands] = await Promise.all([store.wanted(), store.readbacks(), store.overrides(), store.commands()]);
      const cmds = [...commands.values()].sort((x, y) => y.updatedAt - x.updatedAt);
      const accounts = ctx.site.accounts
        .filter((a) => relayMeters(ctx.site, a.id, now).length > 0)
        .map((a) => {
          const w = wanted.get(a.id);
          const policy = policyFor(ctx.site.enforcement ?? DEFAULT_ENFORCEMENT, a.id);
          const p = power(ctx.site, a.id, readbacks, now);
          return {
            account: a.id,
            name: a.name,
            mode: policy.mode,
            protected: policy.protected,
            power: p.power,
            wanted: w ? (w.state === 'open' ? 'off' : 'on') : 'on',
            since: w ? formatLocal(w.since, tz) : null,
            reason: w?.reason ?? null,
            detail: w?.detail ?? null,
            deferred: w?.deferred ? { reason: w.deferred.reason, until: w.deferred.until !== undefined ? formatLocal(w.deferred.until, tz) : null, detail: w.deferred.detail } : null,
            balance: w?.balanceFen !== undefined ? moneyText(w.balanceFen) : null,
            restore_amount: w && w.restoreFen > 0 ? moneyText(w.restoreFen) : null,
            warning: w?.warning ?? 'none',
            mismatch: policy.mode === 'on' && w !== undefined && p.power !== 'unknown' && (p.power === 'on') !== (w.state === 'closed'),
            override: overrideView(overrides.get(a.id), tz, now),
            meters: relayMeters(ctx.site, a.id, now).map((m) => {
              const r = readbacks.get(m.id);
              return { meter: m.id, control: m.relay!, state: r?.state ?? 'unknown', read_at: r ? formatLocal(r.at, tz) : null, text: r?.text ?? null, error: r?.error ?? null };
            }),
          };
        });
      return {
        accounts,
        pending: cmds.filter((c) => c.status === 'queued' || c.status === 'running').map((c) => commandView(c, tz)),
        failed: cmds.filter((c) => c.status === 'refused' || c.status === 'mismatch' || c.status === 'failed' || c.status === 'unsupported').slice(0, 100).map((c) => commandView(c, tz)),
      };
    },

    async getRelayAudit(ctx) {
      const store = storeOf(ctx.site);
      const limit = Number(ctx.query.limit ?? 100);
      const account = ctx.query.account;
      return { entries: (await store.auditTrail(limit, account)).map((e) => auditView(e, ctx.site.timezone)) };
    },

    holdRelay: (ctx) => override(ctx, 'hold'),
    tripRelay: (ctx) => override(ctx, 'force-trip'),
    closeRelay: (ctx) => override(ctx, 'force-close'),

    async releaseRelay(ctx) {
      const a = deps.accountOf(ctx);
      const store = storeOf(ctx.site);
      const reason = String(ctx.body.reason);
      const had = await store.clearOverride(a.id);
      if (!had) throw conflict(`account ${a.id} has no hold or forced state to release`);
      const now = deps.now();
      await store.audit({ time: now, kind: 'release', account: a.id, reason, by: `${ctx.auth.role}:${ctx.auth.id}`, detail: `override released: ${reason}` });
      await deps.writeAudit(ctx, 'relay.release', a.id, { reason });
      return { account: a.id, override: null, mode: policyFor(ctx.site.enforcement ?? DEFAULT_ENFORCEMENT, a.id).mode, note: 'the policy applies again at the next enforcement cycle' };
    },
  };
}
