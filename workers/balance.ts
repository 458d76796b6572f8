import { Point } from '@influxdata/influxdb-client';
import { addDays, buildCalendar, checkLowBalance, costRate, Dec, hoursToZero, liveBalance, moneyFen, moneyText, PERIODS, siteIndex, zoneOf } from '../core/index.ts';
import type { Account, AlertState, LocalDate, Period, Site, UnsettledEnergy } from '../core/index.ts';
import { quoteString } from '../influx/client.ts';
import { F, M, T } from '../influx/schema.ts';
import { idRegex, siteOf } from './context.ts';
import type { WorkerContext } from './context.ts';
import { redisKeys } from './keys.ts';
import { notifyJobId, NOTIFY_OPTS } from './queues.ts';
import type { BalanceJob, NotifyJob } from './queues.ts';

/**
 * Balance: ledger (payments), settled charges and today's buckets from InfluxDB -> the
 * live figures of billing.md section 5 -> one `balance` point per account, and the
 * low-balance crossing (event + notification) evaluated on the same figures, so an alert
 * is as fresh as the balance.
 */

export interface AccountBalance {
  readonly account: string;
  /** Opening + payments - settled charges (fen, exact). */
  readonly closingFen: number;
  /** Live balance (fen, rounded once for display). */
  readonly balanceFen: number;
  readonly costTodayFen: number;
  readonly costRateFenH: number;
  readonly hoursLeft?: number;
  readonly fired: boolean;
}

async function sumsBy(ctx: WorkerContext, q: string, tag: string): Promise<Map<string, number>> {
  const rows = await ctx.influx.query(q);
  return new Map(rows.map((r) => [r[tag] as string, r.sum as number]));
}

/**
 * Settled charges per account (all revisions). Summing a year of charge points every few
 * seconds would dominate the balance job, so the sums are cached per process and re-read
 * when the settlement replaces the site's charges version token (or after a minute, as a
 * net for a token lost with a Redis crash).
 */
const chargeCache = new WeakMap<WorkerContext, Map<string, { version: string; at: number; sums: Map<string, number> }>>();
async function chargedSums(ctx: WorkerContext, site: Site): Promise<Map<string, number>> {
  const version = (await ctx.redis.get(redisKeys(ctx.keyPrefix, site.id).chargesVersion)) ?? '0';
  const bySite = chargeCache.get(ctx) ?? new Map();
  chargeCache.set(ctx, bySite);
  const hit = bySite.get(site.id);
  const t = Date.now();
  if (hit && hit.version === version && t - hit.at < 60_000) return hit.sums;
  const sums = await sumsBy(ctx, `SELECT sum(${F.fen}) FROM ${M.charge} WHERE ${T.site} = ${quoteString(site.id)} GROUP BY ${T.account}`, 'account');
  bySite.set(site.id, { version, at: t, sums });
  return sums;
}

/** End of the last settled day (UTC ms), or undefined before any settlement. */
async function settledUntil(ctx: WorkerContext, site: Site): Promise<number | undefined> {
  const rows = await ctx.influx.query(`SELECT last(${F.masterWh}) FROM ${M.siteDay} WHERE ${T.site} = ${quoteString(site.id)}`);
  if (!rows[0]) return undefined;
  const zone = zoneOf(site.timezone);
  return zone.midnight(addDays(zone.dateOf(rows[0].time as number), 1));
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
  }
  return out;
}

export async function processBalance(ctx: WorkerContext, job: BalanceJob): Promise<AccountBalance[]> {
  const site = siteOf(ctx, job.site);
  const now = ctx.now();
  const zone = zoneOf(site.timezone);
  const idx = siteIndex(site);
  const sq = quoteString(site.id);
  const charged = await chargedSums(ctx, site);
  const paidRows = await ctx.influx.query(`SELECT sum(${F.fen}), count(${F.fen}) FROM ${M.payment} WHERE ${T.site} = ${sq} AND time <= ${now}ms GROUP BY ${T.account}`);
  const paid = new Map(paidRows.map((r) => [r.account as string, r.sum as number]));
  const paidCount = new Map(paidRows.map((r) => [r.account as string, r.count as number]));
  const until = (await settledUntil(ctx, site)) ?? 0;
  // Own energy per account, period and local day, summed by InfluxDB (a price depends on
  // the date and period only, so these sums are exact): since the last settled day, and
  // over the last 24 h (the spending rate for hours-to-zero).
  const tariffOf = new Map(site.accounts.map((a) => [a.id, a.tariff]));
  const perDay = async (fromMs: number): Promise<Map<string, UnsettledEnergy[]>> => {
    const out = new Map<string, UnsettledEnergy[]>();
    const rows = await ctx.influx.query(
      `SELECT sum(${F.wh}) FROM ${M.touBucket} WHERE ${T.site} = ${sq} AND ${T.role} = 'tenant' AND time >= ${fromMs}ms AND time <= ${now}ms GROUP BY ${T.account}, ${T.period}, time(1d) fill(none) tz(${quoteString(site.timezone)})`,
    );
    for (const r of rows) {
      const account = r.account as string;
      const tariff = tariffOf.get(account);
      if (!tariff || !r.sum) continue;
      // Group times are local midnights; 2 h in keeps the date on a DST day.
      const date: LocalDate = zone.dateOf((r.time as number) + 7_200_000);
      const list = out.get(account) ?? [];
      list.push({ wh: r.sum as number, micro: idx.price(tariff, date, r.period as Period) ?? 0 });
      out.set(account, list);
    }
    return out;
  };
  const [unsettled, trailing] = await Promise.all([perDay(until), perDay(now - 86_400_000)]);

  // Power now: the last interval of each tenant meter in the last hour.
  const tenants = site.meters.filter((m) => m.role === 'tenant');
  // No meter regex (slow for 1,000 ids in InfluxDB 1.x): non-tenant series are ignored below.
  const last2 = tenants.length
    ? await ctx.influx.queryRaw(
        `SELECT ${F.wh} FROM ${M.reading} WHERE ${T.site} = ${sq} AND time > ${now - 3_600_000}ms AND time <= ${now}ms GROUP BY ${T.meter} ORDER BY time DESC LIMIT 2`,
      )
    : [[]];
  const interval = new Map<string, { dWh: number; dMs: number }>();
  for (const s of last2[0] ?? []) {
    const [a, b] = s.values;
    if (!a || !b) continue;
    interval.set(s.tags!.meter, { dWh: (a[1] as number) - (b[1] as number), dMs: (a[0] as number) - (b[0] as number) });
  }
  const today = zone.dateOf(now);
  const cal = buildCalendar(site, today, addDays(today, 1));
  let periodNow: Period = 'flat';
  for (let k = 0; k < cal.segments; k++) if (cal.start[k] <= now) periodNow = PERIODS[cal.period[k]];

  const states = await alertStates(ctx, site, paidCount);
  const key = redisKeys(ctx.keyPrefix, site.id).alertState;
  const lines: string[] = [];
  const out: AccountBalance[] = [];
  const fires: { account: Account; balance: number; why: string }[] = [];
  const changed: Record<string, string> = {};
  for (const account of site.accounts) {
    const a = account.id;
    const closing = moneyFen(account.openingBalance) + (paid.get(a) ?? 0) - (charged.get(a) ?? 0);
    const live = liveBalance(closing, unsettled.get(a) ?? []); // the core, section 5
    const balance = live.balanceFen;
    const costToday = new Dec(live.unsettled).mul(100).toDecimalPlaces(0, Dec.ROUND_HALF_UP).toNumber();
    const micro = idx.price(account.tariff, today, periodNow) ?? 0;
    let watts = 0;
    for (const m of tenants) {
      if (m.account !== a) continue;
      const iv = interval.get(m.id);
      if (iv && iv.dMs > 0 && iv.dWh > 0) watts += (iv.dWh * 3_600_000) / iv.dMs; // mean W of the last interval
    }
    const rate = new Dec(costRate(watts, micro)).mul(100).toDecimalPlaces(0, Dec.ROUND_HALF_UP).toNumber();
    const spent24 = new Dec(liveBalance(0, trailing.get(a) ?? []).unsettled).mul(100).toDecimalPlaces(0, Dec.ROUND_HALF_UP).toNumber();
    const hours = hoursToZero(live.balance, spent24) ?? undefined;
    const low = account.lowBalance !== undefined ? moneyFen(account.lowBalance) : undefined;
    const prev = states.get(a)!;
    const payments = paidCount.get(a) ?? 0;
    const state: AlertState = { armed: prev.armed };
    const decision = checkLowBalance(account, state, { balance: live.balance, hoursLeft: hours ?? null, paidSinceLastCheck: payments !== prev.payments });
    if (decision.state.armed !== prev.armed || payments !== prev.payments) changed[a] = JSON.stringify({ armed: decision.state.armed, payments });
    if (decision.raise) fires.push({ account, balance, why: decision.reason! });
    const p = new Point(M.balance)
      .tag(T.site, site.id)
      .tag(T.account, a)
      .intField(F.balanceFen, balance)
      .intField(F.costRateFenH, rate)
      .intField(F.costTodayFen, costToday)
      .floatField(F.w, Math.round(watts))
      .floatField(F.price, micro / 1e6) // display only
      .stringField(F.periodNow, periodNow)
      // Grafana has no site file: the name travels with the balance, shown beside the id.
      .stringField(F.accountName, account.name);
    if (hours !== undefined) p.floatField(F.hoursLeft, hours);
    if (low !== undefined) p.intField(F.lowBalanceFen, low);
    // The threshold of the hours-left alert rule (grafana/alerting.ts), per account.
    if (account.lowBalanceHours !== undefined) p.floatField(F.lowBalanceHours, account.lowBalanceHours);
    lines.push(p.timestamp(now).toLineProtocol()!);
    out.push({ account: a, closingFen: closing, balanceFen: balance, costTodayFen: costToday, costRateFenH: rate, hoursLeft: hours, fired: decision.raise });
  }
  for (const f of fires) {
    const detail = f.why;
    lines.push(new Point(M.event).tag(T.site, site.id).tag(T.kind, 'low_balance').tag(T.account, f.account.id).stringField(F.detail, detail).floatField(F.value, f.balance / 100).timestamp(now).toLineProtocol()!);
  }
  await ctx.influx.write(lines);
  // Order: events durable -> notifications queued (job id per event: no resend) -> state.
  // A crash before the state is saved re-fires only if Redis still says 'armed'.
  for (const f of fires) {
    ctx.log.info({ site: site.id, account: f.account.id, balance: f.balance }, 'low balance');
    await enqueueNotifications(ctx, site, f.account, 'low_balance', now, `Low balance: ${site.name} ${f.account.id}`, `${f.account.name} (${f.account.id}): your prepaid electricity balance is ${moneyText(f.balance)} ${site.currency}, below ${f.account.lowBalance ?? '-'} ${site.currency}. Please top up.`);
  }
  if (Object.keys(changed).length) await ctx.redis.hset(key, changed);
  return out;
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
