import { Point } from '@influxdata/influxdb-client';
import { acceptReadings, addDays, billableFlags, buildCalendar, touBuckets, zoneOf } from '../core/index.ts';
import type { AcceptedSeries, LocalDate, Meter, RawSeries, Site, TouCalendar } from '../core/index.ts';
import { quoteString } from '../influx/client.ts';
import { F, M, T } from '../influx/schema.ts';
import { idRegex, loadRaw, siteOf, writeChunked } from './context.ts';
import type { WorkerContext } from './context.ts';
import { redisKeys } from './keys.ts';
import { batchMeters, JOB_OPTS, requestResettlement } from './queues.ts';
import type { RollupJob } from './queues.ts';
import { settledDays } from './settlement.ts';

/**
 * Rollup: raw readings since each meter's watermark -> the core's counter rules and
 * 15-minute TOU split -> `tou_bucket` points keyed by (meter, period, bucket start), so a
 * retry or a recompute overwrites the same points. Buckets feed the live balance and the
 * dashboards; the settlement re-derives the day from raw readings (settlement.ts), so a
 * bucket is never what a tenant is charged.
 *
 * Late readings (older than the watermark: a spool draining after an outage, an import)
 * are found by per-day fingerprints (count and sum of raw readings) over the last
 * `lateWindowDays`; a changed day gets its buckets recomputed and, if already settled, a
 * settlement job with the reason, which writes adjustment lines.
 */

const BUCKET_MINUTES = 15;

export interface RollupResult {
  readonly meters: number;
  readonly readings: number;
  readonly buckets: number;
  readonly lateDays: number;
}

function bucketLines(site: Site, meter: Meter, buckets: readonly { start: number; period: string; wh: number }[]): string[] {
  return buckets.map((b) => {
    const p = new Point(M.touBucket).tag(T.site, site.id).tag(T.meter, meter.id).tag(T.period, b.period).tag(T.role, meter.role);
    if (meter.account) p.tag(T.account, meter.account);
    return p.intField(F.wh, b.wh).timestamp(b.start).toLineProtocol()!;
  });
}

/** Data-quality flags of the counter rules as events (deterministic keys). */
function flagLines(site: Site, acc: AcceptedSeries, from: number): string[] {
  // Gaps inside one settlement cell estimate nothing billed (billing.md section 2 rule 4).
  return billableFlags(site, acc.flags.filter((f) => f.time >= from))
    .map((f) => new Point(M.event).tag(T.site, site.id).tag(T.kind, f.kind).tag(T.meter, f.meter).stringField(F.detail, f.detail).timestamp(f.time).toLineProtocol()!);
}

/** Buckets of a meter's readings that the window fully determines: from the segment holding `from` on. */
function bucketsFrom(site: Site, acc: AcceptedSeries, from: number, to: number, cals?: Map<string, TouCalendar>): { start: number; period: string; wh: number }[] {
  const n = acc.time.length;
  if (n < 2) return [];
  const zone = zoneOf(site.timezone);
  const a = zone.dateOf(Math.max(from, acc.time[0]));
  const b = addDays(zone.dateOf(acc.time[n - 1]), 1);
  // Meters of a batch mostly share one range: build its calendar once per job.
  let cal = cals?.get(`${a}|${b}`);
  if (!cal) {
    cal = buildCalendar(site, a, b, BUCKET_MINUTES);
    cals?.set(`${a}|${b}`, cal);
  }
  // The segment that contains `from` is recomputed whole (its earlier part was written
  // from the same readings before); segments before it are left alone.
  let cut = -Infinity;
  for (let k = 0; k < cal.segments; k++) if (cal.start[k] <= from) cut = cal.start[k];
  return touBuckets(acc, cal).filter((b) => b.start >= cut && b.start < to);
}

function sliceFrom(raw: RawSeries, t: number): RawSeries {
  let i = 0;
  while (i < raw.time.length && raw.time[i] < t) i++;
  return { time: raw.time.subarray(i), wh: raw.wh.subarray(i) };
}

/** The rollup job of one meter batch. */
export async function processRollup(ctx: WorkerContext, job: RollupJob): Promise<RollupResult> {
  const site = siteOf(ctx, job.site);
  const keys = redisKeys(ctx.keyPrefix, site.id);
  const ids = batchMeters(site, job.batch, job.batches);
  const meters = site.meters.filter((m) => ids.includes(m.id));
  const now = ctx.now();
  const zone = zoneOf(site.timezone);
  const initial = zone.midnight(addDays(zone.dateOf(now), -ctx.tuning.lateWindowDays));
  const stored = ids.length ? await ctx.redis.hmget(keys.watermarks, ...ids) : [];
  const wm = new Map(ids.map((id, i) => [id, stored[i] === null ? initial : Number(stored[i])]));
  const minW = Math.min(...wm.values());
  const ctxMs = ctx.tuning.rollupContextMs;
  // One query for the batch; a meter far behind the others only widens it.
  const raw = await loadRaw(ctx.influx, site.id, ids, minW - ctxMs, now + 86_400_000);
  const lines: string[] = [];
  const newW: [string, string][] = [];
  let readings = 0;
  let buckets = 0;
  let newest = -Infinity;
  const cals = new Map<string, TouCalendar>();
  const spans: { meter: string; prev: number; next: number }[] = [];
  for (const meter of meters) {
    const series = raw.get(meter.id);
    const w = wm.get(meter.id)!;
    if (!series || series.time.length === 0 || series.time[series.time.length - 1] <= w) continue;
    const window = sliceFrom(series, w - ctxMs);
    const acc = acceptReadings(meter, window);
    const fresh = window.time.filter((t) => t > w).length;
    // The first new interval starts at the last reading at or before the watermark.
    let prev = w;
    let found = false;
    for (let i = acc.time.length - 1; i >= 0; i--) {
      if (acc.time[i] <= w) {
        prev = acc.time[i];
        found = true;
        break;
      }
    }
    // The first new interval may span midnights (a meter back after a gap): the days it
    // reaches were settled without it if their settlement already ran.
    const firstNew = window.time.find((t) => t > w);
    if (found && firstNew !== undefined && zone.dateOf(prev) < zone.dateOf(firstNew)) spans.push({ meter: meter.id, prev, next: firstNew });
    const bs = bucketsFrom(site, acc, prev, Infinity, cals);
    lines.push(...bucketLines(site, meter, bs), ...flagLines(site, acc, w + 1));
    const last = window.time[window.time.length - 1];
    newW.push([meter.id, String(last)]);
    readings += fresh;
    buckets += bs.length;
    newest = Math.max(newest, last);
  }
  // Points first, watermarks after: a crash in between only repeats the same writes.
  await writeChunked(ctx.influx, lines);
  if (newW.length) await ctx.redis.hset(keys.watermarks, Object.fromEntries(newW));
  if (Number.isFinite(newest)) {
    await ctx.influx.write(new Point(M.worker).tag(T.site, site.id).tag(T.queue, 'rollup').intField(F.lagMs, Math.max(0, now - newest)).timestamp(now).toLineProtocol()!);
  }
  if (spans.length) await resettleSpans(ctx, site, spans);
  if (readings > 0) {
    // Freshness (sample -> balance): the balance follows new buckets at once instead of
    // waiting for its own tick; one job per site and second however many batches ran.
    await ctx.queues.balance.add('balance', { site: site.id }, { ...JOB_OPTS, jobId: `balance-after|${site.id}|${Math.floor(now / 1000)}` });
  }
  const lateDays = await checkLate(ctx, site, meters, job);
  return { meters: newW.length, readings, buckets, lateDays };
}

/**
 * New readings whose interval reaches back over local midnights into settled days (the
 * meter was silent past the settlement): those days are settled again, which writes the
 * missing energy as adjustment lines with the reason.
 */
async function resettleSpans(ctx: WorkerContext, site: Site, spans: readonly { meter: string; prev: number; next: number }[]): Promise<void> {
  const zone = zoneOf(site.timezone);
  const settled = await settledDays(ctx, site, zone.midnight(zone.dateOf(Math.min(...spans.map((s) => s.prev)))));
  const toSettle = new Map<LocalDate, string[]>();
  for (const s of spans) {
    for (let d = zone.dateOf(s.prev); d < zone.dateOf(s.next); d = addDays(d, 1)) {
      if (!settled.has(d)) continue;
      toSettle.set(d, [...(toSettle.get(d) ?? []), `${s.meter} (silent ${zone.format(s.prev)} to ${zone.format(s.next)})`]);
    }
  }
  for (const [day, why] of toSettle) {
    const reason = `readings after the day was settled: ${why.sort().join(', ')}`;
    await requestResettlement(ctx.queues, site.id, day, reason);
    ctx.log.warn({ site: site.id, day, reason }, 'settled day reached by new readings: re-settling');
  }
}

type Fingerprints = Map<string, string>; // "meter|day" -> "count:sum"

async function fingerprints(ctx: WorkerContext, site: Site, ids: readonly string[], from: number, bound: number): Promise<Fingerprints> {
  const zone = zoneOf(site.timezone);
  const [series = []] = await ctx.influx.queryRaw(
    `SELECT count(${F.wh}), sum(${F.wh}) FROM ${M.reading} WHERE ${T.site} = ${quoteString(site.id)} AND ${T.meter} =~ ${idRegex(ids)} AND time >= ${from}ms AND time <= ${bound}ms GROUP BY ${T.meter}, time(1d) fill(none) tz(${quoteString(site.timezone)})`,
  );
  const out: Fingerprints = new Map();
  for (const s of series) for (const v of s.values) out.set(`${s.tags?.meter}|${zone.dateOf((v[0] as number) + 3_600_000)}`, `${v[1]}:${v[2]}`);
  return out;
}

/**
 * Late-data check of one batch, at most every lateCheckEveryMs: the fingerprints of all
 * readings up to the bound stored last time are computed again; any change means readings
 * arrived late for that meter and day. Returns the number of (meter, day) changes handled.
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
  const changed = new Map<string, Set<LocalDate>>(); // meter -> days
  if (oldBound !== undefined) {
    const again = await fingerprints(ctx, site, ids, from, oldBound);
    for (const [k, v] of again) {
      const [meter, day] = k.split('|');
      // A day first seen inside the window was imported late too (nothing older than the bound was there before).
      if (before[k] !== v && zone.midnight(day) >= from) {
        if (!changed.has(meter)) changed.set(meter, new Set());
        changed.get(meter)!.add(day);
      }
    }
  }
  // Everything at or before the lowest watermark has been rolled up: the next bound.
  const w = await ctx.redis.hmget(keys.watermarks, ...ids);
  const bound = Math.min(...w.map((x) => (x === null ? from : Number(x))));
  const fresh = await fingerprints(ctx, site, ids, from, bound);
  await ctx.redis.del(fpKey);
  await ctx.redis.hset(fpKey, { ...Object.fromEntries(fresh), __bound: String(bound) });
  if (changed.size === 0) return 0;

  let n = 0;
  const settled = await settledDays(ctx, site, from - 86_400_000 * 2);
  const toSettle = new Map<LocalDate, string[]>();
  for (const [meterId, days] of changed) {
    const meter = meters.find((m) => m.id === meterId)!;
    for (const day of days) {
      n++;
      // The day's buckets again, with context on both sides (the interval that crosses
      // midnight belongs to two days).
      const a = zone.midnight(day);
      const b = zone.midnight(addDays(day, 1));
      const raw = await loadRaw(ctx.influx, site.id, [meterId], a - ctx.tuning.rollupContextMs, b + ctx.tuning.rollupContextMs);
      const series = raw.get(meterId);
      if (series && series.time.length > 1) {
        const acc = acceptReadings(meter, series);
        const bs = bucketsFrom(site, acc, acc.time[0], acc.time[acc.time.length - 1]);
        await writeChunked(ctx.influx, [...bucketLines(site, meter, bs), ...flagLines(site, acc, a)]);
      }
      // A reading late on day d changes the interval into d from the day before too.
      for (const d of [addDays(day, -1), day]) {
        if (!settled.has(d)) continue;
        const list = toSettle.get(d) ?? [];
        list.push(meterId);
        toSettle.set(d, list);
      }
      ctx.log.warn({ site: site.id, meter: meterId, day }, 'late readings: buckets recomputed');
    }
  }
  for (const [day, ms] of toSettle) {
    const reason = `late or corrected readings of ${[...new Set(ms)].sort().join(', ')} found ${new Date(now).toISOString()}`;
    await requestResettlement(ctx.queues, site.id, day, reason);
  }
  return n;
}
