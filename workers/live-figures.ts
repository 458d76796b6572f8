import { addDays, dateOfDayBucket, liveFigures, moneyFen, occupancyPieces, zoneOf } from '../core/index.ts';
import type { DayEnergy, LastInterval, LiveFigures, LiveInputs, LocalDate, MeterEnergy, Period, Site } from '../core/index.ts';
import type { InfluxV1, Row } from '../influx/client.ts';
import { quoteString, rowsOf } from '../influx/client.ts';
import { F, M, T } from '../influx/schema.ts';
import type { TrailingBucketCache } from './bucket-log.ts';
import { lastIntervalAt } from './last-readings.ts';
import type { LastTwo } from './last-readings.ts';

/**
 * Gathers the inputs of the live figures (billing.md section 5) from InfluxDB and hands
 * them to the core's liveFigures: the balance worker runs it every few seconds, and the API
 * runs the same function when no recent balance point exists, so both show one truth.
 * Queries are sums InfluxDB computes (one round trip for all but the charge sums), so the
 * cost follows the number of meters and unsettled days, not the history.
 */

export interface LiveSource {
  readonly influx: InfluxV1;
  readonly site: Site;
  readonly now: number;
  /** Settled charges per account (all revisions), e.g. a cached sum; default: summed now. */
  readonly chargedSums?: () => Promise<Map<string, number>>;
  /**
   * false: the unsettled days and the trailing 24 h are read by their own statements even
   * when the trailing window holds every unsettled day (the equality test of the shared
   * statement, workers/live-window.test.ts). Default true.
   */
  readonly shareWindow?: boolean;
  /**
   * Each meter's last two raw readings as the rollup keeps them (workers/last-readings.ts):
   * the meters found there are not read from InfluxDB. Default: every meter from InfluxDB.
   */
  readonly lastReadings?: () => Promise<ReadonlyMap<string, LastTwo>>;
  /** The worker process's trailing-window cache (workers/bucket-log.ts); default: the site's statement every time. */
  readonly trailingCache?: TrailingBucketCache;
  /** Each account's payments at or before `now`, e.g. a cached sum (workers/balance.ts); default: summed now. */
  readonly paidSums?: () => Promise<PaidSums>;
}

/** Ledger sums of a site at an instant (billing.md section 5: deposits are held apart). */
export interface PaidSums {
  /** Per account: fen of its payments, refunds and transfers at or before the instant. */
  readonly paid: ReadonlyMap<string, number>;
  /** Per account: how many such ledger entries (the alert's "paid since the last check"). */
  readonly count: ReadonlyMap<string, number>;
  /** The first such entry after the instant, if any (the sums are right until then). */
  readonly nextAt?: number;
}

const paidStatement = (site: Site, now: number) =>
  // Deposits are held apart from the prepaid balance (billing.md section 11).
  `SELECT sum(${F.fen}), count(${F.fen}) FROM ${M.payment} WHERE ${T.site} = ${quoteString(site.id)} AND ${T.kind} != 'deposit' AND time <= ${now}ms GROUP BY ${T.account}`;
const paidOf = (rows: readonly Row[]) => ({ paid: new Map(rows.map((r) => [r.account as string, r.sum as number])), count: new Map(rows.map((r) => [r.account as string, r.count as number])) });

/**
 * The ledger sums at `now` and the time of the next entry after it: one statement over
 * every payment series of the site (one per reference: a year of payments is tens of
 * thousands at a site of 1,000 accounts), which the balance job therefore keeps between
 * ledger writes instead of sending it on every run.
 */
export async function sumPayments(influx: InfluxV1, site: Site, now: number): Promise<PaidSums> {
  const [rows, next] = (await influx.queryRaw([paidStatement(site, now), `SELECT first(${F.fen}) FROM ${M.payment} WHERE ${T.site} = ${quoteString(site.id)} AND ${T.kind} != 'deposit' AND time > ${now}ms`].join(';\n'))).map(rowsOf);
  return { ...paidOf(rows), ...(next[0] ? { nextAt: next[0].time as number } : {}) };
}

export interface LoadedLive extends LiveFigures {
  readonly inputs: LiveInputs;
  /** Ledger entries per account at or before now (the alert re-arm test). */
  readonly paymentCount: ReadonlyMap<string, number>;
  /** Last settled local date, if any. */
  readonly settledThrough?: LocalDate;
}

/** Settled charges per account, every revision (billing.md section 5: what the balance is debited with). */
export async function sumCharges(influx: InfluxV1, site: Site): Promise<Map<string, number>> {
  const rows = await influx.query(`SELECT sum(${F.fen}) FROM ${M.charge} WHERE ${T.site} = ${quoteString(site.id)} GROUP BY ${T.account}`);
  return new Map(rows.map((r) => [r.account as string, r.sum as number]));
}

/**
 * Bucket sums per (local day, meter, period) as the core's DayEnergy, days in order. Each
 * piece's rows are from [from, to) of one occupancy piece (core occupancyPieces): their
 * energy is attributed at the piece's first instant in the day (billing.md section 11).
 */
function dayEnergy(site: Site, pieces: readonly { from: number; rows: readonly Row[] }[]): DayEnergy[] {
  const zone = zoneOf(site.timezone);
  const byDay = new Map<LocalDate, MeterEnergy[]>();
  // Each day bucket's date and midnight once (a row per meter and period of each of a few days).
  const days = new Map<number, { date: LocalDate; midnight: number }>();
  for (const { from, rows } of pieces) {
    for (const r of rows) {
      if (typeof r.sum !== 'number' || r.sum === 0) continue;
      let day = days.get(r.time as number);
      if (!day) {
        const d = dateOfDayBucket(site.timezone, r.time as number);
        days.set(r.time as number, (day = { date: d, midnight: zone.midnight(d) }));
      }
      const { date, midnight } = day;
      let list = byDay.get(date);
      if (!list) byDay.set(date, (list = []));
      list.push({ meter: r[T.meter] as string, period: r[T.period] as Period, wh: r.sum, at: Math.max(from, midnight) });
    }
  }
  // In one order whatever the source (a statement, or the cache of workers/bucket-log.ts).
  const order = (x: MeterEnergy, y: MeterEnergy) => (x.meter < y.meter ? -1 : x.meter > y.meter ? 1 : x.period < y.period ? -1 : x.period > y.period ? 1 : (x.at ?? 0) - (y.at ?? 0));
  return [...byDay.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([date, energy]) => ({ date, energy: energy.sort(order) }));
}

/** One bucket-sum statement per occupancy piece of [fromMs, toMs] (one piece unless someone moves in it). */
function pieceQueries(site: Site, fromMs: number, toMs: number, group: string): { from: number; query: string }[] {
  const sq = quoteString(site.id);
  return occupancyPieces(site, fromMs, toMs + 1).map(([a, b]) => ({
    from: a,
    query: `SELECT sum(${F.wh}) FROM ${M.touBucket} WHERE ${T.site} = ${sq} AND time >= ${a}ms AND time < ${b}ms ${group}`,
  }));
}

/**
 * Each meter's bucket energy in [fromMs, toMs) (one local day: the settlement from buckets)
 * per period and occupancy piece, `at` the piece's first instant (billing.md section 11).
 */
export async function bucketEnergy(influx: InfluxV1, site: Site, fromMs: number, toMs: number): Promise<Map<string, MeterEnergy[]>> {
  const sq = quoteString(site.id);
  const pieces = occupancyPieces(site, fromMs, toMs);
  const res = await influx.queryRaw(pieces.map(([a, b]) => `SELECT sum(${F.wh}) FROM ${M.touBucket} WHERE ${T.site} = ${sq} AND time >= ${a}ms AND time < ${b}ms GROUP BY ${T.meter}, ${T.period}`).join(';\n'));
  const out = new Map<string, MeterEnergy[]>();
  pieces.forEach(([a], i) => {
    for (const r of rowsOf(res[i] ?? [])) {
      if (typeof r.sum !== 'number' || r.sum === 0) continue;
      const meter = r[T.meter] as string;
      out.set(meter, [...(out.get(meter) ?? []), { meter, period: r[T.period] as Period, wh: r.sum, at: a }]);
    }
  });
  return out;
}

export async function loadLiveInputs(src: LiveSource): Promise<{ inputs: LiveInputs; paymentCount: ReadonlyMap<string, number>; settledThrough?: LocalDate }> {
  const { influx, site, now } = src;
  const zone = zoneOf(site.timezone);
  const sq = quoteString(site.id);
  const tz = quoteString(site.timezone);
  const pairsP = src.lastReadings?.();
  // The trailing window from the process's cache when given (workers/bucket-log.ts: only the
  // meters whose buckets changed are read again), else by the site's statement below. It
  // depends on `now` only, so it is asked for beside the settled day and the payments.
  const cached = src.trailingCache ? occupancyPieces(site, now - 86_400_000, now + 1).map(([a, b]) => ({ a, b })) : undefined;
  const trailingRowsP = cached ? src.trailingCache!.pieces(influx, site, cached).then((r) => r.map(rowsOf)) : undefined;
  // Not left unobserved while the statement below runs (awaited further down).
  trailingRowsP?.catch(() => undefined);
  const paidP = src.paidSums?.();
  paidP?.catch(() => undefined); // awaited below
  const [settledRows, paidRows] = (await influx.queryRaw([`SELECT last(${F.masterWh}) FROM ${M.siteDay} WHERE ${T.site} = ${sq}`, ...(paidP ? [] : [paidStatement(site, now)])].join(';\n'))).map(rowsOf);
  const settledThrough = settledRows[0] ? zone.dateOf(settledRows[0].time as number) : undefined;
  const today = zone.dateOf(now);
  // Unsettled days: after the last settled one up to today (all history before any settlement).
  const fromMs = settledThrough ? zone.midnight(addDays(settledThrough, 1)) : 0;
  const group = `GROUP BY ${T.meter}, ${T.period}, time(1d) fill(none) tz(${tz})`;
  // Every unsettled day inside the trailing 24 h (the usual case: settled through yesterday):
  // the trailing statement's rows of those days are the unsettled days' rows, so one
  // statement serves both. A bucket-sum statement costs InfluxDB 1.x per series (~70 ms for
  // a site of 1,000 meters however short its range), so this is a third of the job's reads.
  const shared = src.shareWindow !== false && settledThrough !== undefined && fromMs >= now - 86_400_000;
  const unsettledQ = shared ? [] : pieceQueries(site, fromMs, now, group);
  const trailingQ = cached ? [] : pieceQueries(site, now - 86_400_000, now, group);
  // Last intervals: from the rollup's pairs; the meters it cannot tell (none kept, or a
  // reading after now) from InfluxDB, a few by name, many by the site's statement.
  const pairs = (await pairsP) ?? new Map<string, LastTwo>();
  const lastInterval = new Map<string, LastInterval>();
  const ask: string[] = [];
  for (const m of site.meters) {
    const p = pairs.get(m.id);
    const iv = p ? lastIntervalAt(p, now) : 'ask';
    if (iv === 'ask') ask.push(m.id);
    else if (iv) lastInterval.set(m.id, iv);
  }
  const byName = ask.length > 0 && ask.length <= 20 ? ` AND (${ask.map((id) => `${T.meter} = ${quoteString(id)}`).join(' OR ')})` : '';
  const lastQ = ask.length ? [`SELECT ${F.wh} FROM ${M.reading} WHERE ${T.site} = ${sq}${byName} AND time > ${now - 25 * 3_600_000}ms AND time <= ${now}ms GROUP BY ${T.meter} ORDER BY time DESC LIMIT 2`] : [];
  const statements = [
    ...unsettledQ.map((q) => q.query),
    ...trailingQ.map((q) => q.query),
    // The last two readings of the meters asked (no meter regex: slow for 1,000 ids in InfluxDB 1.x).
    ...lastQ,
  ];
  const results = statements.length ? (await influx.queryRaw(statements.join(';\n'))).map(rowsOf) : [];
  const unsettledPieces = unsettledQ.map((q, i) => ({ from: q.from, rows: results[i] }));
  const trailingPieces = cached ? (await trailingRowsP!).map((rows, i) => ({ from: cached[i].a, rows })) : trailingQ.map((q, i) => ({ from: q.from, rows: results[unsettledQ.length + i] }));
  const lastRows = lastQ.length ? results[unsettledQ.length + trailingQ.length] : [];
  const asked = new Set(ask);
  const charged = await (src.chargedSums ?? (() => sumCharges(influx, site)))();
  const { paid, count: paymentCount } = paidP ? await paidP : paidOf(paidRows);
  const closingFen = new Map(site.accounts.map((a) => [a.id, moneyFen(a.openingBalance) + (paid.get(a.id) ?? 0) - (charged.get(a.id) ?? 0)]));

  const trailing = dayEnergy(site, trailingPieces);
  // Shared: a day's rows are the same in both ranges (its buckets from its midnight, which is
  // at or after fromMs; a piece reaching back before it is attributed at the midnight in both),
  // so the days are the same objects, and the core settles each once.
  const found = new Map((shared ? trailing.filter((d) => d.date >= zone.dateOf(fromMs)) : dayEnergy(site, unsettledPieces)).map((d) => [d.date, d]));
  const unsettled: DayEnergy[] = [];
  const first = settledThrough ? addDays(settledThrough, 1) : ([...found.keys()].sort()[0] ?? today);
  for (let d = first; d <= today; d = addDays(d, 1)) unsettled.push(found.get(d) ?? { date: d, energy: [] });

  const byMeter = new Map<string, Row[]>();
  for (const r of lastRows) {
    if (!asked.has(r[T.meter] as string)) continue;
    const list = byMeter.get(r[T.meter] as string) ?? [];
    list.push(r);
    byMeter.set(r[T.meter] as string, list);
  }
  for (const [meter, rows] of byMeter) {
    const [a, b] = [...rows].sort((x, y) => (y.time as number) - (x.time as number));
    if (!a || !b || typeof a[F.wh] !== 'number' || typeof b[F.wh] !== 'number') continue;
    if ((a.time as number) <= now - 3_600_000) continue; // silent for an hour: no power now
    lastInterval.set(meter, { wh: (a[F.wh] as number) - (b[F.wh] as number), ms: (a.time as number) - (b.time as number), at: a.time as number });
  }
  return { inputs: { now, closingFen, unsettled, trailing, lastInterval }, paymentCount, ...(settledThrough ? { settledThrough } : {}) };
}

/** The live figures of every account of a site at `now`, from InfluxDB through the core. */
export async function loadLiveFigures(src: LiveSource): Promise<LoadedLive> {
  const { inputs, paymentCount, settledThrough } = await loadLiveInputs(src);
  return { ...liveFigures(src.site, inputs), inputs, paymentCount, ...(settledThrough ? { settledThrough } : {}) };
}
