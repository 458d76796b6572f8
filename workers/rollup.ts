import { randomBytes } from 'node:crypto';
import { addDays, bucketCalendars, counterState, dateOfDayBucket, rollupStep, zoneOf } from '../core/index.ts';
import type { CounterState, LocalDate, Meter, RawSeries, Site, StateReading } from '../core/index.ts';
import { bucketLine } from '../influx/bucket-lines.ts';
import type { InfluxV1 } from '../influx/client.ts';
import { quoteString, rowsOf } from '../influx/client.ts';
import { eventLine, workerLine } from '../influx/event-lines.ts';
import { F, M, T } from '../influx/schema.ts';
import { idRegex, siteOf, writeChunked } from './context.ts';
import type { WorkerContext } from './context.ts';
import { bucketAccount } from './bucket-account.ts';
import { redisKeys } from './keys.ts';
import { batchMeters, requestBalance, requestRollup } from './queues.ts';
import { READING_FIELDS, seriesOfRows } from './reading-series.ts';
import { logBucketWrites } from './bucket-log.ts';
import { lastTwoText, nextLastTwo, parseLastTwo } from './last-readings.ts';
import { markRollup, takeRollup, takenKey } from './rollup-dirty.ts';
import { batchKey, logPosition, NO_POSITION, readReadingsLog, syncTag } from './readings-cursor.ts';
import { requestResettlement } from './settle-requests.ts';
import type { RollupJob } from './queues.ts';
import { settledDays } from './settlement.ts';
import { throwFirst } from '../lib/redis.ts';

/**
 * Rollup: each meter's raw readings since the last run -> the core's counter rules and
 * 15-minute TOU split -> `tou_bucket` points keyed by (meter, period, bucket start), so a
 * retry or a recompute overwrites the same points. Buckets feed the live balance (the
 * provisional settlement of billing.md section 5), usage, advice and the dashboards.
 *
 * Exactness: between runs each meter carries its counter state (core CounterState: the
 * accepted readings reaching back to the start of the bucket holding its last accepted
 * reading, and up to two pending spike readings), so the rules resume as if run over the
 * whole history; a meter's first run starts at its very first reading. Its buckets are
 * then the same pieces the settlement cuts from the same readings (they telescope to the
 * settled cells: workers/bucket-cells.test.ts). History is worked through in chunks of
 * `rollupMaxReadings` per meter, each run queueing the next at once.
 *
 * Late readings (older than a meter's position: a spool draining after an outage, an
 * import) are found by per-day fingerprints (count and sum of raw readings) over the last
 * `lateWindowDays`; the meter's state goes back to the changed day (started like the
 * settlement, `settleLookbackMs` before it) and settled days among it and the day before get
 * a settlement job with the reason, which writes adjustment lines and the day's buckets.
 */

export interface RollupResult {
  readonly meters: number;
  readonly readings: number;
  readonly buckets: number;
  readonly lateDays: number;
  /** Some meter has more readings than one run takes: another run was queued. */
  readonly more: boolean;
}

/** What a meter carries between runs (Redis, one JSON per meter). */
interface MeterState {
  /** Readings after this instant (ms) are new. */
  readonly w: number;
  /** Accepted and pending readings, each with the tariff registers read with it (core StateReading). */
  readonly acc: readonly StateReading[];
  readonly pend: readonly StateReading[];
  /** Buckets are written only from this instant (set when the state was reset to a day). */
  readonly from?: number;
  /** Reset: the last reading at or before `w` is the baseline (as the settlement's window starts). */
  readonly seed?: boolean;
  /**
   * The first instant the meter's buckets stand for: its first reading (the first run reads
   * all history), or the instant a reset restarted them from. Absent in states written before
   * issue 15: since the meter's first reading. The settlement reads buckets only from here
   * (workers/bucket-evidence.ts).
   */
  readonly h?: number;
  /**
   * The rollup batch and its log position's epoch ("b/n@id") the meter is synced to: every
   * reading of it written after `w` is in the site's readings log after the batch's position
   * (workers/readings-cursor.ts). Absent: its new readings come from InfluxDB.
   */
  readonly s?: string;
  /**
   * When a run last took the meter's readings from the log (ms, the workers' clock). The tick
   * skips a synced meter only while this is recent: a meter whose collector does not log (one
   * run without Redis, which is allowed) is read from InfluxDB at every tick, as before the log.
   */
  readonly l?: number;
}

/** Every reading written after the meter's position is in the batch's log entries after the batch's position. */
function isSynced(st: MeterState | undefined, tag: string): boolean {
  return st !== undefined && st.s === tag && !st.seed;
}

/** The readings after `w` (ms). */
function after(series: RawSeries, w: number): RawSeries {
  let i = 0;
  while (i < series.time.length && series.time[i] <= w) i++;
  if (i === 0) return series;
  const tariff = series.tariff;
  let k = 0;
  while (tariff && k < tariff.time.length && tariff.time[k] <= w) k++;
  return {
    time: series.time.subarray(i),
    wh: series.wh.subarray(i),
    ...(tariff ? { tariff: { time: tariff.time.subarray(k), wh: tariff.wh.subarray(k), reg: tariff.reg.subarray(k * 4) } } : {}),
  };
}

function parseState(text: string | null): MeterState | undefined {
  if (!text) return undefined;
  try {
    const s = JSON.parse(text) as MeterState;
    return typeof s.w === 'number' && Array.isArray(s.acc) && Array.isArray(s.pend) ? s : undefined;
  } catch {
    return undefined;
  }
}

/** One statement per meter (equality on the meter tag is an index lookup; a regex over 1,000 ids is slow in InfluxDB 1.x). */
async function loadNew(influx: InfluxV1, site: string, meters: readonly { id: string; state?: MeterState }[], limit: number): Promise<{ raw: Map<string, RawSeries>; seeds: Map<string, StateReading> }> {
  const sq = quoteString(site);
  const statements: string[] = [];
  const who: { meter: string; seed: boolean }[] = [];
  for (const m of meters) {
    const after = m.state ? ` AND time > ${m.state.w}ms` : '';
    // With the tariff registers: a gap is spread by them (billing.md section 2 rule 5).
    statements.push(`SELECT ${READING_FIELDS} FROM ${M.reading} WHERE ${T.site} = ${sq} AND ${T.meter} = ${quoteString(m.id)}${after} ORDER BY time ASC LIMIT ${limit}`);
    who.push({ meter: m.id, seed: false });
    if (m.state?.seed) {
      statements.push(`SELECT ${READING_FIELDS} FROM ${M.reading} WHERE ${T.site} = ${sq} AND ${T.meter} = ${quoteString(m.id)} AND time <= ${m.state.w}ms ORDER BY time DESC LIMIT 1`);
      who.push({ meter: m.id, seed: true });
    }
  }
  const raw = new Map<string, RawSeries>();
  const seeds = new Map<string, StateReading>();
  if (statements.length === 0) return { raw, seeds };
  const res = await influx.queryRaw(statements.join(';\n'));
  who.forEach((w, i) => {
    const s = res[i]?.[0];
    const series = s ? seriesOfRows(s.columns, s.values) : { time: new Float64Array(0), wh: new Float64Array(0) };
    if (w.seed) {
      // The baseline with the registers read with it (the state's reading form).
      const seed = counterState(series, series, Infinity).accepted[0];
      if (seed) seeds.set(w.meter, seed);
      return;
    }
    raw.set(w.meter, series);
  });
  return { raw, seeds };
}

function chunks<T>(xs: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

/**
 * Meters read by name at most, in statements of NAMED_CHUNK; more are read by the site's
 * statement. Naming costs InfluxDB 1.x more than linearly (a site of 1,000 meters, quiet
 * machine: 100 names 9 ms, 200 names 17-23 ms, 400 names 58 ms, the whole site 48-87 ms),
 * so 500 meters are five statements of 100 (~45 ms).
 */
const NAMED_MAX = 500;
const NAMED_CHUNK = 100;

/** Positions at most this old are read by the batch's one statement; older ones (a silent meter) by their own. */
const RECENT_MS = 3_600_000;

/**
 * The new readings of meters whose positions are recent, in one statement: the site's
 * readings after the oldest of those positions, per meter (GROUP BY: LIMIT counts per
 * series), each meter keeping those after its own position. At 100,000 meters one
 * statement per meter was ~100,000 statements a round (and ~3,300/s for a 30 s tick), almost
 * all of them empty; the time range here is the last minutes. Exact: a meter's new readings
 * are after its position, so after the oldest one, in time order; a meter with `limit` rows
 * in the answer may have more than it got and is left to its own statement (not in the
 * result), like the meters without a recent plain position (first run, reset, silent).
 */
async function loadRecent(influx: InfluxV1, site: string, meters: readonly { id: string; state?: MeterState }[], limit: number): Promise<Map<string, RawSeries>> {
  const out = new Map<string, RawSeries>();
  // An announced run's meters by name: InfluxDB 1.x then opens only their series (~4 ms for
  // 30 meters against ~30 ms for a site of 1,000, quiet machine); many, the site's.
  const groups = meters.length <= NAMED_MAX ? chunks(meters, NAMED_CHUNK) : [meters];
  const statements = groups.map((g) => {
    const byName = meters.length <= NAMED_MAX ? ` AND (${g.map((m) => `${T.meter} = ${quoteString(m.id)}`).join(' OR ')})` : '';
    const oldest = Math.min(...g.map((m) => m.state!.w));
    return `SELECT ${READING_FIELDS} FROM ${M.reading} WHERE ${T.site} = ${quoteString(site)}${byName} AND time > ${oldest}ms GROUP BY ${T.meter} ORDER BY time ASC LIMIT ${limit}`;
  });
  const series = (await influx.queryRaw(statements.join(';\n'))).flat();
  const of = new Map(series.map((s) => [s.tags?.[T.meter], s]));
  for (const m of meters) {
    const s = of.get(m.id);
    if (!s) {
      out.set(m.id, { time: new Float64Array(0), wh: new Float64Array(0) });
      continue;
    }
    if (s.values.length >= limit) continue;
    const ti = s.columns.indexOf('time');
    out.set(m.id, seriesOfRows(s.columns, s.values.filter((v) => (v[ti] as number) > m.state!.w)));
  }
  return out;
}

/**
 * Makes the rollup of some meters start again at `fromMs` (a site change that moves their
 * occupants, multipliers or meter changes: billing.md section 11): their buckets from then
 * on are deleted and written again by the next runs, from the last reading before it, like
 * after late readings. `fromMs` -Infinity: from each meter's first reading.
 */
export async function restartRollup(ctx: WorkerContext, site: Site, meterIds: readonly string[], fromMs: number): Promise<void> {
  if (meterIds.length === 0) return;
  const keys = redisKeys(ctx.keyPrefix, site.id);
  const sq = quoteString(site.id);
  const since = Number.isFinite(fromMs) ? ` AND time >= ${fromMs}ms` : '';
  await ctx.influx.queryRaw(meterIds.map((id) => `DELETE FROM ${M.touBucket} WHERE ${T.site} = ${sq} AND ${T.meter} = ${quoteString(id)}${since}`).join(';\n'));
  await logBucketWrites(ctx.redis, ctx.keyPrefix, site.id, meterIds);
  if (!Number.isFinite(fromMs)) {
    await ctx.redis.hdel(keys.rollupState, ...meterIds);
    return;
  }
  const reset = JSON.stringify({ w: fromMs - ctx.tuning.settleLookbackMs - 1, acc: [], pend: [], from: fromMs, seed: true, h: fromMs } satisfies MeterState);
  await ctx.redis.hset(keys.rollupState, Object.fromEntries(meterIds.map((id) => [id, reset])));
  // Their batches' next runs (an announcement or the tick) take them even if they are silent.
  await markRollup(ctx.redis, ctx.keyPrefix, site.id, meterIds);
}

/** The rollup job of one meter batch. */
export async function processRollup(ctx: WorkerContext, job: RollupJob): Promise<RollupResult> {
  const site = siteOf(ctx, job.site);
  const keys = redisKeys(ctx.keyPrefix, site.id);
  // One run per batch at a time: two overlapping runs would race on the carried state.
  const lock = `${keys.rollupLock}:${job.batch}/${job.batches}`;
  const token = randomBytes(8).toString('hex');
  if ((await ctx.redis.set(lock, token, 'PX', 120_000, 'NX')) !== 'OK') {
    // Another run of the batch (a job added by hand, a killed worker's lock): ask again, so
    // data announced for this run is not left to the safety tick.
    await requestRollup(ctx.queues, site.id, job.batch, job.batches, 2000, job.marked);
    return { meters: 0, readings: 0, buckets: 0, lateDays: 0, more: false };
  }
  try {
    return await rollupBatch(ctx, site, job);
  } finally {
    // Only our own lock: one that expired under a very long run may be another run's now.
    await ctx.redis.eval(UNLOCK, 1, lock, token).catch(() => undefined);
  }
}

/** The balance waits this long after a rollup with readings: the site's other batches finishing then share its run. */
const BALANCE_AFTER_ROLLUP_MS = 250;

const UNLOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

async function rollupBatch(ctx: WorkerContext, site: Site, job: RollupJob): Promise<RollupResult> {
  const keys = redisKeys(ctx.keyPrefix, site.id);
  const batch = batchMeters(site, job.batch, job.batches);
  const bk = batchKey(job.batch, job.batches);
  // The readings log first (workers/readings-cursor.ts): every entry up to the position it
  // returns was written to InfluxDB before any statement below reads it.
  const log = await readReadingsLog(ctx.redis, ctx.keyPrefix, site.id, bk);
  // A marked run queries only the meters announced (or left by a killed run) and those the
  // log has readings of; the others' positions stay where they are until their own
  // announcement or the safety tick. A run the log cannot vouch for reads every meter.
  const taken = await takeRollup(ctx.redis, ctx.keyPrefix, site.id, job.batch, job.batches, batch);
  const full = !job.marked || taken.all || (log.gap !== undefined && log.gap !== NO_POSITION);
  const tag = syncTag(bk, log);
  // Synced meters the log has nothing for are read from InfluxDB by an unmarked run, a gap
  // run, a meter named by an announcement and, every rollupResyncEveryMs, the tick.
  const resync = !job.marked || log.gap !== undefined || (taken.all && (await resyncDue(ctx, site.id, bk)));
  if (log.gap !== undefined) ctx.log.debug({ site: site.id, batch: bk, why: log.gap }, 'rollup: readings log cannot vouch; reading the batch from InfluxDB');
  const inBatch = new Set(batch);
  const ids = full ? batch : [...new Set([...taken.meters, ...[...log.readings.keys()].filter((id) => inBatch.has(id))])];
  const wanted = new Set(ids);
  const meters = site.meters.filter((m) => wanted.has(m.id));
  const now = ctx.now();
  const zone = zoneOf(site.timezone);
  // One round trip (the keys share the site's slot: a Redis Cluster takes the pipeline whole).
  const [stored, marks, pairs] = ids.length ? await readHashes(ctx.redis, [keys.rollupState, keys.watermarks, keys.lastReadings], ids) : [[], [], []];
  const states = new Map(ids.map((id, i) => [id, parseState(stored[i])]));
  const lastTwo = new Map(ids.map((id, i) => [id, parseLastTwo(pairs[i])]));
  const seen = new Map(ids.map((id, i) => [id, marks[i] === null ? -Infinity : Number(marks[i])]));
  // From the log: synced meters it has readings of (the rest of the run's meters from InfluxDB).
  const viaLog = new Set(log.gap === undefined ? meters.filter((m) => isSynced(states.get(m.id), tag) && log.readings.has(m.id)).map((m) => m.id) : []);
  const named = new Set(taken.all ? [] : taken.meters);
  const fedByLog = (st: MeterState | undefined) => st?.l !== undefined && now - st.l < ctx.tuning.rollupResyncEveryMs && now >= st.l;
  const fromInflux = meters.filter((m) => !viaLog.has(m.id) && (resync || named.has(m.id) || !isSynced(states.get(m.id), tag) || !fedByLog(states.get(m.id))));
  const limit = Math.min(ctx.tuning.rollupMaxReadings, Math.max(100, Math.floor(ctx.tuning.rollupRunReadings / Math.max(1, fromInflux.length))));
  const asked = fromInflux.map((m) => ({ id: m.id, state: states.get(m.id) }));
  const recent = ctx.now() - RECENT_MS;
  const grouped = asked.filter((m) => m.state && !m.state.seed && m.state.w >= recent);
  const early = grouped.length > 1 ? await loadRecent(ctx.influx, site.id, grouped, limit) : new Map<string, RawSeries>();
  const { raw, seeds } = await loadNew(
    ctx.influx,
    site.id,
    asked.filter((m) => !early.has(m.id)),
    limit,
  );
  for (const [id, series] of early) raw.set(id, series);
  // A log reading at or before the meter's position is one InfluxDB's `time > w` would not return either.
  for (const id of viaLog) raw.set(id, after(log.readings.get(id)!, states.get(id)!.w));
  const lines: string[] = [];
  const newStates: Record<string, string> = {};
  const newW: Record<string, string> = {};
  const newLast: Record<string, string> = {};
  const bucketMeters: string[] = [];
  let readings = 0;
  let buckets = 0;
  let more = false;
  let newest = -Infinity;
  const calendar = bucketCalendars(site);
  const spans: Span[] = [];
  const left: string[] = [];
  for (const meter of meters) {
    const series = raw.get(meter.id);
    const st = states.get(meter.id);
    if (!series || series.time.length === 0) {
      // Read in full from InfluxDB with nothing new: synced from now on (its next readings are in the log).
      if (series && st && !st.seed && !isSynced(st, tag)) newStates[meter.id] = JSON.stringify({ ...st, s: tag } satisfies MeterState);
      continue;
    }
    const seed = st?.seed ? seeds.get(meter.id) : undefined;
    const base: CounterState = st?.seed ? { accepted: seed ? [seed] : [], pending: [] } : { accepted: st?.acc ?? [], pending: st?.pend ?? [] };
    const step = rollupStep(site, meter, base, series, calendar, st?.from);
    for (const b of step.buckets) lines.push(bucketLine(site.id, { meter: meter.id, role: meter.role, ...bucketAccount(site, meter, b.start), period: b.period, start: b.start, wh: b.wh }));
    if (step.buckets.length) bucketMeters.push(meter.id);
    for (const f of step.flags) lines.push(eventLine(site.id, { kind: f.kind, meter: f.meter, detail: f.detail, time: f.time }));
    // A meter back after silence: the first new interval may reach over midnights into days
    // settled without it; and readings never seen before (past the watermark) may be of past
    // days, like a DL/T 645 meter's freezes read back after an outage.
    if (step.prev !== undefined && !st?.seed) {
      const span = spanOf(zone, meter.id, step.prev, series, seen.get(meter.id)!, now);
      if (span) spans.push(span);
    }
    const h = st === undefined ? series.time[0] : st.seed ? (st.h ?? st.from ?? st.w) : st.h;
    // Synced unless InfluxDB's answer was cut at the limit (readings of it are then in entries before the log position).
    const synced = viaLog.has(meter.id) || series.time.length < limit;
    newStates[meter.id] = JSON.stringify({ w: series.time[series.time.length - 1], acc: step.next.accepted, pend: step.next.pending, ...(step.keepFrom ? { from: st!.from } : {}), ...(h !== undefined ? { h } : {}), ...(synced ? { s: tag } : {}), ...(viaLog.has(meter.id) ? { l: now } : st?.l !== undefined ? { l: st.l } : {}) } satisfies MeterState);
    // The newest raw reading seen (the late-data bound): never moved back by a state reset.
    newW[meter.id] = String(Math.max(series.time[series.time.length - 1], seen.get(meter.id)!));
    // No pair yet: the newest raw reading read before (the watermark), if the carried state holds it.
    const before = lastTwo.get(meter.id) ? undefined : [...(st?.seed ? [] : (st?.acc ?? [])), ...(st?.pend ?? [])].find((r) => r[0] === seen.get(meter.id));
    const pair = nextLastTwo(lastTwo.get(meter.id), series, before ? [before[0], before[1]] : undefined);
    if (pair) newLast[meter.id] = lastTwoText(pair);
    readings += series.time.length;
    buckets += step.buckets.length;
    if (!viaLog.has(meter.id) && series.time.length >= limit) {
      more = true;
      left.push(meter.id);
    }
    newest = Math.max(newest, series.time[series.time.length - 1]);
  }
  // The queue lag point rides in the buckets' POST (it was a POST of its own, ~15 % of a run at 100,000 meters).
  if (Number.isFinite(newest)) lines.push(workerLine(site.id, { queue: 'rollup', lagMs: Math.max(0, now - newest), time: now }));
  // Points first, state after: a crash in between only repeats the same writes.
  await writeChunked(ctx.influx, lines);
  await logBucketWrites(ctx.redis, ctx.keyPrefix, site.id, bucketMeters);
  // The state in one round trip, all or nothing (MULTI: the keys share the site's slot): the
  // meters' states with the log position they are synced to, then "done".
  const save = ctx.redis.multi();
  if (Object.keys(newStates).length) save.hset(keys.rollupState, newStates);
  if (Object.keys(newW).length) save.hset(keys.watermarks, newW);
  if (Object.keys(newLast).length) save.hset(keys.lastReadings, newLast);
  save.hset(...logPosition(ctx.keyPrefix, site.id, bk, log));
  // The only reader of a one-batch site's log: what it has read is not needed again (the
  // entry at the position stays, so a trim past it can be told).
  if (job.batches === 1) save.xtrim(keys.readingsLog, 'MINID', log.next);
  save.del(takenKey(ctx.keyPrefix, site.id, job.batch, job.batches));
  throwFirst(await save.exec());
  if (spans.length) await resettleSpans(ctx, site, spans);
  if (readings > 0) {
    // Freshness (sample -> balance): the balance follows new buckets at once instead of
    // waiting for its own tick; one run for the batches that finish together (deduplicated).
    await requestBalance(ctx.queues, site.id, BALANCE_AFTER_ROLLUP_MS);
  }
  if (log.more && !more) await requestRollup(ctx.queues, site.id, job.batch, job.batches, 0, true);
  if (more) {
    // History left (first start, a state reset): the next chunk of those meters now, not at the next tick.
    await markRollup(ctx.redis, ctx.keyPrefix, site.id, left);
    await requestRollup(ctx.queues, site.id, job.batch, job.batches, 0, true);
  }
  // The whole batch: late readings may be of meters not announced now.
  const lateDays = await checkLate(ctx, site, site.meters.filter((m) => inBatch.has(m.id)), job);
  return { meters: Object.keys(newStates).length, readings, buckets, lateDays, more };
}

/** Whether the tick's InfluxDB read of synced meters is due for the batch (and if so, now counted as done). */
async function resyncDue(ctx: WorkerContext, site: string, batch: string): Promise<boolean> {
  const key = redisKeys(ctx.keyPrefix, site).rollupLogPosition;
  const now = ctx.now();
  const last = Number((await ctx.redis.hget(key, `${batch}#resync`)) ?? 0);
  if (now - last < ctx.tuning.rollupResyncEveryMs) return false;
  await ctx.redis.hset(key, `${batch}#resync`, String(now));
  return true;
}

/** HMGET of the same fields from several hashes, in one round trip. */
async function readHashes(redis: WorkerContext['redis'], hashes: readonly string[], fields: readonly string[]): Promise<(string | null)[][]> {
  const p = redis.pipeline();
  for (const h of hashes) p.hmget(h, ...fields);
  return throwFirst(await p.exec()) as (string | null)[][];
}

/** New readings of a meter that may reach into settled days (resettleSpans). */
interface Span {
  readonly meter: string;
  /** The last accepted reading before the run, and the run's first reading. */
  readonly prev: number;
  readonly next: number;
  /** Readings of past days never seen before: from the one before the first of them to the last. */
  readonly fresh?: readonly [number, number];
}

/**
 * Whether a run's readings may reach settled days: the first interval crosses a midnight
 * (silence), or readings past the watermark `seen` are of a day before today's (their
 * intervals start at the reading before the first of them).
 */
function spanOf(zone: ReturnType<typeof zoneOf>, meter: string, prev: number, series: RawSeries, seen: number, now: number): Span | undefined {
  const next = series.time[0];
  let i = 0;
  while (i < series.time.length && series.time[i] <= seen) i++;
  const fresh = i < series.time.length && zone.dateOf(series.time[i]) < zone.dateOf(now) ? ([i > 0 ? series.time[i - 1] : prev, series.time[series.time.length - 1]] as const) : undefined;
  if (zone.dateOf(prev) >= zone.dateOf(next) && !fresh) return undefined;
  return { meter, prev, next, ...(fresh ? { fresh } : {}) };
}

/**
 * New readings whose intervals reach back over local midnights into settled days (the
 * meter was silent past the settlement, or readings of those days arrive after it, like a
 * DL/T 645 meter's freezes read back after an outage): those days are settled again, which
 * writes the missing energy as adjustment lines with the reason.
 */
async function resettleSpans(ctx: WorkerContext, site: Site, spans: readonly Span[]): Promise<void> {
  const zone = zoneOf(site.timezone);
  const settled = await settledDays(ctx, site, zone.midnight(zone.dateOf(Math.min(...spans.map((s) => s.prev)))));
  const toSettle = new Map<LocalDate, string[]>();
  for (const s of spans) {
    const why = new Map<LocalDate, string>();
    for (let d = zone.dateOf(s.prev); d < zone.dateOf(s.next); d = addDays(d, 1)) why.set(d, `silent ${zone.format(s.prev)} to ${zone.format(s.next)}`);
    // Fresh readings' intervals hold energy of [from, to): the days from from's to to's.
    if (s.fresh) for (let d = zone.dateOf(s.fresh[0]); d <= zone.dateOf(s.fresh[1] - 1); d = addDays(d, 1)) if (!why.has(d)) why.set(d, `readings of the day arrived ${zone.format(s.fresh[0])} to ${zone.format(s.fresh[1])}`);
    for (const [d, text] of why) if (settled.has(d)) toSettle.set(d, [...(toSettle.get(d) ?? []), `${s.meter} (${text})`]);
  }
  for (const [day, why] of toSettle) {
    const reason = `readings after the day was settled: ${why.sort().join(', ')}`;
    await requestResettlement(ctx, site.id, day, reason);
    ctx.log.warn({ site: site.id, day, reason }, 'settled day reached by new readings: re-settling');
  }
}

type Fingerprints = Map<string, string>; // "meter|day" -> "count:sum"

async function fingerprints(ctx: WorkerContext, site: Site, ids: readonly string[], from: number, bound: number): Promise<Fingerprints> {
  // A batch of the whole site (one batch) needs no meter filter: a regex over 1,000 ids is
  // slow in InfluxDB 1.x; other meters' series (ids not in the site file) are dropped below.
  const wanted = new Set(ids);
  const whole = site.meters.every((m) => wanted.has(m.id));
  const [series = []] = await ctx.influx.queryRaw(
    `SELECT count(${F.wh}), sum(${F.wh}) FROM ${M.reading} WHERE ${T.site} = ${quoteString(site.id)}${whole ? '' : ` AND ${T.meter} =~ ${idRegex(ids)}`} AND time >= ${from}ms AND time <= ${bound}ms GROUP BY ${T.meter}, time(1d) fill(none) tz(${quoteString(site.timezone)})`,
  );
  const out: Fingerprints = new Map();
  for (const s of series) if (wanted.has(s.tags?.meter ?? '')) for (const v of s.values) out.set(`${s.tags?.meter}|${dateOfDayBucket(site.timezone, v[0] as number)}`, `${v[1]}:${v[2]}`);
  return out;
}

/**
 * Late-data check of one batch, at most every lateCheckEveryMs: the fingerprints of all
 * readings up to the bound stored last time are computed again; any change means readings
 * arrived late for that meter and day. The meter's rollup state goes back to the earliest
 * changed day (so its buckets from that day on are recomputed by the next runs) and settled
 * days reached get a settlement job. Returns the number of (meter, day) changes handled.
 */
async function checkLate(ctx: WorkerContext, site: Site, meters: readonly Meter[], job: RollupJob): Promise<number> {
  const keys = redisKeys(ctx.keyPrefix, site.id);
  const field = `${job.batch}/${job.batches}`;
  const fpKey = `${keys.fingerprints}:${field}`;
  const now = ctx.now();
  const last = Number((await ctx.redis.hget(`${keys.fingerprints}:checked`, field)) ?? 0);
  if (now - last < ctx.tuning.lateCheckEveryMs) return 0;
  await ctx.redis.hset(`${keys.fingerprints}:checked`, field, String(now));
  const ids = meters.map((m) => m.id);
  if (ids.length === 0) return 0;
  const zone = zoneOf(site.timezone);
  const from = zone.midnight(addDays(zone.dateOf(now), -ctx.tuning.lateWindowDays));
  const before = await ctx.redis.hgetall(fpKey);
  const oldBound = before.__bound ? Number(before.__bound) : undefined;
  const skipped = new Set(before.__skip ? before.__skip.split('\n') : []);
  const changed = new Map<string, Set<LocalDate>>(); // meter -> days
  if (oldBound !== undefined) {
    const again = await fingerprints(ctx, site, ids, from, oldBound);
    for (const [k, v] of again) {
      const [meter, day] = k.split('|');
      // Its readings up to the old bound were new then, not late (below).
      if (skipped.has(meter)) continue;
      // A day first seen inside the window was imported late too (nothing older than the bound was there before).
      if (before[k] !== v && zone.midnight(day) >= from) {
        if (!changed.has(meter)) changed.set(meter, new Set());
        changed.get(meter)!.add(day);
      }
    }
  }
  // Everything at or before the lowest watermark has been seen by the rollup: the next bound.
  // A meter without a watermark, or with one before the window (silent for days, never
  // read), has no reading in the window at or before its position: all of them are new, none
  // late. It is left out of the bound, which it used to hold at the window's start (so one
  // dead meter turned late detection off for its whole batch, a whole site since one batch
  // holds 2,000 meters), and its changes until the next check are not late.
  const w = await ctx.redis.hmget(keys.watermarks, ...ids);
  const skip = ids.filter((_, i) => w[i] === null || Number(w[i]) < from);
  const inside = w.filter((x): x is string => x !== null && Number(x) >= from).map(Number);
  const bound = inside.length ? Math.min(...inside) : from;
  const fresh = await fingerprints(ctx, site, ids, from, bound);
  await ctx.redis.del(fpKey);
  await ctx.redis.hset(fpKey, { ...Object.fromEntries(fresh), __bound: String(bound), ...(skip.length ? { __skip: skip.join('\n') } : {}) });
  if (changed.size === 0) return 0;

  let n = 0;
  const settled = await settledDays(ctx, site, from - 86_400_000 * 2);
  const toSettle = new Map<LocalDate, string[]>();
  const resets: Record<string, string> = {};
  for (const [meterId, days] of changed) {
    const first = [...days].sort()[0];
    const a = zone.midnight(first);
    // Start again at the changed day, the way the settlement starts a day (its lookback
    // and the last reading before it), and write buckets from the day's midnight on.
    resets[meterId] = JSON.stringify({ w: a - ctx.tuning.settleLookbackMs - 1, acc: [], pend: [], from: a, seed: true, h: a } satisfies MeterState);
    for (const day of days) {
      n++;
      // A reading late on day d changes the interval into d from the day before too.
      for (const d of [addDays(day, -1), day]) {
        if (!settled.has(d)) continue;
        const list = toSettle.get(d) ?? [];
        list.push(meterId);
        toSettle.set(d, list);
      }
      ctx.log.warn({ site: site.id, meter: meterId, day }, 'late readings: buckets will be recomputed from the day');
    }
  }
  await ctx.redis.hset(keys.rollupState, resets);
  await markRollup(ctx.redis, ctx.keyPrefix, site.id, Object.keys(resets));
  await requestRollup(ctx.queues, site.id, job.batch, job.batches, 0, true);
  for (const [day, ms] of toSettle) {
    const reason = `late or corrected readings of ${[...new Set(ms)].sort().join(', ')} found ${new Date(now).toISOString()}`;
    await requestResettlement(ctx, site.id, day, reason);
  }
  return n;
}
