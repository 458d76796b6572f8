import { randomBytes } from 'node:crypto';
import { addDays, PERIODS, settleDayMixed, siteIndex, utilityCellFen, zoneOf } from '../core/index.ts';
import type { ChargeLine, DaySettlement, LocalDate, MeterDayFacts, RawSeries, Site } from '../core/index.ts';
import { bucketLine } from '../influx/bucket-lines.ts';
import { logBucketWrites } from './bucket-log.ts';
import type { BucketPoint } from '../influx/bucket-lines.ts';
import { quoteString } from '../influx/client.ts';
import { eventLine } from '../influx/event-lines.ts';
import { F, M, T } from '../influx/schema.ts';
import { accountCellLine, accountDayLine, chargeLine, meterCellLine, meterDayLine, meterMarkLine, shareBasisLine, siteDayLine } from '../influx/settlement-lines.ts';
import { loadWindow, siteOf, writeChunked } from './context.ts';
import { planBucketDay } from './bucket-evidence.ts';
import type { BucketPlan } from './bucket-evidence.ts';
import { readingStoreOf } from './reading-series.ts';
import type { WorkerContext } from './context.ts';
import { redisKeys } from './keys.ts';
import { announceFinalStatements } from './move-out.ts';
import { bucketAccount } from './bucket-account.ts';
import { parsePayload, QUEUE, SettlementJob } from './queues.ts';
import { completeSettlement, pendingSettlements, requestResettlement, requestSiteSettlement, SETTLE_JOB } from './settle-requests.ts';
import { acquireSettleLock } from './settle-lock.ts';
import type { SettleLock } from './settle-lock.ts';

export { SettlementBusyError, SettlementLockLostError } from './settle-lock.ts';

/**
 * Settlement (billing.md section 4): the day's 15-minute buckets where they are exact and
 * the raw readings of the other meters -> the core (settleDayMixed) -> charge lines and the
 * site summary in InfluxDB.
 *
 * What a tenant was charged is never rewritten. A day's first settlement writes its lines
 * as revision 0; when a later run of the same day (late or corrected readings) computes
 * different lines, the difference against everything already written for that day is
 * written as the next revision: adjustment lines with the reason. The sum of all
 * revisions is always the day's current settlement, so a run that crashed half-way is
 * completed by the next run, and a run repeated with unchanged data writes nothing.
 */

export interface SettleResult {
  readonly day: LocalDate;
  /** 'settled' (first time), 'adjusted' (a revision written), 'unchanged'. */
  readonly outcome: 'settled' | 'adjusted' | 'unchanged';
  readonly rev: number;
  readonly lines: number;
  /** Meters settled from their buckets (the rest from raw readings). */
  readonly fromBuckets: number;
}

interface StoredLine {
  account: string;
  kind: string;
  pool: string;
  period: string;
  rev: number;
  wh: number;
  fen: number;
  price: string;
}

const lineKey = (l: { account: string; kind: string; pool?: string; period: string; price: string }) => `${l.account}\u0000${l.kind}\u0000${l.pool ?? ''}\u0000${l.period}\u0000${l.price}`;

/** Every charge point already written for the day (all revisions). */
async function storedLines(ctx: WorkerContext, site: Site, t: number): Promise<StoredLine[]> {
  const rows = await ctx.influx.query(
    `SELECT ${F.wh}, ${F.fen}, ${F.price} FROM ${M.charge} WHERE ${T.site} = ${quoteString(site.id)} AND time = ${t}ms GROUP BY ${T.account}, ${T.kind}, ${T.pool}, ${T.period}, ${T.rev}`,
  );
  for (const r of rows) {
    // Every charge point is written with all three fields in one request; a row without
    // one of them is another run's write still landing (InfluxDB shows a write field by
    // field). Diffing against it would charge its other half again: retry instead.
    if (typeof r.wh !== 'number' || typeof r.fen !== 'number' || typeof r.price !== 'string') {
      throw new SettlementInFlightError(`charges of ${site.id} at ${new Date(t).toISOString()} are being written by another run (a point of rev ${String(r.rev)} shows only part of its fields); retrying later`);
    }
  }
  return rows.map((r) => ({
    account: r.account as string,
    kind: r.kind as string,
    pool: (r.pool as string) ?? '',
    period: r.period as string,
    rev: Number(r.rev),
    wh: r.wh as number,
    fen: r.fen as number,
    price: r.price as string,
  }));
}

function chargePoint(site: string, t: number, l: { account: string; kind: string; pool?: string; period: string; price: string }, rev: number, wh: number, fen: number, reason?: string): string {
  return chargeLine(site, t, { account: l.account, kind: l.kind, ...(l.pool ? { pool: l.pool } : {}), period: l.period, rev, wh, fen, price: l.price, ...(reason ? { reason } : {}) });
}

function summaryLines(site: Site, t: number, day: DaySettlement): string[] {
  return day.cells.map((c) => {
    // What the utility charges for the cell (billing.md section 8), for the recovery panel.
    // A utility tariff without a price for the period is reconcile's error to report; it
    // must not keep a day from settling.
    let utilityFen: number | undefined;
    try {
      utilityFen = utilityCellFen(site, day.date, c.period, c.masterWh);
    } catch {
      utilityFen = undefined;
    }
    return siteDayLine(site.id, t, { ...c, ...(utilityFen !== undefined ? { utilityFen } : {}) }, site.loss.normalRate);
  });
}

/** Quality flags of the settled day as events (deterministic keys: a re-run overwrites them). */
function flagLines(site: Site, day: { flags: readonly { meter: string; time: number; kind: string; detail: string }[] }): string[] {
  return day.flags.map((f) => eventLine(site.id, { kind: f.kind, ...(f.meter ? { meter: f.meter } : {}), detail: f.detail, time: f.time }));
}

/**
 * The facts a verifiable statement shows (issue 10): each meter's registers and energy
 * per period with its estimated part, how each pool and the loss were divided, and each
 * account's area weight and pools that day. Overwritten by every run of the day.
 */
function factLines(site: Site, t: number, settlement: DaySettlement, meters: readonly MeterDayFacts[]): string[] {
  const out: string[] = [];
  for (const m of meters) {
    out.push(
      meterDayLine(site.id, t, {
        meter: m.meter,
        wh: m.wh,
        ...(m.start ? { startWh: m.start.wh, startMs: m.start.ms, startEstimated: m.start.estimated } : {}),
        ...(m.end ? { endWh: m.end.wh, endMs: m.end.ms, endEstimated: m.end.estimated } : {}),
      }),
    );
    for (const c of m.cells) out.push(meterCellLine(site.id, t, { meter: m.meter, period: c.period, wh: c.wh, gapWh: c.gapWh }));
    for (const k of m.marks ?? []) out.push(meterMarkLine(site.id, { meter: m.meter, ms: k.ms, wh: k.wh, estimated: k.estimated, whBefore: k.whBefore }));
  }
  for (const b of settlement.shares ?? []) out.push(shareBasisLine(site.id, t, b));
  // Accounts there for part of a cell (billing.md section 11): their prorated weights.
  for (const o of settlement.occupancy ?? []) out.push(accountCellLine(site.id, t, o));
  const idx = siteIndex(site);
  idx.accountIds.forEach((id, i) => {
    const pools = idx.pools.filter((p) => p.members.includes(i)).map((p) => p.id);
    out.push(accountDayLine(site.id, t, { account: id, areaWeight: idx.area[i], pools }));
  });
  return out;
}

/** The diff of the new settlement against what is stored: lines of the next revision(s). */
export function adjustmentLines(next: readonly ChargeLine[], stored: readonly StoredLine[]): { key: string; line: { account: string; kind: string; pool?: string; period: string; price: string }; wh: number; fen: number }[] {
  const net = new Map<string, { line: StoredLine; wh: number; fen: number }>();
  for (const s of stored) {
    const k = lineKey(s);
    const cur = net.get(k);
    if (cur) {
      cur.wh += s.wh;
      cur.fen += s.fen;
    } else net.set(k, { line: s, wh: s.wh, fen: s.fen });
  }
  const out: ReturnType<typeof adjustmentLines> = [];
  const seen = new Set<string>();
  for (const l of next) {
    const k = lineKey(l);
    seen.add(k);
    const cur = net.get(k);
    const dwh = l.wh - (cur?.wh ?? 0);
    const dfen = l.fen - (cur?.fen ?? 0);
    if (dwh !== 0 || dfen !== 0) out.push({ key: k, line: l, wh: dwh, fen: dfen });
  }
  // Reversals of lines that no longer exist (e.g. at an old price) come first, so their
  // revision precedes the replacement's.
  const reversals: typeof out = [];
  for (const [k, cur] of net) {
    if (seen.has(k) || (cur.wh === 0 && cur.fen === 0)) continue;
    reversals.push({ key: k, line: { ...cur.line, pool: cur.line.pool || undefined }, wh: -cur.wh, fen: -cur.fen });
  }
  return [...reversals, ...out];
}

/**
 * Settles (or re-settles) one day of a site. Idempotent: see the file comment.
 * @param reason why a settled day is recomputed (written on adjustment lines)
 * @param fromBuckets whether meters may be settled from their buckets: a day settled again
 *   on request (late or imported readings, a site change, a meter back after silence) is
 *   settled from raw readings, since what changed may be older than the rollup looks back
 */
export async function settleSiteDay(ctx: WorkerContext, site: Site, day: LocalDate, reason = 'recomputed', fromBuckets = true, lock?: Pick<SettleLock, 'assertHeld'>): Promise<SettleResult> {
  const zone = zoneOf(site.timezone);
  const a = zone.midnight(day);
  const b = zone.midnight(addDays(day, 1));
  // Meters whose buckets are exact are settled from them (issue 15, core/settle/bucket-day.ts),
  // the others from their raw window: the lookback's readings are the counter rules'
  // history, the lookahead's the interval across midnight; each meter's last reading before
  // the window and first after it are added so a meter silent longer than either still
  // spreads that interval (billing.md section 3), as the offline bill and the rollup do.
  const plan: BucketPlan =
    ctx.tuning.settleFromBuckets && fromBuckets
      ? await planBucketDay(ctx.influx, ctx.redis, ctx.keyPrefix, site, day, ctx.tuning.settleLookbackMs, ctx.tuning.settleLookaheadMs)
      : { fromBuckets: [], raw: site.meters.map((m) => ({ meter: m.id, why: fromBuckets ? 'settleFromBuckets is off' : 'settled again on request' })) };
  const rawIds = plan.raw.map((m) => m.meter);
  // A regex over many ids is slow in InfluxDB 1.x: past half the meters, read all and keep these.
  const raw = rawIds.length === 0 ? new Map<string, RawSeries>() : await loadWindow(ctx.influx, site.id, a - ctx.tuning.settleLookbackMs, b + ctx.tuning.settleLookaheadMs, undefined, rawIds.length > site.meters.length / 2 ? 'all' : rawIds);
  const rawSet = new Set(rawIds);
  // With the tariff registers read with each reading (a gap spread by them, billing.md section 2 rule 5).
  const store = readingStoreOf(site, new Map([...raw].filter(([m]) => rawSet.has(m))));
  // The core settles the day: bucket meters from their energy, raw meters through the
  // counter rules and the split of their window (their 15-minute pieces give their buckets,
  // compared with the rollup's below), then section 4 on all of it.
  const t0 = performance.now();
  const buckets: BucketPoint[] = [];
  const mixed = settleDayMixed(site, day, {
    fromBuckets: plan.fromBuckets,
    raw: store,
    // The window's first instant: a meter change before a meter's first reading here is
    // known only by its multiplier (billing.md section 11), as in the rollup's carried state.
    historyFromMs: a - ctx.tuning.settleLookbackMs,
    gridMinutes: 15,
    onSegments: (mi, cal, seg) => {
      const d = cal.days.indexOf(day);
      const meter = site.meters[mi];
      for (let k = 0; k < cal.segments; k++) {
        if (cal.day[k] === d && seg[k] !== 0) buckets.push({ meter: meter.id, role: meter.role, ...bucketAccount(site, meter, cal.start[k]), period: PERIODS[cal.period[k]], start: cal.start[k], wh: seg[k] });
      }
    },
  });
  ctx.log.debug({ site: site.id, day, coreMs: Math.round(performance.now() - t0), fromBuckets: plan.fromBuckets.length, fromRaw: plan.raw.length }, 'settled day');
  if (plan.raw.length && plan.fromBuckets.length) ctx.log.info({ site: site.id, day, fromBuckets: plan.fromBuckets.length, fromRaw: plan.raw.slice(0, 20) }, 'settlement: some meters from raw readings');
  const settlement = mixed.settlement;
  const flags = mixed.flags;
  const facts = mixed.facts;
  // Facts and buckets first: a crash before the charges leaves the day unsettled, so the
  // next run writes them again; after it, they are there. Not by a run that lost its lock
  // meanwhile: its readings may be older than those of the run that holds it now.
  await lock?.assertHeld();
  const rewritten = await bucketChanges(ctx, site, a, b, buckets, rawSet);
  // The bucket log (the balance's cache) and the API's stamps must hear of a rewrite even if
  // this process dies between the write and the log: its re-run would find the buckets
  // already right and rewrite, so log, nothing. The meters are noted first; the next run logs
  // a note a crash left behind.
  const pending = redisKeys(ctx.keyPrefix, site.id).bucketRewritePending;
  const left = await ctx.redis.get(pending);
  const meters = [...new Set([...(left ? left.split('\n') : []), ...rewritten.meters])];
  if (meters.length) await ctx.redis.set(pending, meters.join('\n'));
  await writeChunked(ctx.influx, [...factLines(site, a, settlement, facts), ...rewritten.lines]);
  await logBucketWrites(ctx.redis, ctx.keyPrefix, site.id, meters);
  if (meters.length) await ctx.redis.del(pending);
  const stored = await storedLines(ctx, site, a);
  // The diff below is right only if no other run wrote charges since we read them.
  await lock?.assertHeld();
  const summary = [...summaryLines(site, a, settlement), ...flagLines(site, { flags })];
  if (stored.length === 0) {
    // First settlement: revision 0 and the summary in one request (one shard, one WAL entry).
    const lines = settlement.lines.map((l) => chargePoint(site.id, a, l, 0, l.wh, l.fen));
    await writeChunked(ctx.influx, [...lines, ...summary]);
    // A day with no charge lines at all still counts as settled through its site_day points.
    return { day, outcome: 'settled', rev: 0, lines: lines.length, fromBuckets: plan.fromBuckets.length };
  }
  const diff = adjustmentLines(settlement.lines, stored);
  if (diff.length === 0) {
    await writeChunked(ctx.influx, summary);
    return { day, outcome: 'unchanged', rev: Math.max(...stored.map((s) => s.rev)), lines: 0, fromBuckets: plan.fromBuckets.length };
  }
  // Two lines of one tag set in one revision would overwrite each other (a price change of
  // a settled day): the second goes to the following revision.
  let rev = Math.max(...stored.map((s) => s.rev)) + 1;
  const firstRev = rev;
  const used = new Map<string, number>();
  const lines: string[] = [];
  for (const d of diff) {
    const tagKey = `${d.line.account}\u0000${d.line.kind}\u0000${d.line.pool ?? ''}\u0000${d.line.period}`;
    const r = (used.get(tagKey) ?? firstRev - 1) + 1;
    used.set(tagKey, r);
    rev = Math.max(rev, r);
    lines.push(chargePoint(site.id, a, d.line, r, d.wh, d.fen, reason));
  }
  await writeChunked(ctx.influx, [...lines, ...summary]);
  ctx.log.info({ site: site.id, day, rev, lines: lines.length, reason }, 'settled day changed: adjustment lines written');
  return { day, outcome: 'adjusted', rev, lines: lines.length, fromBuckets: plan.fromBuckets.length };
}

/**
 * The day's buckets as the settlement cut them, against those stored (the rollup's): only
 * differences are written, and a stored bucket the settlement has no energy for becomes 0.
 * Normally nothing differs (workers/bucket-cells.test.ts); where the settlement's window
 * saw other history than the rollup, the settled day is the truth, usage included.
 */
async function bucketChanges(ctx: WorkerContext, site: Site, a: number, b: number, buckets: readonly BucketPoint[], meters: ReadonlySet<string>): Promise<{ lines: string[]; meters: string[] }> {
  // Only the meters settled from raw readings: the others' buckets are what was settled.
  if (meters.size === 0) return { lines: [], meters: [] };
  const rows = (await ctx.influx.query(`SELECT ${F.wh} FROM ${M.touBucket} WHERE ${T.site} = ${quoteString(site.id)} AND time >= ${a}ms AND time < ${b}ms GROUP BY ${T.meter}, ${T.period}`)).filter((r) => meters.has(r.meter as string));
  const stored = new Map(rows.map((r) => [`${r.meter}|${r.period}|${r.time}`, r.wh as number]));
  const out: string[] = [];
  const touched = new Set<string>();
  const byMeter = new Map(site.meters.map((m) => [m.id, m]));
  for (const bk of buckets) {
    const key = `${bk.meter}|${bk.period}|${bk.start}`;
    if (stored.get(key) !== bk.wh) {
      out.push(bucketLine(site.id, bk));
      touched.add(bk.meter);
    }
    stored.delete(key);
  }
  for (const [key, wh] of stored) {
    if (wh === 0) continue;
    const [meter, period, start] = key.split('|');
    const m = byMeter.get(meter);
    if (m) {
      out.push(bucketLine(site.id, { meter, role: m.role, ...bucketAccount(site, m, Number(start)), period, start: Number(start), wh: 0 }));
      touched.add(meter);
    }
  }
  if (out.length) ctx.log.info({ site: site.id, day: zoneOf(site.timezone).dateOf(a), buckets: out.length }, 'settlement rewrote buckets of the day');
  return { lines: out, meters: [...touched] };
}

/** Local dates already settled (they have site_day points), from InfluxDB, the only truth. */
export async function settledDays(ctx: WorkerContext, site: Site, fromMs = 0): Promise<Set<LocalDate>> {
  const zone = zoneOf(site.timezone);
  const rows = await ctx.influx.query(`SELECT ${F.masterWh} FROM ${M.siteDay} WHERE ${T.site} = ${quoteString(site.id)} AND time >= ${fromMs}ms GROUP BY ${T.period}`);
  return new Set(rows.map((r) => zone.dateOf(r.time as number)));
}

/** The local date of the site's first raw reading, or undefined with none. */
async function firstReadingDay(ctx: WorkerContext, site: Site): Promise<LocalDate | undefined> {
  const rows = await ctx.influx.query(`SELECT first(${F.wh}) FROM ${M.reading} WHERE ${T.site} = ${quoteString(site.id)}`);
  return rows[0] ? zoneOf(site.timezone).dateOf(rows[0].time as number) : undefined;
}

const firstDays = new WeakMap<WorkerContext, Map<string, { at: number; day: LocalDate | undefined }>>();

/**
 * Days that are due (local midnight after them + grace has passed) and not yet settled,
 * oldest first. `firstDayMaxAgeMs`: the site's first reading day may come from this
 * process's memory if read at most that long ago (the alerts job's settlement lag, every
 * minute per site: `first()` over every reading series of the site costs InfluxDB per
 * series); the settlement itself always reads it.
 */
export async function dueDays(ctx: WorkerContext, site: Site, opts: { firstDayMaxAgeMs?: number } = {}): Promise<LocalDate[]> {
  const zone = zoneOf(site.timezone);
  const bySite = firstDays.get(ctx) ?? new Map<string, { at: number; day: LocalDate | undefined }>();
  firstDays.set(ctx, bySite);
  const t = Date.now();
  const hit = bySite.get(site.id);
  let first: LocalDate | undefined;
  if (hit && hit.day !== undefined && t - hit.at <= (opts.firstDayMaxAgeMs ?? -1)) first = hit.day;
  else {
    first = await firstReadingDay(ctx, site);
    bySite.set(site.id, { at: t, day: first });
  }
  if (!first) return [];
  const done = await settledDays(ctx, site, zone.midnight(first));
  const out: LocalDate[] = [];
  const now = ctx.now();
  for (let d = first; zone.midnight(addDays(d, 1)) + ctx.tuning.settlementGraceMs <= now; d = addDays(d, 1)) {
    if (!done.has(d)) out.push(d);
  }
  return out;
}

/** A stored charge point shows only some of its fields: another run's write is landing (retryable). */
export class SettlementInFlightError extends Error {
  override name = 'SettlementInFlightError';
}

type Progress = (p: { day: LocalDate; done: number; of: number }) => Promise<void>;

/**
 * A job of the settlement queue (settle-requests.ts has the scheme):
 * - `settle-tick` (cron, start-up) and a job naming a `day` (added by older code or by
 *   hand) only record what they ask for and ask for the site's one deduplicated job;
 * - the site's job (`settle`) settles: processSettlement.
 */
export async function runSettlementJob(ctx: WorkerContext, job: { name: string; data: unknown; updateProgress(p: object): Promise<void> }): Promise<SettleResult[]> {
  const data = parsePayload(SettlementJob, QUEUE.settlement, job.data);
  siteOf(ctx, data.site);
  if (job.name === SETTLE_JOB.tick) {
    await requestSiteSettlement(ctx.queues, data.site);
    return [];
  }
  if (data.day) {
    await requestResettlement(ctx, data.site, data.day, data.reason ?? 'recomputed');
    return [];
  }
  return processSettlement(ctx, data, (p) => job.updateProgress(p));
}

/**
 * Settles a site: the day asked for, or (no day) every due day not yet settled and every
 * requested day that is due, in day order, until none is left (drainSite). One site at a
 * time across all processes: the site's job is deduplicated (settle-requests.ts), and a
 * Redis lock held for the whole run (settle-lock.ts) guards against jobs added by hand
 * and against a job handed on while it still runs. Busy or lost -> a retryable error.
 */
export async function processSettlement(ctx: WorkerContext, job: SettlementJob, progress?: Progress): Promise<SettleResult[]> {
  const site = siteOf(ctx, job.site);
  const lock = await acquireSettleLock(ctx.redis, redisKeys(ctx.keyPrefix, site.id).settleLock, ctx.tuning.settleLockMs, `site ${site.id}`);
  try {
    if (job.day) {
      await lock.assertHeld();
      // A day asked for by name is settled again on request: from raw readings (settleSiteDay).
      const r = await settleAndMark(ctx, site, job.day, job.reason, false, lock);
      await progress?.({ day: job.day, done: 1, of: 1 });
      return [r];
    }
    return await drainSite(ctx, site, lock, job.reason, progress);
  } finally {
    await lock.release();
  }
}

async function settleAndMark(ctx: WorkerContext, site: Site, day: LocalDate, reason: string | undefined, fromBuckets: boolean, lock: SettleLock): Promise<SettleResult> {
  const r = await settleSiteDay(ctx, site, day, reason, fromBuckets, lock);
  // Section 11: a move-out day settled for the first time makes its final statement final.
  if (r.outcome === 'settled') await announceFinalStatements(ctx, site, day);
  // After the write, also for 'unchanged' (the retry of a run killed before this line).
  // A random token, not a counter: a Redis that lost its last second cannot bring back
  // a value a balance worker already cached for different charges.
  await ctx.redis.set(redisKeys(ctx.keyPrefix, site.id).chargesVersion, randomBytes(8).toString('hex'));
  return r;
}

/**
 * Due days not yet settled, and requested days that are due, oldest first; then the
 * requests that came in meanwhile, until none is left. A requested day that is not due
 * yet (today, or before its grace) stays recorded: settling it early would mark it
 * settled before its last readings are in. A request is removed after its day was
 * settled, unless it was made again meanwhile (then that day goes round once more).
 */
async function drainSite(ctx: WorkerContext, site: Site, lock: SettleLock, reason: string | undefined, progress?: Progress): Promise<SettleResult[]> {
  const zone = zoneOf(site.timezone);
  const isDue = (d: LocalDate) => zone.midnight(addDays(d, 1)) + ctx.tuning.settlementGraceMs <= ctx.now();
  const out: SettleResult[] = [];
  let due = await dueDays(ctx, site);
  for (;;) {
    const requested = new Map((await pendingSettlements(ctx, site.id)).filter((r) => isDue(r.day)).map((r) => [r.day, r]));
    const days = [...new Set([...due, ...requested.keys()])].sort();
    if (days.length === 0) return out;
    const of = out.length + days.length;
    for (const day of days) {
      await lock.assertHeld();
      const req = requested.get(day);
      const r = await settleAndMark(ctx, site, day, req?.reason ?? reason, req === undefined, lock);
      if (req) await completeSettlement(ctx, site.id, req);
      out.push(r);
      ctx.log.info({ site: site.id, ...r, done: out.length, of }, 'settlement');
      await progress?.({ day, done: out.length, of });
    }
    due = [];
  }
}
