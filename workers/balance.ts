import { checkLowBalance, hourAtLastPower, moneyText, occupantAt, priceAt } from '../core/index.ts';
import type { Account, Meter, Site } from '../core/index.ts';
import { balanceLine } from '../influx/balance-lines.ts';
import { quoteString } from '../influx/client.ts';
import { eventLine } from '../influx/event-lines.ts';
import { stampEventWrites } from './api-stamps.ts';
import { F, M, T } from '../influx/schema.ts';
import { idRegex, siteOf } from './context.ts';
import type { WorkerContext } from './context.ts';
import { redisKeys } from './keys.ts';
import { TrailingBucketCache } from './bucket-log.ts';
import { parseLastTwo } from './last-readings.ts';
import type { LastTwo } from './last-readings.ts';
import { loadLiveFigures, sumCharges, sumPayments } from './live-figures.ts';
import type { PaidSums } from './live-figures.ts';
import { balanceWrites, SnapshotCache } from './live-snapshot.ts';
import type { AccountResult, PointFigures } from './live-snapshot.ts';
import { notifyJobId, NOTIFY_OPTS } from './queues.ts';
import type { BalanceJob, NotifyJob } from './queues.ts';

/**
 * Balance: ledger (payments), settled charges and the buckets of the unsettled days from
 * InfluxDB -> the live figures of billing.md section 5 (workers/live-figures.ts, the core's
 * liveFigures) -> one `balance` point per account, and the low-balance crossing (event +
 * notification) evaluated on the same figures, so an alert is as fresh as the balance.
 */

export interface AccountBalance {
  readonly account: string;
  /** Opening + payments - settled charges (fen, exact). */
  readonly closingFen: number;
  /** Provisional charges of the unsettled days, shares included (fen). */
  readonly provisionalFen: number;
  /** Live balance = closing - provisional (fen, exact). */
  readonly balanceFen: number;
  /** Provisional charges of the current local day (fen). */
  readonly costTodayFen: number;
  readonly costRateFenH: number;
  readonly spent24hFen: number;
  readonly hoursLeft?: number;
  readonly fired: boolean;
  /** A `balance` point was written for the account in this run (a figure changed, or the heartbeat was due). */
  readonly written: boolean;
}

/**
 * Settled charges per account (all revisions). Summing a year of charge points every few
 * seconds would dominate the balance job, so the sums are cached per process and re-read
 * when the settlement replaces the site's charges version token (or after five minutes, as
 * a net for a token lost with a Redis crash: at 100 sites a minute's net was 100 statements
 * a minute over every charge series).
 */
const chargeCache = new WeakMap<WorkerContext, Map<string, { version: string; at: number; sums: Map<string, number> }>>();
async function chargedSums(ctx: WorkerContext, site: Site): Promise<Map<string, number>> {
  const version = (await ctx.redis.get(redisKeys(ctx.keyPrefix, site.id).chargesVersion)) ?? '0';
  const bySite = chargeCache.get(ctx) ?? new Map();
  chargeCache.set(ctx, bySite);
  const hit = bySite.get(site.id);
  const t = Date.now();
  if (hit && hit.version === version && t - hit.at < 300_000) return hit.sums;
  const sums = await sumCharges(ctx.influx, site);
  bySite.set(site.id, { version, at: t, sums });
  return sums;
}

/**
 * Ledger sums per account at the run's instant, kept per process while the site's ledger
 * counter (bumped by recordPayment after every ledger write) is unchanged, `now` has not
 * reached the next entry after the sums' instant, and for at most a minute (a net for a
 * counter lost with Redis, or a writer that died between its write and its bump). The
 * statement opens every payment series of the site (one per reference), so on every run of
 * every site it grows with the ledger's history.
 */
export const PAID_SUMS_MAX_AGE_MS = 60_000;
const paidCache = new WeakMap<WorkerContext, Map<string, { version: string; at: number; sums: PaidSums }>>();
async function paidSums(ctx: WorkerContext, site: Site, now: number): Promise<PaidSums> {
  const version = (await ctx.redis.get(redisKeys(ctx.keyPrefix, site.id).ledgerVersion)) ?? '0';
  const bySite = paidCache.get(ctx) ?? new Map();
  paidCache.set(ctx, bySite);
  const hit = bySite.get(site.id);
  if (hit && hit.version === version && now >= hit.at && now - hit.at < PAID_SUMS_MAX_AGE_MS && (hit.sums.nextAt === undefined || now < hit.sums.nextAt)) return hit.sums;
  const sums = await sumPayments(ctx.influx, site, now);
  bySite.set(site.id, { version, at: now, sums });
  return sums;
}

/** The process's copy of the live snapshot it saved last (workers/live-snapshot.ts), one per context. */
const snapshotCaches = new WeakMap<WorkerContext, SnapshotCache>();
function snapshotCacheOf(ctx: WorkerContext): SnapshotCache {
  let c = snapshotCaches.get(ctx);
  if (!c) snapshotCaches.set(ctx, (c = new SnapshotCache()));
  return c;
}

/** The process's trailing-window bucket cache (workers/bucket-log.ts), one per context. */
const trailingCaches = new WeakMap<WorkerContext, TrailingBucketCache>();
function trailingCacheOf(ctx: WorkerContext): TrailingBucketCache {
  let c = trailingCaches.get(ctx);
  if (!c) {
    c = new TrailingBucketCache(ctx.redis, ctx.keyPrefix);
    trailingCaches.set(ctx, c);
  }
  return c;
}

/** The rollup's last two raw readings per meter (workers/last-readings.ts). */
async function storedLastReadings(ctx: WorkerContext, site: string): Promise<Map<string, LastTwo>> {
  const all = await ctx.redis.hgetall(redisKeys(ctx.keyPrefix, site).lastReadings);
  const out = new Map<string, LastTwo>();
  for (const [meter, text] of Object.entries(all)) {
    const p = parseLastTwo(text);
    if (p) out.set(meter, p);
  }
  return out;
}

interface StoredAlert {
  armed: boolean;
  /** Ledger payments of the account at the last check: a change means "paid since". */
  payments: number;
}

/** Alert state of each account: Redis, or (Redis lost it) re-derived from the events and the ledger. */
async function alertStates(ctx: WorkerContext, site: Site, paymentCount: ReadonlyMap<string, number>): Promise<Map<string, StoredAlert>> {
  const key = redisKeys(ctx.keyPrefix, site.id).alertState;
  const stored = await ctx.redis.hgetall(key);
  const out = new Map<string, StoredAlert>();
  const missing: string[] = [];
  for (const a of site.accounts) {
    try {
      const s = JSON.parse(stored[a.id] ?? 'null') as StoredAlert | null;
      if (s && typeof s.armed === 'boolean' && typeof s.payments === 'number') out.set(a.id, s);
      else missing.push(a.id);
    } catch {
      missing.push(a.id);
    }
  }
  if (missing.length) {
    const ev = await ctx.influx.query(
      `SELECT last(${F.value}) FROM ${M.event} WHERE ${T.site} = ${quoteString(site.id)} AND ${T.kind} = 'low_balance' AND ${T.account} =~ ${idRegex(missing)} GROUP BY ${T.account}`,
    );
    const pay = await ctx.influx.query(`SELECT last(${F.fen}) FROM ${M.payment} WHERE ${T.site} = ${quoteString(site.id)} AND ${T.account} =~ ${idRegex(missing)} GROUP BY ${T.account}`);
    const lastPay = new Map(pay.map((r) => [r.account as string, r.time as number]));
    for (const id of missing) {
      const e = ev.find((r) => r.account === id);
      // Raised after the last payment -> not re-armed yet; else armed (a payment re-arms).
      out.set(id, { armed: !(e && (e.time as number) > (lastPay.get(id) ?? -Infinity)), payments: paymentCount.get(id) ?? 0 });
    }
    // Kept, so the next runs do not ask again: an account whose state never changes (most of
    // them) was re-derived by two statements with a regex over its ids on every run.
    await ctx.redis.hset(key, Object.fromEntries(missing.map((id) => [id, JSON.stringify(out.get(id))])));
  }
  return out;
}

/**
 * The balance job: the core's live figures (section 5: settled balance less provisional
 * charges of own energy, pool and loss shares; trailing-24 h hours left; cost per hour
 * with shares) written as a `balance` point per account whose figures changed (or once a
 * minute as a heartbeat: workers/live-snapshot.ts), and the low-balance crossing.
 */
export async function processBalance(ctx: WorkerContext, job: BalanceJob): Promise<AccountBalance[]> {
  const site = siteOf(ctx, job.site);
  const now = ctx.now();
  const live = await loadLiveFigures({ influx: ctx.influx, site, now, chargedSums: () => chargedSums(ctx, site), paidSums: () => paidSums(ctx, site, now), lastReadings: () => storedLastReadings(ctx, site.id), trailingCache: trailingCacheOf(ctx) });
  for (const p of live.problems) ctx.log.error({ site: site.id, problem: p }, 'provisional settlement left a day out (the nightly settlement will refuse it too)');
  const [states, snapshot] = await Promise.all([alertStates(ctx, site, live.paymentCount), snapshotCacheOf(ctx).read(ctx.redis, ctx.keyPrefix, site.id)]);
  const key = redisKeys(ctx.keyPrefix, site.id).alertState;
  const lines: string[] = [];
  const results: AccountResult[] = [];
  const out: Omit<AccountBalance, 'written'>[] = [];
  const fires: { account: Account; balance: number; why: string }[] = [];
  const changed: Record<string, string> = {};
  const byId = new Map(site.accounts.map((a) => [a.id, a]));
  // The tenant meters of each occupant now (billing.md section 11).
  const metersOf = new Map<string, Meter[]>();
  for (const m of site.meters) {
    if (m.role !== 'tenant') continue;
    const occupant = occupantAt(site, m, now).account;
    if (occupant !== undefined) metersOf.set(occupant, [...(metersOf.get(occupant) ?? []), m]);
  }
  // The price in force now, once per tariff (priceAt per account was 2 % of the workers' CPU at 100,000 meters).
  const tariffPrice = new Map<string, number>();
  const priceOfTariff = (tariff: string): number => {
    let micro = tariffPrice.get(tariff);
    if (micro === undefined) tariffPrice.set(tariff, (micro = priceAt(site, { tariff }, now).micro ?? 0));
    return micro;
  };
  for (const figures of live.accounts) {
    const account = byId.get(figures.account)!;
    const a = account.id;
    // The account's own power now (display): its meters' last intervals, W.
    let watts = 0;
    for (const m of metersOf.get(a) ?? []) {
      // Raw register x the multiplier, not across a change.
      const iv = live.inputs.lastInterval.get(m.id);
      const wh = iv ? hourAtLastPower(m, iv, now) : undefined;
      if (wh !== undefined) watts += wh; // Wh in an hour = mean W
    }
    const hours = figures.hoursLeft ?? undefined;
    const prev = states.get(a)!;
    const payments = live.paymentCount.get(a) ?? 0;
    const decision = checkLowBalance(account, { armed: prev.armed }, { balanceFen: figures.balanceFen, hoursLeft: figures.hoursLeft, paidSinceLastCheck: payments !== prev.payments });
    if (decision.state.armed !== prev.armed || payments !== prev.payments) changed[a] = JSON.stringify({ armed: decision.state.armed, payments });
    if (decision.raise) fires.push({ account, balance: figures.balanceFen, why: decision.reason! });
    const point: PointFigures = {
      balanceFen: figures.balanceFen,
      costRateFenH: figures.costPerHourFen,
      costTodayFen: figures.todayFen,
      provisionalFen: figures.provisionalFen,
      spent24hFen: figures.spent24Fen,
      ...(hours !== undefined ? { hoursLeft: hours } : {}),
      ...(figures.lowBalanceFen !== undefined ? { lowBalanceFen: figures.lowBalanceFen } : {}),
      ...(account.lowBalanceHours !== undefined ? { lowBalanceHours: account.lowBalanceHours } : {}),
      w: watts,
      priceMicro: priceOfTariff(account.tariff),
      periodNow: live.periodNow,
      // Grafana has no site file: the name travels with the balance, shown beside the id.
      accountName: account.name,
    };
    // The live route's kWh today, when today settled provisionally.
    const own = live.todayOwn ? (live.todayOwn.get(a) ?? []) : undefined;
    results.push({ account: a, figures: point, ...(own ? { today: own } : {}) });
    out.push({
      account: a,
      closingFen: figures.closingFen,
      provisionalFen: figures.provisionalFen,
      balanceFen: figures.balanceFen,
      costTodayFen: figures.todayFen,
      costRateFenH: figures.costPerHourFen,
      spent24hFen: figures.spent24Fen,
      hoursLeft: hours,
      fired: decision.raise,
    });
  }
  const writes = balanceWrites(snapshot, results, now);
  for (const r of results) if (writes.write.has(r.account)) lines.push(balanceLine(site.id, { account: r.account, time: now, ...r.figures }));
  for (const f of fires) lines.push(eventLine(site.id, { kind: 'low_balance', account: f.account.id, detail: f.why, value: f.balance / 100, time: now }));
  if (lines.length) await ctx.influx.write(lines);
  await stampEventWrites(ctx.redis, ctx.keyPrefix, site.id, fires.map((f) => f.account.id)); // the API's stored alerts (workers/api-stamps.ts)
  // After the points: a crash in between writes them again next run (the snapshot still has the old figures).
  await snapshotCacheOf(ctx).save(ctx.redis, ctx.keyPrefix, site.id, snapshot, writes);
  // Order: events durable -> notifications queued (job id per event: no resend) -> state.
  // A crash before the state is saved re-fires only if Redis still says 'armed'.
  for (const f of fires) {
    ctx.log.info({ site: site.id, account: f.account.id, balance: f.balance }, 'low balance');
    await enqueueNotifications(ctx, site, f.account, 'low_balance', now, `Low balance: ${site.name} ${f.account.id}`, `${f.account.name} (${f.account.id}): your prepaid electricity balance is ${moneyText(f.balance)} ${site.currency}, below ${f.account.lowBalance ?? '-'} ${site.currency}. Please top up.`);
  }
  if (Object.keys(changed).length) await ctx.redis.hset(key, changed);
  return out.map((o) => ({ ...o, written: writes.write.has(o.account) }));
}

export async function enqueueNotifications(ctx: WorkerContext, site: Site, account: Account, kind: string, time: number, subject: string, text: string): Promise<void> {
  const channels: ('email' | 'webhook')[] = [];
  if (account.contact?.email) channels.push('email');
  if (account.contact?.webhook) channels.push('webhook');
  for (const channel of channels) {
    const data: NotifyJob = { site: site.id, account: account.id, kind, channel, time, subject, text };
    await ctx.queues.notify.add('notify', data, { ...NOTIFY_OPTS, jobId: notifyJobId(data) });
  }
}
