import { Point } from '@influxdata/influxdb-client';
import { addDays, buildCalendar, moneyFen, moneyText, PERIODS, siteIndex, zoneOf } from '../core/index.ts';
import type { Account, Period, Site } from '../core/index.ts';
import { quoteString } from '../influx/client.ts';
import { F, M, T } from '../influx/schema.ts';
import { idRegex, siteOf } from './context.ts';
import type { WorkerContext } from './context.ts';
import { redisKeys } from './keys.ts';
import { costRateFenPerHour, hoursToZero, liveBalanceFen, lowBalanceStep, toFen, unsettledCost } from './live-balance.ts';
import type { AlertState, UnsettledEnergy } from './live-balance.ts';
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

/** End of the last settled day (UTC ms), or undefined before any settlement. */
async function settledUntil(ctx: WorkerContext, site: Site): Promise<number | undefined> {
  const rows = await ctx.influx.query(`SELECT last(${F.masterWh}) FROM ${M.siteDay} WHERE ${T.site} = ${quoteString(site.id)}`);
  if (!rows[0]) return undefined;
  const zone = zoneOf(site.timezone);
  return zone.midnight(addDays(zone.dateOf(rows[0].time as number), 1));
}

/** Alert state of each account: Redis, or (Redis lost it) re-derived from the events and the ledger. */
async function alertStates(ctx: WorkerContext, site: Site): Promise<Map<string, AlertState>> {
  const key = redisKeys(ctx.keyPrefix, site.id).alertState;
  const stored = await ctx.redis.hgetall(key);
  const out = new Map<string, AlertState>();
  const missing: string[] = [];
  for (const a of site.accounts) {
    const s = stored[a.id];
    if (s === 'armed' || s === 'fired') out.set(a.id, s);
    else missing.push(a.id);
  }
  if (missing.length) {
    const ev = await ctx.influx.query(
      `SELECT last(${F.value}) FROM ${M.event} WHERE ${T.site} = ${quoteString(site.id)} AND ${T.kind} = 'low_balance' AND ${T.account} =~ ${idRegex(missing)} GROUP BY ${T.account}`,
    );
    const pay = await ctx.influx.query(`SELECT last(${F.fen}) FROM ${M.payment} WHERE ${T.site} = ${quoteString(site.id)} AND ${T.account} =~ ${idRegex(missing)} GROUP BY ${T.account}`);
    const lastPay = new Map(pay.map((r) => [r.account as string, r.time as number]));
    for (const id of missing) {
      const e = ev.find((r) => r.account === id);
      // Fired after the last payment -> still fired; else armed (a payment re-arms).
      out.set(id, e && (e.time as number) > (lastPay.get(id) ?? -Infinity) ? 'fired' : 'armed');
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
  const charged = await sumsBy(ctx, `SELECT sum(${F.fen}) FROM ${M.charge} WHERE ${T.site} = ${sq} GROUP BY ${T.account}`, 'account');
  const paid = await sumsBy(ctx, `SELECT sum(${F.fen}) FROM ${M.payment} WHERE ${T.site} = ${sq} AND time <= ${now}ms GROUP BY ${T.account}`, 'account');
  const until = (await settledUntil(ctx, site)) ?? 0;
  const dayAgo = now - 86_400_000;
  const rows = await ctx.influx.query(
    `SELECT ${F.wh} FROM ${M.touBucket} WHERE ${T.site} = ${sq} AND ${T.role} = 'tenant' AND time >= ${Math.min(until, dayAgo)}ms AND time <= ${now}ms GROUP BY ${T.account}, ${T.period}`,
  );
  const unsettled: UnsettledEnergy[] = [];
  const trailing: UnsettledEnergy[] = [];
  for (const r of rows) {
    const t = r.time as number;
    const e = { account: r.account as string, date: zone.dateOf(t), period: r.period as Period, wh: r.wh as number };
    if (t >= until) unsettled.push(e);
    if (t >= dayAgo) trailing.push(e);
  }
  const cost = unsettledCost(site, unsettled);
  const spent = unsettledCost(site, trailing);

  // Power now: the last interval of each tenant meter in the last hour.
  const tenants = site.meters.filter((m) => m.role === 'tenant');
  const last2 = tenants.length
    ? await ctx.influx.queryRaw(
        `SELECT ${F.wh} FROM ${M.reading} WHERE ${T.site} = ${sq} AND ${T.meter} =~ ${idRegex(tenants.map((m) => m.id))} AND time > ${now - 3_600_000}ms AND time <= ${now}ms GROUP BY ${T.meter} ORDER BY time DESC LIMIT 2`,
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

  const states = await alertStates(ctx, site);
  const key = redisKeys(ctx.keyPrefix, site.id).alertState;
  const lines: string[] = [];
  const out: AccountBalance[] = [];
  const fires: { account: Account; balance: number; why: string }[] = [];
  const changed: Record<string, AlertState> = {};
  for (const account of site.accounts) {
    const a = account.id;
    const closing = moneyFen(account.openingBalance) + (paid.get(a) ?? 0) - (charged.get(a) ?? 0);
    const unsettledUnits = cost.get(a) ?? 0n;
    const balance = liveBalanceFen(closing, unsettledUnits);
    const micro = idx.price(account.tariff, today, periodNow) ?? 0;
    let rate = 0;
    let watts = 0;
    for (const m of tenants) {
      if (m.account !== a) continue;
      const iv = interval.get(m.id);
      if (!iv || iv.dMs <= 0) continue;
      rate += costRateFenPerHour(iv.dWh, iv.dMs, micro);
      watts += (iv.dWh * 3_600_000) / iv.dMs; // display only (w is a float field)
    }
    const hours = hoursToZero(balance, spent.get(a) ?? 0n);
    const low = account.lowBalance !== undefined ? moneyFen(account.lowBalance) : undefined;
    const step = lowBalanceStep({ state: states.get(a) ?? 'armed', balanceFen: balance, lowBalanceFen: low, hoursLeft: hours, lowBalanceHours: account.lowBalanceHours });
    if (step.state !== states.get(a)) changed[a] = step.state;
    if (step.fire) fires.push({ account, balance, why: step.why! });
    const p = new Point(M.balance)
      .tag(T.site, site.id)
      .tag(T.account, a)
      .intField(F.balanceFen, balance)
      .intField(F.costRateFenH, rate)
      .intField(F.costTodayFen, toFen(unsettledUnits))
      .floatField(F.w, Math.round(watts))
      .floatField(F.price, micro / 1e6) // display only
      .stringField(F.periodNow, periodNow);
    if (hours !== undefined) p.floatField(F.hoursLeft, hours);
    if (low !== undefined) p.intField(F.lowBalanceFen, low);
    lines.push(p.timestamp(now).toLineProtocol()!);
    out.push({ account: a, closingFen: closing, balanceFen: balance, costTodayFen: toFen(unsettledUnits), costRateFenH: rate, hoursLeft: hours, fired: step.fire });
  }
  for (const f of fires) {
    const detail =
      f.why === 'balance'
        ? `balance ${moneyText(f.balance)} fell below ${f.account.lowBalance}`
        : `balance ${moneyText(f.balance)} lasts under ${f.account.lowBalanceHours} h at the last 24 h spending rate`;
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
