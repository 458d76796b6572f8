import { accountBill, byteOrder, dateOfDayBucket, Dec, divRoundHalfUp, hourAtLastPower, hoursText, liveStatus, lossRate, metersOf, moneyFen, occupantAt, PERIODS, priceAt, priceText as microText, zoneOf } from '../../core/index.ts';
import type { Account, AccountBill, AccountLive, BillLine, CellSummary, ChargeKind, Meter, PaymentKind, PaymentRow, Period, RegisterAt, ShareBasis, Site, StatementCharge } from '../../core/index.ts';
import type { InfluxV1, Row } from '../../influx/client.ts';
import { quoteIdent as qi, quoteString as qs, rowsOf } from '../../influx/client.ts';
import { F, M, T } from '../../influx/schema.ts';
import { loadLiveFigures, readLiveEntry, readLiveSnapshot } from '../../workers/index.ts';
import type { LiveSnapshot, LoadedLive } from '../../workers/index.ts';
import type { RedisClient } from '../../lib/redis.ts';
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
  /**
   * 'live': the balance worker's last point (at most liveMaxAgeMs old); 'computed': no
   * recent point, so the API ran the same core function on the same series itself.
   */
  readonly balance_source: 'live' | 'computed';
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
  /** billing.md section 11: refund, deposit or transfer; absent for a plain payment. */
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
  /** A tenant meter's occupant now (the landlord account while vacant; section 11); a common meter's null. */
  readonly account: string | null;
  /** A tenant meter's unit is vacant now (no occupant: its energy goes to the landlord); null for other roles. */
  readonly vacant: boolean | null;
  readonly ok: boolean | null;
  readonly errors: number | null;
  readonly consecutive_errors: number | null;
  readonly latency_ms: number | null;
  readonly last_error: string | null;
  readonly last_reading: string | null;
}

/** Deposits are held apart from the prepaid balance (billing.md section 11); plain payments have no kind tag. */
const NOT_DEPOSIT = `${qi(T.kind)} != 'deposit'`;
const HOUR = 3_600_000;

export interface ReadModelOptions {
  readonly influx: InfluxV1;
  /**
   * The workers' Redis and key prefix: live figures are served from the balance job's
   * last results there (workers/live-snapshot.ts), read at most once per cacheMs per site.
   * Without it, from InfluxDB's balance points.
   */
  readonly live?: { readonly redis: RedisClient; readonly workersKeyPrefix: string };
  /** Statement cache lifetime. @defaultValue 1000 */
  readonly cacheMs?: number;
  /** A balance point older than this is not shown: the figures are computed instead. @defaultValue 60000 */
  readonly liveMaxAgeMs?: number;
}

/** The facts of the verifiable statement of one account and range, as stored by the settlement. */
export interface StatementDetailFacts {
  readonly charges: readonly StatementCharge[];
  readonly meterDays: readonly { date: string; meter: string; wh: number; start?: RegisterAt; end?: RegisterAt; marks?: readonly (RegisterAt & { whBefore: number })[] }[];
  readonly gaps: readonly { date: string; meter: string; period: Period; gapWh: number }[];
  readonly bases: readonly (ShareBasis & { date: string })[];
  readonly accountDays: readonly { date: string; areaWeight: number; pools: readonly string[] }[];
  readonly cells: readonly (CellSummary & { date: string })[];
  readonly payments: readonly { time: string; fen: number; reference: string }[];
  /** Cells of the range the account occupied only in part (billing.md section 11). */
  readonly occupancy: readonly { date: string; period: Period; seconds: number }[];
  /** Deposits held at the end of the range, when the account has any (section 11). */
  readonly depositFen?: number;
}

export class ReadModel {
  private readonly influx: InfluxV1;
  private readonly liveMaxAgeMs: number;
  private readonly refreshMs: number;
  private readonly liveSource?: ReadModelOptions['live'];
  private readonly snapshots = new Map<string, { at: number; value: Promise<LiveSnapshot> }>();
  readonly cache: TtlCache;

  constructor(opts: ReadModelOptions) {
    this.influx = opts.influx;
    this.liveMaxAgeMs = opts.liveMaxAgeMs ?? 60_000;
    this.refreshMs = opts.cacheMs ?? 1000;
    this.liveSource = opts.live;
    this.cache = new TtlCache(this.refreshMs);
    this.cache.onClear(() => this.snapshots.clear());
  }

  /**
   * The balance job's last results of a site (one Redis read per site at most every
   * cacheMs, shared by all its accounts' requests; with cacheMs 0 the account's entry
   * alone), or undefined without a live source.
   */
  private liveSnapshot(site: Site, account: string): Promise<LiveSnapshot> | undefined {
    const src = this.liveSource;
    if (!src) return undefined;
    // Nothing to share between requests: read the one account's entry only.
    if (this.refreshMs <= 0) return readLiveEntry(src.redis, src.workersKeyPrefix, site.id, account);
    const t = Date.now();
    const hit = this.snapshots.get(site.id);
    if (hit && this.refreshMs > 0 && t - hit.at < this.refreshMs) return hit.value;
    const value = readLiveSnapshot(src.redis, src.workersKeyPrefix, site.id);
    this.snapshots.set(site.id, { at: t, value });
    value.catch(() => this.snapshots.delete(site.id));
    return value;
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
      const opening = moneyFen(a.openingBalance) + (paidBefore.get(a.id) ?? 0) - (before.get(a.id) ?? 0);
      return assembleStatement(site, a, from, to, mine, opening, paidIn.get(a.id) ?? 0);
    });
  }

  /** What the verifiable statement of one account shows beyond its bill (issue 10): the settlement's stored facts of the range. */
  /** @param paidUntilMs payments only before this instant (a final statement: the move-out, billing.md section 11 rule 8) */
  async statementFacts(site: Site, account: Account, from: string, to: string, paidUntilMs?: number): Promise<StatementDetailFacts> {
    return this.cache.get(`facts|${site.id}|${account.id}|${from}|${to}|${paidUntilMs ?? ''}`, () => this.loadFacts(site, account, from, to, paidUntilMs));
  }

  private async loadFacts(site: Site, account: Account, from: string, to: string, paidUntilMs?: number): Promise<StatementDetailFacts> {
    const tz = site.timezone;
    const zone = zoneOf(tz);
    const range = `time >= ${localMidnight(from, tz)}ms AND time < ${localMidnight(to, tz)}ms`;
    const payRange = paidUntilMs !== undefined ? `time >= ${localMidnight(from, tz)}ms AND time < ${Math.min(paidUntilMs, localMidnight(to, tz))}ms` : range;
    const w = `${qi(T.site)} = ${qs(site.id)}`;
    const aw = `${w} AND ${qi(T.account)} = ${qs(account.id)}`;
    // The meters the account occupied in the range (billing.md section 11).
    const meters = metersOf(site, account.id, localMidnight(from, tz), localMidnight(to, tz)).map((m) => m.id);
    const [charges, meterDays, gaps, bases, accountDays, cells, pays, partial, marks, deposits] = await this.multi([
      `SELECT ${qi(F.wh)}, ${qi(F.fen)}, ${qi(F.price)} FROM ${qi(M.charge)} WHERE ${aw} AND ${range} GROUP BY ${qi(T.kind)}, ${qi(T.pool)}, ${qi(T.period)}, ${qi(T.rev)}`,
      `SELECT * FROM ${qi(M.meterDay)} WHERE ${w} AND ${meterFilter(meters)} AND ${range} GROUP BY ${qi(T.meter)}`,
      `SELECT ${qi(F.gapWh)} FROM ${qi(M.meterCell)} WHERE ${w} AND ${qi(F.gapWh)} > 0 AND ${range} GROUP BY ${qi(T.meter)}, ${qi(T.period)}`,
      `SELECT * FROM ${qi(M.shareBasis)} WHERE ${w} AND ${range} GROUP BY ${qi(T.kind)}, ${qi(T.pool)}, ${qi(T.period)}`,
      `SELECT * FROM ${qi(M.accountDay)} WHERE ${aw} AND ${range}`,
      `SELECT ${[F.masterWh, F.tenantWh, F.commonWh, F.lossWh, F.lossAllocatedWh, F.lossAbnormalWh].map((f) => qi(f)).join(', ')} FROM ${qi(M.siteDay)} WHERE ${w} AND ${range} GROUP BY ${qi(T.period)}`,
      `SELECT ${qi(F.fen)} FROM ${qi(M.payment)} WHERE ${aw} AND ${NOT_DEPOSIT} AND ${payRange} GROUP BY ${qi(T.reference)}`,
      `SELECT ${qi(F.occupiedS)} FROM ${qi(M.accountCell)} WHERE ${aw} AND ${range} GROUP BY ${qi(T.period)}`,
      `SELECT * FROM ${qi(M.meterMark)} WHERE ${w} AND ${meterFilter(meters)} AND ${range} GROUP BY ${qi(T.meter)}`,
      // Deposits held at the end of the range (at the move-out for a final statement): shown apart.
      `SELECT sum(${qi(F.fen)}) AS fen, count(${qi(F.fen)}) AS n FROM ${qi(M.payment)} WHERE ${aw} AND ${qi(T.kind)} = 'deposit' AND time < ${paidUntilMs ?? localMidnight(to, tz)}ms`,
    ]);
    const marksOf = new Map<string, (RegisterAt & { whBefore: number })[]>();
    for (const r of marks) {
      const k = `${zone.dateOf(Number(r.time))}|${r[T.meter]}`;
      marksOf.set(k, [...(marksOf.get(k) ?? []), { wh: int(r[F.registerWh]), ms: Number(r.time), estimated: r[F.estimated] === true, whBefore: int(r[F.whBefore]) }]);
    }
    // Points of a settled day are stamped at its local midnight.
    const date = (r: Row) => zone.dateOf(Number(r.time));
    const at = (r: Row, wh: string, ms: string, est: string): RegisterAt | undefined => (typeof r[wh] === 'number' && typeof r[ms] === 'number' ? { wh: int(r[wh]), ms: int(r[ms]), estimated: r[est] === true } : undefined);
    return {
      charges: charges.map((r) => {
        const kind = String(r[T.kind]) as ChargeKind;
        const pool = kind === 'common' && r[T.pool] ? String(r[T.pool]) : undefined;
        return { date: date(r), kind, ...(pool ? { pool } : {}), period: r[T.period] as Period, price: priceText(r[F.price]), wh: int(r[F.wh]), fen: int(r[F.fen]) };
      }),
      meterDays: meterDays.map((r) => {
        const start = at(r, F.startWh, F.startMs, F.startEstimated);
        const end = at(r, F.endWh, F.endMs, F.endEstimated);
        const m = marksOf.get(`${date(r)}|${r[T.meter]}`);
        return { date: date(r), meter: String(r[T.meter]), wh: int(r[F.wh]), ...(start ? { start } : {}), ...(end ? { end } : {}), ...(m ? { marks: m } : {}) };
      }),
      gaps: gaps.map((r) => ({ date: date(r), meter: String(r[T.meter]), period: r[T.period] as Period, gapWh: int(r[F.gapWh]) })),
      bases: bases.map((r) => ({
        date: date(r),
        kind: String(r[T.kind]) as ShareBasis['kind'],
        ...(r[T.pool] ? { pool: String(r[T.pool]) } : {}),
        period: r[T.period] as Period,
        wh: int(r[F.wh]),
        basis: String(r[F.basis]) as ShareBasis['basis'],
        members: int(r[F.members]),
        weightTotal: int(r[F.weightTotal]),
        ...(typeof r[F.cellS] === 'number' ? { cellS: int(r[F.cellS]) } : {}),
      })),
      occupancy: partial.map((r) => ({ date: date(r), period: r[T.period] as Period, seconds: int(r[F.occupiedS]) })),
      ...(int(deposits[0]?.n) > 0 ? { depositFen: int(deposits[0]?.fen) } : {}),
      accountDays: accountDays.map((r) => ({ date: date(r), areaWeight: int(r[F.areaWeight]), pools: String(r[F.pools] ?? '').split(',').filter(Boolean) })),
      cells: cells.map((r) => ({
        date: date(r),
        period: r[T.period] as Period,
        masterWh: int(r[F.masterWh]),
        tenantWh: int(r[F.tenantWh]),
        commonWh: int(r[F.commonWh]),
        lossWh: int(r[F.lossWh]),
        lossAllocatedWh: int(r[F.lossAllocatedWh]),
        lossAbnormalWh: int(r[F.lossAbnormalWh]),
      })),
      payments: pays.sort((a, b) => Number(a.time) - Number(b.time)).map((r) => ({ time: formatLocal(Number(r.time), tz), fen: int(r[F.fen]), reference: String(r[T.reference]) })),
    };
  }

  /**
   * Live status of one account (billing.md section 5: live balance with provisional
   * shares, cost per hour, hours left). Cached for the cache lifetime per account: many
   * open tabs cost InfluxDB one query per second per account instead of one per poll.
   * `snapshot`: the account's live entry as the request already read it (api/data/tenant-read.ts).
   */
  async live(site: Site, account: Account, now: number, snapshot?: LiveSnapshot): Promise<LiveStatus> {
    return this.cache.get(`live|${site.id}|${account.id}|${Math.floor(now / 1000)}`, () => this.loadLive(site, account, now, snapshot));
  }

  /** The core's live figures computed here (workers/live-figures.ts), for when the balance worker has not written lately. */
  private computed(site: Site, now: number): Promise<LoadedLive> {
    return this.cache.get(`computed|${site.id}|${Math.floor(now / 1000)}`, () => loadLiveFigures({ influx: this.influx, site, now }));
  }

  private async loadLive(site: Site, account: Account, now: number, snapshot?: LiveSnapshot): Promise<LiveStatus> {
    const tz = site.timezone;
    // The common path (issue 15): the balance job's last figures, checked within liveMaxAgeMs
    // (it runs at least every balance tick), from memory: no InfluxDB query.
    const snap = snapshot ?? (await this.liveSnapshot(site, account.id)?.catch(() => undefined));
    const entry = snap?.checked !== undefined && snap.checked <= now && snap.checked > now - this.liveMaxAgeMs ? snap.accounts.get(account.id) : undefined;
    if (entry?.today) {
      const f = entry.figures;
      return liveStatusOf(site, account, now, { balanceFen: f.balanceFen, hours: hoursText(f.hoursLeft ?? null), costFen: f.costRateFenH, powerW: f.w, live: true }, entry.today);
    }
    const midnight = localMidnight(localParts(now, tz).date, tz);
    // The meters the account occupies now (billing.md section 11), and today's buckets by
    // the account they are tagged with (a meter's buckets carry their occupant).
    const meters = site.meters.filter((m) => m.role === 'tenant' && occupantAt(site, m, now).account === account.id);
    const w = `${qi(T.site)} = ${qs(site.id)}`;
    const [bal, today] = await this.multi([
      `SELECT * FROM ${qi(M.balance)} WHERE ${w} AND ${qi(T.account)} = ${qs(account.id)} AND time <= ${now}ms ORDER BY time DESC LIMIT 1`,
      `SELECT sum(${qi(F.wh)}) AS wh FROM ${qi(M.touBucket)} WHERE ${w} AND ${qi(T.account)} = ${qs(account.id)} AND ${qi(T.role)} = 'tenant' AND time >= ${midnight}ms AND time <= ${now}ms GROUP BY ${qi(T.period)}`,
    ]);
    // A balance point is written when a figure changes or once a minute (workers/live-snapshot.ts).
    const point = bal.length > 0 && Number(bal[0].time) > now - this.liveMaxAgeMs ? bal[0] : undefined;
    const todayWh = PERIODS.map((p): [Period, number] => [p, int(today.find((r) => r[T.period] === p)?.wh)]).filter((x) => x[1] !== 0);
    if (entry) {
      const f = entry.figures;
      return liveStatusOf(site, account, now, { balanceFen: f.balanceFen, hours: hoursText(f.hoursLeft ?? null), costFen: f.costRateFenH, powerW: f.w, live: true }, todayWh);
    }
    if (point) {
      return liveStatusOf(
        site,
        account,
        now,
        {
          balanceFen: int(point[F.balanceFen]),
          hours: hoursText(typeof point[F.hoursLeft] === 'number' ? (point[F.hoursLeft] as number) : null),
          costFen: int(point[F.costRateFenH]),
          powerW: typeof point[F.w] === 'number' ? (point[F.w] as number) : undefined,
          live: true,
        },
        todayWh,
      );
    }
    const figures = await this.computed(site, now);
    const mine = figures.accounts.find((x) => x.account === account.id)!;
    return liveStatusOf(site, account, now, { balanceFen: mine.balanceFen, hours: hoursText(mine.hoursLeft), costFen: mine.costPerHourFen, powerW: ownPower(meters, figures, now), live: false }, todayWh);
  }

  /** Balances of every account at once (the manager's account list): the workers' recent points, else computed. */
  async balances(site: Site, now: number): Promise<Map<string, { fen: number; source: 'live' | 'computed'; hoursLeft: string | null; status: AccountLive['status'] }>> {
    const w = `${qi(T.site)} = ${qs(site.id)}`;
    const [bal] = await this.multi([`SELECT * FROM ${qi(M.balance)} WHERE ${w} AND time <= ${now}ms AND time > ${now - this.liveMaxAgeMs}ms GROUP BY ${qi(T.account)} ORDER BY time DESC LIMIT 1`]);
    const figures = site.accounts.every((a) => bal.some((r) => r[T.account] === a.id)) ? undefined : await this.computed(site, now);
    const out = new Map<string, { fen: number; source: 'live' | 'computed'; hoursLeft: string | null; status: AccountLive['status'] }>();
    for (const a of site.accounts) {
      const low = a.lowBalance !== undefined ? moneyFen(a.lowBalance) : undefined;
      const b = bal.find((r) => r[T.account] === a.id);
      if (b) {
        const fen = int(b[F.balanceFen]);
        out.set(a.id, { fen, source: 'live', hoursLeft: hoursText(typeof b[F.hoursLeft] === 'number' ? (b[F.hoursLeft] as number) : null), status: liveStatus(fen, low) });
      } else {
        const mine = figures!.accounts.find((x) => x.account === a.id)!;
        out.set(a.id, { fen: mine.balanceFen, source: 'computed', hoursLeft: hoursText(mine.hoursLeft), status: mine.status });
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
    // carry their occupant (billing.md section 11): the account's energy, whichever meter.
    const [rows] = await this.multi([
      `SELECT sum(${qi(F.wh)}) AS wh FROM ${qi(M.touBucket)} WHERE ${qi(T.site)} = ${qs(site.id)} AND ${qi(T.account)} = ${qs(account.id)} AND ${qi(T.role)} = 'tenant' AND time >= ${t0}ms AND time < ${t1}ms GROUP BY time(${interval}), ${qi(T.period)} fill(none) tz(${qs(tz)})`,
    ]);
    return rows
      .map((r) => ({ t: Number(r.time), period: r[T.period] as Period, wh: int(r.wh) }))
      .filter((r) => r.wh !== 0)
      .sort((a, b) => a.t - b.t || PERIODS.indexOf(a.period) - PERIODS.indexOf(b.period))
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
      const month = dateOfDayBucket(tz, Number(r.time)).slice(0, 7);
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
        // A plain payment is listed as before; other kinds say what they are (billing.md section 11).
        const kind = (String(r[T.kind] ?? '') || 'payment') as PaymentKind;
        return { time: formatLocal(Number(r.time), site.timezone), account: String(r[T.account]), amount: moneyText(int(r[F.fen])), reference: String(r[T.reference]), ...(kind !== 'payment' ? { kind } : {}) };
      });
  }

  /** Every ledger line of one account (billing.md section 11: with its kind), oldest first, for the final statement. */
  async ledger(site: Site, account: string): Promise<PaymentRow[]> {
    const [rows] = await this.multi([`SELECT ${qi(F.fen)} FROM ${qi(M.payment)} WHERE ${qi(T.site)} = ${qs(site.id)} AND ${qi(T.account)} = ${qs(account)} GROUP BY ${qi(T.reference)}, ${qi(T.kind)}`]);
    return rows
      .map((r) => {
        const kind = (String(r[T.kind] ?? '') || 'payment') as PaymentKind;
        return { time: Number(r.time), account, fen: int(r[F.fen]), reference: String(r[T.reference]), ...(kind !== 'payment' ? { kind } : {}) };
      })
      .sort((a, b) => a.time - b.time || byteOrder(a.reference, b.reference));
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
    return rows.map((r) => masterDay(dateOfDayBucket(tz, Number(r.time)), int(r[F.masterWh]), int(r[F.tenantWh]), int(r[F.commonWh]), int(r[F.lossWh]), int(r[F.lossAllocatedWh]), int(r[F.lossAbnormalWh])));
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
      .map(([t, cells]) => ({ date: zoneOf(tz).dateOf(t), cells: cells.sort((a, b) => PERIODS.indexOf(a.period) - PERIODS.indexOf(b.period)) }));
  }

  /** True when the workers have settled the local date (its site_day summary exists). */
  async daySettled(site: Site, date: string): Promise<boolean> {
    const t = localMidnight(date, site.timezone);
    const [rows] = await this.multi([`SELECT count(${qi(F.masterWh)}) AS n FROM ${qi(M.siteDay)} WHERE ${qi(T.site)} = ${qs(site.id)} AND time = ${t}ms`]);
    return int(rows[0]?.n) > 0;
  }

  async meterHealth(site: Site, now: number): Promise<MeterHealthOut[]> {
    const w = `${qi(T.site)} = ${qs(site.id)}`;
    const [health, last] = await this.multi([
      `SELECT * FROM ${qi(M.meterHealth)} WHERE ${w} GROUP BY ${qi(T.meter)} ORDER BY time DESC LIMIT 1`,
      `SELECT last(${qi(F.wh)}) AS wh FROM ${qi(M.reading)} WHERE ${w} GROUP BY ${qi(T.meter)}`,
    ]);
    return site.meters.map((m) => {
      const h = health.find((r) => r[T.meter] === m.id);
      const l = last.find((r) => r[T.meter] === m.id);
      const num = (v: unknown) => (typeof v === 'number' ? v : null);
      // Who the meter bills now, not the first account the site file lists for the unit.
      const occ = m.role === 'tenant' ? occupantAt(site, m, now) : undefined;
      return {
        meter: m.id,
        role: m.role,
        account: occ ? occ.account || null : (m.account ?? null),
        vacant: occ ? occ.vacant : null,
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

/** The live route's answer from the figures (the balance job's, or computed) and today's own energy per period. */
function liveStatusOf(site: Site, account: Account, now: number, f: { balanceFen: number; hours: string | null; costFen: number; powerW: number | undefined; live: boolean }, today: readonly (readonly [Period, number])[]): LiveStatus {
  const now_ = priceAt(site, account, now);
  const low = account.lowBalance !== undefined ? moneyFen(account.lowBalance) : undefined;
  const todayByPeriod = PERIODS.flatMap((p) => today.filter((x) => x[0] === p && x[1] !== 0).map((x) => ({ period: p, wh: x[1] })));
  return {
    account: account.id,
    time: formatLocal(now, site.timezone),
    period: now_.period,
    price: now_.micro !== undefined ? microText(now_.micro) : null,
    power_kw: f.powerW !== undefined ? new Dec(String(f.powerW)).div(1000).toFixed(3, Dec.ROUND_HALF_UP) : null,
    cost_per_hour: f.powerW !== undefined || f.live ? moneyText(f.costFen) : null,
    balance: moneyText(f.balanceFen),
    balance_source: f.live ? 'live' : 'computed',
    hours_left: f.hours,
    low_balance: low !== undefined ? moneyText(low) : null,
    status: liveStatus(f.balanceFen, low),
    today: todayByPeriod.map((x) => ({ period: x.period, kwh: kwhText(x.wh) })),
    today_kwh: kwhText(todayByPeriod.reduce((s, x) => s + x.wh, 0)),
  };
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

/** The account's own power now (W): its meters' last intervals, as the balance worker computes it. */
/** The meters' power now, W: raw register x multiplier over each last interval (billing.md section 11), none across a meter change. */
function ownPower(meters: readonly Meter[], figures: LoadedLive, now: number): number | undefined {
  let w: number | undefined;
  for (const m of meters) {
    const iv = figures.inputs.lastInterval.get(m.id);
    if (!iv) continue;
    if (iv.wh === 0 && iv.ms > 0) w = w ?? 0;
    const wh = hourAtLastPower(m, iv, now);
    if (wh !== undefined) w = (w ?? 0) + wh;
  }
  return w;
}

function accountFilter(ids: readonly string[]): string {
  return ids.length === 1 ? `${qi(T.account)} = ${qs(ids[0])}` : `(${ids.map((id) => `${qi(T.account)} = ${qs(id)}`).join(' OR ')})`;
}

/** An account with no meter matches nothing (a filter that is never true). */
function meterFilter(ids: readonly string[]): string {
  if (ids.length === 0) return `${qi(T.meter)} = ''`;
  return `(${ids.map((id) => `${qi(T.meter)} = ${qs(id)}`).join(' OR ')})`;
}

/**
 * A statement from the range's charge rows (billing.md section 5): the core's accountBill
 * (lines summed per kind, pool, period and price, never re-priced); revisions >= 1 are
 * also listed as adjustments with the workers' reason.
 */
export function assembleStatement(site: Site, account: Account, from: string, to: string, rows: readonly Row[], openingFen: number, paymentsFen: number): AccountStatement {
  const charges: { kind: ChargeKind; pool?: string; period: Period; price: string; wh: number; fen: number }[] = [];
  const adjustments: (Adjustment & { t: number; order: number })[] = [];
  const zone = zoneOf(site.timezone);
  for (const r of rows) {
    const kind = String(r[T.kind]) as ChargeKind;
    if (kind !== 'own' && kind !== 'common' && kind !== 'loss') continue;
    const pool = kind === 'common' && r[T.pool] ? String(r[T.pool]) : undefined;
    const c = { kind, ...(pool ? { pool } : {}), period: String(r[T.period]) as Period, price: priceText(r[F.price]), wh: int(r[F.wh]), fen: int(r[F.fen]) };
    charges.push(c);
    if (Number(r[T.rev] ?? 0) > 0) {
      adjustments.push({
        t: Number(r.time),
        order: ['own', 'common', 'loss'].indexOf(kind),
        date: zone.dateOf(Number(r.time)),
        kind,
        ...(pool ? { pool } : {}),
        period: c.period,
        kwh: kwhText(c.wh),
        price: c.price,
        amount: moneyText(c.fen),
        reason: String(r[F.reason] ?? 'settled day recomputed'),
      });
    }
  }
  const bill: AccountBill = accountBill(account.id, charges, openingFen, paymentsFen);
  return {
    site: site.id,
    name: account.name,
    from,
    to,
    currency: site.currency,
    ...bill,
    adjustments: adjustments.sort((a, b) => a.t - b.t || a.order - b.order).map(({ t: _t, order: _o, ...a }) => a),
  };
}
