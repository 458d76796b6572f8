import { Dec } from '../../core/decimal.ts';
import type { Account, Site } from '../../core/site/index.ts';
import type { AccountBill, BillLine, ChargeKind, CellSummary } from '../../core/types.ts';
import { PERIODS, scheduleEntryOn, versionIndexOn } from '../../core/tou/schedule.ts';
import type { Period } from '../../core/tou/schedule.ts';
import type { InfluxV1, Row } from '../../influx/client.ts';
import { quoteIdent as qi, quoteString as qs, rowsOf } from '../../influx/client.ts';
import { F, M, T } from '../../influx/schema.ts';
import { moneyFen } from '../../core/units.ts';
import { multiplierAt, occupantAt } from '../../core/index.ts';
import type { PaymentKind, PaymentRow } from '../../core/index.ts';
import { int, kwhText, moneyText, priceText } from '../format.ts';
import { formatLocal, localMidnight, localParts } from '../local-time.ts';
import { TtlCache } from './ttl-cache.ts';

/**
 * The API's read side: every figure comes from the series the workers write
 * (influx/schema.ts), assembled per billing.md section 5 (a bill sums the range's
 * settlement charge lines; never re-priced). One InfluxDB round trip per route where
 * possible (several statements in one /query).
 */

export type { ChargeKind };
/** A statement line is a bill line of billing.md section 6. */
export type StatementLine = BillLine;

/** A correction of a settled day (charge rev >= 1): already inside `lines`, listed so it is visible. */
export interface Adjustment {
  readonly date: string;
  readonly kind: ChargeKind;
  readonly pool?: string;
  readonly period: Period;
  readonly kwh: string;
  readonly price: string;
  readonly amount: string;
  readonly reason: string;
}

/** An account's bill of billing.md section 6, with where it came from and its corrections. */
export interface AccountStatement extends AccountBill {
  readonly site: string;
  readonly name: string;
  readonly from: string;
  readonly to: string;
  readonly currency: string;
  readonly adjustments: readonly Adjustment[];
}

export interface LiveStatus {
  readonly account: string;
  readonly time: string;
  readonly period: Period | null;
  readonly price: string | null;
  readonly power_kw: string | null;
  readonly cost_per_hour: string | null;
  readonly balance: string;
  /** 'live': the workers' balance series; 'settled': opening + payments - settled charges (no worker output yet). */
  readonly balance_source: 'live' | 'settled';
  readonly hours_left: string | null;
  readonly low_balance: string | null;
  readonly status: 'ok' | 'low' | 'negative';
  readonly today: readonly { readonly period: Period; readonly kwh: string }[];
  readonly today_kwh: string;
}

export interface UsagePoint {
  readonly time: string;
  readonly period: Period;
  readonly kwh: string;
}

export interface PaymentOut {
  readonly time: string;
  readonly account: string;
  readonly amount: string;
  readonly reference: string;
  /** billing.md section 10: refund, deposit or transfer; absent for a plain payment. */
  readonly kind?: PaymentKind;
}

export interface EventOut {
  readonly time: string;
  readonly kind: string;
  readonly account: string;
  readonly meter: string;
  readonly detail: string;
}

export interface MasterDay {
  readonly date: string;
  readonly kwh: string;
  readonly tenant_kwh: string;
  readonly common_kwh: string;
  readonly loss_kwh: string;
  readonly loss_allocated_kwh: string;
  readonly loss_abnormal_kwh: string;
  readonly loss_rate: string;
  readonly abnormal: boolean;
}

export interface MeterHealthOut {
  readonly meter: string;
  readonly role: string;
  readonly account: string | null;
  readonly ok: boolean | null;
  readonly errors: number | null;
  readonly consecutive_errors: number | null;
  readonly latency_ms: number | null;
  readonly last_error: string | null;
  readonly last_reading: string | null;
}

const KIND_ORDER: Record<ChargeKind, number> = { own: 0, common: 1, loss: 2 };
/** Deposits are held apart from the prepaid balance (billing.md section 10); plain payments have no kind tag. */
const NOT_DEPOSIT = `${qi(T.kind)} != 'deposit'`;
const PERIOD_ORDER = Object.fromEntries(PERIODS.map((p, i) => [p, i])) as Record<Period, number>;
const HOUR = 3_600_000;

export interface ReadModelOptions {
  readonly influx: InfluxV1;
  /** Statement cache lifetime. @defaultValue 1000 */
  readonly cacheMs?: number;
}

export class ReadModel {
  private readonly influx: InfluxV1;
  readonly cache: TtlCache;

  constructor(opts: ReadModelOptions) {
    this.influx = opts.influx;
    this.cache = new TtlCache(opts.cacheMs ?? 1000);
  }

  /** Runs several InfluxQL statements in one round trip; each statement's rows. */
  private async multi(statements: string[]): Promise<Row[][]> {
    const res = await this.influx.queryRaw(statements.join(';\n'));
    return statements.map((_, i) => rowsOf(res[i] ?? []));
  }

  /** Statements for several accounts at once (bill statistics) or one. */
  async statements(site: Site, accounts: readonly Account[], from: string, to: string): Promise<AccountStatement[]> {
    const key = `st|${site.id}|${accounts.map((a) => a.id).join(',')}|${from}|${to}`;
    return this.cache.get(key, () => this.loadStatements(site, accounts, from, to));
  }

  private async loadStatements(site: Site, accounts: readonly Account[], from: string, to: string): Promise<AccountStatement[]> {
    const t0 = localMidnight(from, site.timezone);
    const t1 = localMidnight(to, site.timezone);
    // Every account of the site (statistics, month close): no account filter, so the
    // query stays small on a site with a thousand accounts.
    const all = accounts.length === site.accounts.length;
    const w = `${qi(T.site)} = ${qs(site.id)}${all ? '' : ` AND ${accountFilter(accounts.map((a) => a.id))}`}`;
    const [lines, chargesBefore, payBefore, payIn] = await this.multi([
      `SELECT ${qi(F.wh)}, ${qi(F.fen)}, ${qi(F.price)}, ${qi(F.reason)} FROM ${qi(M.charge)} WHERE ${w} AND time >= ${t0}ms AND time < ${t1}ms GROUP BY ${qi(T.account)}, ${qi(T.kind)}, ${qi(T.pool)}, ${qi(T.period)}, ${qi(T.rev)}`,
      `SELECT sum(${qi(F.fen)}) AS fen FROM ${qi(M.charge)} WHERE ${w} AND time < ${t0}ms GROUP BY ${qi(T.account)}`,
      `SELECT sum(${qi(F.fen)}) AS fen FROM ${qi(M.payment)} WHERE ${w} AND ${NOT_DEPOSIT} AND time < ${t0}ms GROUP BY ${qi(T.account)}`,
      `SELECT sum(${qi(F.fen)}) AS fen FROM ${qi(M.payment)} WHERE ${w} AND ${NOT_DEPOSIT} AND time >= ${t0}ms AND time < ${t1}ms GROUP BY ${qi(T.account)}`,
    ]);
    const sumBy = (rows: Row[]) => new Map(rows.map((r) => [String(r[T.account]), int(r.fen)]));
    const before = sumBy(chargesBefore);
    const paidBefore = sumBy(payBefore);
    const paidIn = sumBy(payIn);
    return accounts.map((a) => {
      const mine = lines.filter((r) => r[T.account] === a.id);
      const opening = moneyFenOf(a.openingBalance) + (paidBefore.get(a.id) ?? 0) - (before.get(a.id) ?? 0);
      return assembleStatement(site, a, from, to, mine, opening, paidIn.get(a.id) ?? 0);
    });
  }

  /**
   * Live status of one account (billing.md section 5: live balance, cost rate, hours left).
   * Cached for the cache lifetime per account: the balance worker writes once a minute, so
   * a second of staleness costs nothing, and many open tabs cost InfluxDB one query per
   * second per account instead of one per poll.
   */
  async live(site: Site, account: Account, now: number): Promise<LiveStatus> {
    return this.cache.get(`live|${site.id}|${account.id}|${Math.floor(now / 1000)}`, () => this.loadLive(site, account, now));
  }

  private async loadLive(site: Site, account: Account, now: number): Promise<LiveStatus> {
    const tz = site.timezone;
    const local = localParts(now, tz);
    const midnight = localMidnight(local.date, tz);
    // The meters the account occupies now (billing.md section 10), and today's buckets by
    // the account they are tagged with (a meter's buckets carry their occupant).
    const occupied = site.meters.filter((m) => m.role === 'tenant' && occupantAt(site, m, now).account === account.id);
    const meters = occupied.map((m) => m.id);
    const w = `${qi(T.site)} = ${qs(site.id)}`;
    const mw = `${w} AND ${meterFilter(meters)}`;
    const bw = `${w} AND ${qi(T.account)} = ${qs(account.id)}`;
    const aw = `${w} AND ${qi(T.account)} = ${qs(account.id)}`;
    const [bal, power, today] = await this.multi([
      `SELECT * FROM ${qi(M.balance)} WHERE ${aw} AND time <= ${now}ms ORDER BY time DESC LIMIT 1`,
      `SELECT last(${qi(F.w)}) AS w FROM ${qi(M.reading)} WHERE ${mw} AND time > ${now - 15 * 60_000}ms AND time <= ${now}ms GROUP BY ${qi(T.meter)}`,
      `SELECT sum(${qi(F.wh)}) AS wh FROM ${qi(M.touBucket)} WHERE ${bw} AND time >= ${midnight}ms AND time <= ${now}ms GROUP BY ${qi(T.period)}`,
    ]);
    // The settled fallback needs three more sums; only asked for when the worker has not run.
    const [charges, paid, trailing] = bal.length
      ? [[], [], []]
      : await this.multi([
          `SELECT sum(${qi(F.fen)}) AS fen FROM ${qi(M.charge)} WHERE ${aw}`,
          `SELECT sum(${qi(F.fen)}) AS fen FROM ${qi(M.payment)} WHERE ${aw} AND ${NOT_DEPOSIT} AND time <= ${now}ms`,
          `SELECT sum(${qi(F.wh)}) AS wh FROM ${qi(M.touBucket)} WHERE ${bw} AND time >= ${now - 24 * HOUR}ms AND time <= ${now}ms GROUP BY ${qi(T.period)}`,
        ]);
    const tariffNow = priceAt(site, account, local.date, local.minute);
    // Power and cost rate: the balance worker's figures when it has written a recent point
    // (the same numbers Grafana shows), else the meters' last power reading x the price now
    // (billing.md section 5: cost rate = power x current price).
    const recent = bal.length > 0 && Number(bal[0].time) > now - 10 * 60_000 && typeof bal[0][F.w] === 'number';
    let powerKw: InstanceType<typeof Dec> | undefined;
    let costPerHour: string | null = null;
    if (recent) {
      powerKw = new Dec(String(bal[0][F.w])).div(1000);
      costPerHour = typeof bal[0][F.costRateFenH] === 'number' ? moneyText(int(bal[0][F.costRateFenH])) : null;
    } else if (power.length) {
      // Raw meter power x the meter's multiplier now (billing.md section 10).
      powerKw = power.reduce((s, r) => s.plus(new Dec(String(r.w ?? 0)).mul(multiplierAt(occupied.find((m) => m.id === r[T.meter])!, now))), new Dec(0)).div(1000);
      costPerHour = tariffNow ? powerKw.times(tariffNow.price).toFixed(2, Dec.ROUND_HALF_UP) : null;
    }
    const todayByPeriod = PERIODS.map((p) => ({ period: p, wh: int(today.find((r) => r[T.period] === p)?.wh) })).filter((x) => x.wh !== 0);
    const low = account.lowBalance !== undefined ? moneyFenOf(account.lowBalance) : undefined;

    let balanceFen: number;
    let hoursLeft: string | null = null;
    let source: LiveStatus['balance_source'];
    if (bal.length) {
      source = 'live';
      balanceFen = int(bal[0][F.balanceFen]);
      const h = bal[0][F.hoursLeft];
      hoursLeft = typeof h === 'number' && Number.isFinite(h) ? new Dec(String(h)).toFixed(1, Dec.ROUND_HALF_UP) : null;
    } else {
      // No worker output yet: the last settled balance (section 5 without the unsettled day).
      source = 'settled';
      balanceFen = moneyFenOf(account.openingBalance) + int(paid[0]?.fen) - int(charges[0]?.fen);
      // Hours left at the trailing 24 h spending rate (section 5), priced per period now in force.
      let fenPerDay = new Dec(0);
      for (const r of trailing) {
        const p = priceAt(site, account, local.date, undefined, r[T.period] as Period);
        if (p) fenPerDay = fenPerDay.plus(new Dec(int(r.wh)).div(1000).times(p.price).times(100));
      }
      if (fenPerDay.gt(0) && balanceFen > 0) hoursLeft = new Dec(balanceFen).div(fenPerDay.div(24)).toFixed(1, Dec.ROUND_HALF_UP);
    }
    const status: LiveStatus['status'] = balanceFen < 0 ? 'negative' : low !== undefined && balanceFen < low ? 'low' : 'ok';
    return {
      account: account.id,
      time: formatLocal(now, tz),
      period: tariffNow?.period ?? null,
      price: tariffNow ? priceText(tariffNow.price) : null,
      power_kw: powerKw ? powerKw.toFixed(3, Dec.ROUND_HALF_UP) : null,
      cost_per_hour: costPerHour,
      balance: moneyText(balanceFen),
      balance_source: source,
      hours_left: hoursLeft,
      low_balance: low !== undefined ? moneyText(low) : null,
      status,
      today: todayByPeriod.map((x) => ({ period: x.period, kwh: kwhText(x.wh) })),
      today_kwh: kwhText(todayByPeriod.reduce((s, x) => s + x.wh, 0)),
    };
  }

  /** Balances of every account at once (the manager's account list): the workers' series, else settled. */
  async balances(site: Site, now: number): Promise<Map<string, { fen: number; source: 'live' | 'settled'; hoursLeft: string | null }>> {
    const w = `${qi(T.site)} = ${qs(site.id)}`;
    const [bal, charges, paid] = await this.multi([
      `SELECT * FROM ${qi(M.balance)} WHERE ${w} AND time <= ${now}ms GROUP BY ${qi(T.account)} ORDER BY time DESC LIMIT 1`,
      `SELECT sum(${qi(F.fen)}) AS fen FROM ${qi(M.charge)} WHERE ${w} GROUP BY ${qi(T.account)}`,
      `SELECT sum(${qi(F.fen)}) AS fen FROM ${qi(M.payment)} WHERE ${w} AND ${NOT_DEPOSIT} AND time <= ${now}ms GROUP BY ${qi(T.account)}`,
    ]);
    const out = new Map<string, { fen: number; source: 'live' | 'settled'; hoursLeft: string | null }>();
    for (const a of site.accounts) {
      const b = bal.find((r) => r[T.account] === a.id);
      if (b) {
        const h = b[F.hoursLeft];
        out.set(a.id, { fen: int(b[F.balanceFen]), source: 'live', hoursLeft: typeof h === 'number' && Number.isFinite(h) ? new Dec(String(h)).toFixed(1, Dec.ROUND_HALF_UP) : null });
      } else {
        const c = int(charges.find((r) => r[T.account] === a.id)?.fen);
        const p = int(paid.find((r) => r[T.account] === a.id)?.fen);
        out.set(a.id, { fen: moneyFenOf(a.openingBalance) + p - c, source: 'settled', hoursLeft: null });
      }
    }
    return out;
  }

  /** Usage of an account's meters from the 15-minute TOU buckets, per interval and period. */
  async usage(site: Site, account: Account, from: string, to: string, interval: '15m' | '1h' | '1d'): Promise<UsagePoint[]> {
    const tz = site.timezone;
    const t0 = localMidnight(from, tz);
    const t1 = localMidnight(to, tz);
    // tz() aligns 1d groups on local midnight (InfluxDB 1.x), like settlement days. Buckets
    // carry their occupant (billing.md section 10): the account's energy, whichever meter.
    const [rows] = await this.multi([
      `SELECT sum(${qi(F.wh)}) AS wh FROM ${qi(M.touBucket)} WHERE ${qi(T.site)} = ${qs(site.id)} AND ${qi(T.account)} = ${qs(account.id)} AND ${qi(T.role)} = 'tenant' AND time >= ${t0}ms AND time < ${t1}ms GROUP BY time(${interval}), ${qi(T.period)} fill(none) tz(${qs(tz)})`,
    ]);
    return rows
      .map((r) => ({ t: Number(r.time), period: r[T.period] as Period, wh: int(r.wh) }))
      .filter((r) => r.wh !== 0)
      .sort((a, b) => a.t - b.t || PERIOD_ORDER[a.period] - PERIOD_ORDER[b.period])
      .map((r) => ({ time: formatLocal(r.t, tz), period: r.period, kwh: kwhText(r.wh) }));
  }

  /** Monthly totals of an account's charges (rev 0 and adjustments) over the last `months`. */
  async monthlyTotals(site: Site, account: Account, now: number, months = 24): Promise<Map<string, { fen: number; wh: number }>> {
    const tz = site.timezone;
    const [rows] = await this.multi([
      `SELECT sum(${qi(F.fen)}) AS fen, sum(${qi(F.wh)}) AS wh FROM ${qi(M.charge)} WHERE ${qi(T.site)} = ${qs(site.id)} AND ${qi(T.account)} = ${qs(account.id)} AND time >= ${now - months * 31 * 24 * HOUR}ms AND time <= ${now}ms GROUP BY time(1d) fill(none) tz(${qs(tz)})`,
    ]);
    const out = new Map<string, { fen: number; wh: number }>();
    for (const r of rows) {
      const month = localParts(Number(r.time), tz).date.slice(0, 7);
      const m = out.get(month) ?? { fen: 0, wh: 0 };
      m.fen += int(r.fen);
      m.wh += int(r.wh);
      out.set(month, m);
    }
    return out;
  }

  async payments(site: Site, account: string | undefined, limit = 200): Promise<PaymentOut[]> {
    const where = `${qi(T.site)} = ${qs(site.id)}${account ? ` AND ${qi(T.account)} = ${qs(account)}` : ''}`;
    const [rows] = await this.multi([`SELECT ${qi(F.fen)} FROM ${qi(M.payment)} WHERE ${where} GROUP BY ${qi(T.account)}, ${qi(T.reference)}, ${qi(T.kind)} ORDER BY time DESC LIMIT 1`]);
    return rows
      .sort((a, b) => Number(b.time) - Number(a.time) || String(a[T.reference]).localeCompare(String(b[T.reference])))
      .slice(0, limit)
      .map((r) => {
        // A plain payment is listed as before; other kinds say what they are (billing.md section 10).
        const kind = (String(r[T.kind] ?? '') || 'payment') as PaymentKind;
        return { time: formatLocal(Number(r.time), site.timezone), account: String(r[T.account]), amount: moneyText(int(r[F.fen])), reference: String(r[T.reference]), ...(kind !== 'payment' ? { kind } : {}) };
      });
  }

  /** Every ledger line of one account (billing.md section 10: with its kind), oldest first, for the final statement. */
  async ledger(site: Site, account: string): Promise<PaymentRow[]> {
    const [rows] = await this.multi([`SELECT ${qi(F.fen)} FROM ${qi(M.payment)} WHERE ${qi(T.site)} = ${qs(site.id)} AND ${qi(T.account)} = ${qs(account)} GROUP BY ${qi(T.reference)}, ${qi(T.kind)}`]);
    return rows
      .map((r) => {
        const kind = (String(r[T.kind] ?? '') || 'payment') as PaymentKind;
        return { time: Number(r.time), account, fen: int(r[F.fen]), reference: String(r[T.reference]), ...(kind !== 'payment' ? { kind } : {}) };
      })
      .sort((a, b) => a.time - b.time || cmp(a.reference, b.reference));
  }

  /** Events (alerts and data-quality flags), newest first; filtered by account or kinds. */
  async events(site: Site, opts: { account?: string; kinds?: readonly string[]; from?: number; to?: number; limit?: number }): Promise<EventOut[]> {
    const conds = [`${qi(T.site)} = ${qs(site.id)}`];
    if (opts.account) conds.push(`${qi(T.account)} = ${qs(opts.account)}`);
    if (opts.kinds?.length) conds.push(`(${opts.kinds.map((k) => `${qi(T.kind)} = ${qs(k)}`).join(' OR ')})`);
    if (opts.from !== undefined) conds.push(`time >= ${opts.from}ms`);
    if (opts.to !== undefined) conds.push(`time < ${opts.to}ms`);
    const [rows] = await this.multi([`SELECT * FROM ${qi(M.event)} WHERE ${conds.join(' AND ')} ORDER BY time DESC LIMIT ${opts.limit ?? 200}`]);
    return rows.map((r) => ({
      time: formatLocal(Number(r.time), site.timezone),
      kind: String(r[T.kind] ?? ''),
      account: String(r[T.account] ?? ''),
      meter: String(r[T.meter] ?? ''),
      detail: String(r[F.detail] ?? ''),
    }));
  }

  /** The master-meter summary per local day (site_day series), with loss rate and abnormal loss. */
  async masterDays(site: Site, from: string, to: string): Promise<MasterDay[]> {
    const tz = site.timezone;
    const fields = [F.masterWh, F.tenantWh, F.commonWh, F.lossWh, F.lossAllocatedWh, F.lossAbnormalWh];
    const [rows] = await this.multi([
      `SELECT ${fields.map((f) => `sum(${qi(f)}) AS ${qi(f)}`).join(', ')} FROM ${qi(M.siteDay)} WHERE ${qi(T.site)} = ${qs(site.id)} AND time >= ${localMidnight(from, tz)}ms AND time < ${localMidnight(to, tz)}ms GROUP BY time(1d) fill(none) tz(${qs(tz)})`,
    ]);
    return rows.map((r) => masterDay(localParts(Number(r.time), tz).date, int(r[F.masterWh]), int(r[F.tenantWh]), int(r[F.commonWh]), int(r[F.lossWh]), int(r[F.lossAllocatedWh]), int(r[F.lossAbnormalWh])));
  }

  /** The stored day-period cells (site_day) of [from, to), per local day, in the core's shape. */
  async cells(site: Site, from: string, to: string): Promise<{ date: string; cells: CellSummary[] }[]> {
    const tz = site.timezone;
    const [rows] = await this.multi([
      `SELECT ${[F.masterWh, F.tenantWh, F.commonWh, F.lossWh, F.lossAllocatedWh, F.lossAbnormalWh].map((f) => qi(f)).join(', ')} FROM ${qi(M.siteDay)} WHERE ${qi(T.site)} = ${qs(site.id)} AND time >= ${localMidnight(from, tz)}ms AND time < ${localMidnight(to, tz)}ms GROUP BY ${qi(T.period)}`,
    ]);
    const byDay = new Map<number, CellSummary[]>();
    for (const r of rows) {
      const t = Number(r.time);
      const list = byDay.get(t) ?? [];
      list.push({
        period: r[T.period] as Period,
        masterWh: int(r[F.masterWh]),
        tenantWh: int(r[F.tenantWh]),
        commonWh: int(r[F.commonWh]),
        lossWh: int(r[F.lossWh]),
        lossAllocatedWh: int(r[F.lossAllocatedWh]),
        lossAbnormalWh: int(r[F.lossAbnormalWh]),
      });
      byDay.set(t, list);
    }
    return [...byDay.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([t, cells]) => ({ date: localParts(t, tz).date, cells: cells.sort((a, b) => PERIOD_ORDER[a.period] - PERIOD_ORDER[b.period]) }));
  }

  /** True when the workers have settled the local date (its site_day summary exists). */
  async daySettled(site: Site, date: string): Promise<boolean> {
    const t = localMidnight(date, site.timezone);
    const [rows] = await this.multi([`SELECT count(${qi(F.masterWh)}) AS n FROM ${qi(M.siteDay)} WHERE ${qi(T.site)} = ${qs(site.id)} AND time = ${t}ms`]);
    return int(rows[0]?.n) > 0;
  }

  async meterHealth(site: Site): Promise<MeterHealthOut[]> {
    const w = `${qi(T.site)} = ${qs(site.id)}`;
    const [health, last] = await this.multi([
      `SELECT * FROM ${qi(M.meterHealth)} WHERE ${w} GROUP BY ${qi(T.meter)} ORDER BY time DESC LIMIT 1`,
      `SELECT last(${qi(F.wh)}) AS wh FROM ${qi(M.reading)} WHERE ${w} GROUP BY ${qi(T.meter)}`,
    ]);
    return site.meters.map((m) => {
      const h = health.find((r) => r[T.meter] === m.id);
      const l = last.find((r) => r[T.meter] === m.id);
      const num = (v: unknown) => (typeof v === 'number' ? v : null);
      return {
        meter: m.id,
        role: m.role,
        account: m.account ?? null,
        ok: h ? h[F.ok] === true : null,
        errors: h ? num(h[F.errors]) : null,
        consecutive_errors: h ? num(h[F.consecutiveErrors]) : null,
        latency_ms: h ? num(h[F.latencyMs]) : null,
        last_error: h && typeof h[F.lastError] === 'string' && h[F.lastError] !== '' ? String(h[F.lastError]) : null,
        last_reading: l ? formatLocal(Number(l.time), site.timezone) : null,
      };
    });
  }
}

export function masterDay(date: string, m: number, t: number, c: number, loss: number, alloc: number, abn: number): MasterDay {
  return {
    date,
    kwh: kwhText(m),
    tenant_kwh: kwhText(t),
    common_kwh: kwhText(c),
    loss_kwh: kwhText(loss),
    loss_allocated_kwh: kwhText(alloc),
    loss_abnormal_kwh: kwhText(abn),
    loss_rate: lossRate(loss, m),
    abnormal: abn > 0,
  };
}

/** billing.md section 6: loss_kwh / kwh to 4 places, ties away from zero; "0.0000" when kwh is 0. */
export function lossRate(lossWh: number, masterWh: number): string {
  if (masterWh === 0) return '0.0000';
  const r = new Dec(lossWh).div(masterWh);
  // ROUND_HALF_UP in decimal.js rounds ties away from zero, as section 4 asks for loss_rate.
  const abs = r.abs().toFixed(4, Dec.ROUND_HALF_UP);
  return r.isNeg() && abs !== '0.0000' ? `-${abs}` : abs;
}

/** Site-file money (validated, at most 2 decimals) in fen. */
const moneyFenOf = moneyFen;

function accountFilter(ids: readonly string[]): string {
  return ids.length === 1 ? `${qi(T.account)} = ${qs(ids[0])}` : `(${ids.map((id) => `${qi(T.account)} = ${qs(id)}`).join(' OR ')})`;
}

/** An account with no meter matches nothing (a filter that is never true). */
function meterFilter(ids: readonly string[]): string {
  if (ids.length === 0) return `${qi(T.meter)} = ''`;
  return `(${ids.map((id) => `${qi(T.meter)} = ${qs(id)}`).join(' OR ')})`;
}

/** The TOU period at a local minute and the account's price for it (or for `period`), from the site's tariffs. */
export function priceAt(site: Site, account: Account, date: string, minute?: number, period?: Period): { period: Period; price: string } | undefined {
  const tariff = site.tariffs.find((t) => t.id === account.tariff);
  if (!tariff) return undefined;
  const vi = versionIndexOn(tariff, date);
  if (vi < 0) return undefined;
  const version = tariff.versions[vi];
  let p = period;
  if (p === undefined) {
    const entry = scheduleEntryOn(version, date, site.holidays);
    p = entry?.periods.find((s) => minute !== undefined && s.from <= minute && minute < s.to)?.period;
  }
  const price = p ? version.prices[p] : undefined;
  return p && price !== undefined ? { period: p, price } : undefined;
}

/** Sums charge rows into a statement (billing.md section 5): per (kind, pool, period, price), never re-priced. */
export function assembleStatement(site: Site, account: Account, from: string, to: string, rows: readonly Row[], openingFen: number, paymentsFen: number): AccountStatement {
  const lines = new Map<string, { kind: ChargeKind; pool?: string; period: Period; price: string; wh: number; fen: number }>();
  const adjustments: (Adjustment & { t: number })[] = [];
  const kwh = { own: 0, common: 0, loss: 0 };
  let total = 0;
  for (const r of rows) {
    const kind = String(r[T.kind]) as ChargeKind;
    if (!(kind in KIND_ORDER)) continue;
    const pool = kind === 'common' && r[T.pool] ? String(r[T.pool]) : undefined;
    const period = String(r[T.period]) as Period;
    const price = priceText(r[F.price]);
    const wh = int(r[F.wh]);
    const fen = int(r[F.fen]);
    const key = `${kind}|${pool ?? ''}|${period}|${price}`;
    const line = lines.get(key) ?? { kind, pool, period, price, wh: 0, fen: 0 };
    line.wh += wh;
    line.fen += fen;
    lines.set(key, line);
    kwh[kind] += wh;
    total += fen;
    const rev = Number(r[T.rev] ?? 0);
    if (rev > 0) {
      adjustments.push({
        t: Number(r.time),
        date: localParts(Number(r.time), site.timezone).date,
        kind,
        ...(pool ? { pool } : {}),
        period,
        kwh: kwhText(wh),
        price,
        amount: moneyText(fen),
        reason: String(r[F.reason] ?? 'settled day recomputed'),
      });
    }
  }
  const sorted = [...lines.values()]
    .filter((l) => l.wh !== 0 || l.fen !== 0)
    .sort((a, b) => KIND_ORDER[a.kind] - KIND_ORDER[b.kind] || cmp(a.pool ?? '', b.pool ?? '') || PERIOD_ORDER[a.period] - PERIOD_ORDER[b.period] || new Dec(a.price).cmp(b.price));
  return {
    site: site.id,
    account: account.id,
    name: account.name,
    from,
    to,
    currency: site.currency,
    lines: sorted.map((l) => ({ kind: l.kind, ...(l.pool ? { pool: l.pool } : {}), period: l.period, kwh: kwhText(l.wh), price: l.price, amount: moneyText(l.fen) })),
    kwh: { own: kwhText(kwh.own), common: kwhText(kwh.common), loss: kwhText(kwh.loss) },
    total_amount: moneyText(total),
    opening_balance: moneyText(openingFen),
    payments: moneyText(paymentsFen),
    closing_balance: moneyText(openingFen + paymentsFen - total),
    adjustments: adjustments.sort((a, b) => a.t - b.t || KIND_ORDER[a.kind] - KIND_ORDER[b.kind]).map(({ t: _t, ...a }) => a),
  };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
