import { addDays, bucketSettlementProblem, COUNTER_FLAG_KINDS, zoneOf } from '../core/index.ts';
import type { BucketEvidence, BucketMeterDay, LocalDate, Site } from '../core/index.ts';
import type { InfluxV1 } from '../influx/client.ts';
import { quoteString, rowsOf } from '../influx/client.ts';
import { F, M, T } from '../influx/schema.ts';
import type { RedisClient } from '../lib/redis.ts';
import { redisKeys } from './keys.ts';
import { bucketEnergy } from './live-figures.ts';

/**
 * What the nightly settlement needs to settle a day from the rollup's buckets (issue 15;
 * core/settle/bucket-day.ts has the rule): per meter, whether the rollup has taken all its
 * readings (its carried position in Redis against its newest reading), the settlement
 * window's first reading, the counter flags the rollup raised since it, and the raw
 * readings around the day's two midnights; then, for the meters the core accepts, their
 * buckets' energy per period and occupancy piece. A handful of aggregate queries instead
 * of every raw reading of the day and its lookback.
 */

/** How far the raw window looks for a meter's last reading before it (workers/context.ts loadWindow). */
export const WINDOW_EDGE_MS = 400 * 86_400_000;

export interface BucketPlan {
  /** Meters settled from their buckets, with their energy and edge readings. */
  readonly fromBuckets: readonly BucketMeterDay[];
  /** The others and why (settled from raw readings). */
  readonly raw: readonly { readonly meter: string; readonly why: string }[];
}

interface StoredPosition {
  /** The newest raw reading the rollup has taken, ms. */
  readonly w: number;
  /** A reset (late data, a site change) not yet worked through. */
  readonly seed?: boolean;
  /** The first instant its buckets stand for (workers/rollup.ts). */
  readonly h?: number;
}

function position(text: string | null): StoredPosition | undefined {
  if (!text) return undefined;
  try {
    const s = JSON.parse(text) as StoredPosition;
    return typeof s.w === 'number' ? s : undefined;
  } catch {
    return undefined;
  }
}

/** One value per meter of a GROUP BY meter statement: [time, value]. */
function byMeter(series: readonly { tags?: Readonly<Record<string, string>>; values: readonly (readonly unknown[])[] }[]): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>();
  for (const s of series) {
    const meter = s.tags?.[T.meter];
    const v = s.values[0];
    if (meter && v && typeof v[0] === 'number' && typeof v[1] === 'number') out.set(meter, [v[0], v[1]]);
  }
  return out;
}

export async function planBucketDay(influx: InfluxV1, redis: RedisClient, keyPrefix: string, site: Site, day: LocalDate, lookbackMs: number, lookaheadMs: number): Promise<BucketPlan> {
  const zone = zoneOf(site.timezone);
  const a = zone.midnight(day);
  const b = zone.midnight(addDays(day, 1));
  const ws = a - lookbackMs;
  const sq = quoteString(site.id);
  // A raw selection with LIMIT 1 per series reads from one end of each series (InfluxDB 1.x
  // pushes the limit down), where first()/last() would reduce over the whole range.
  const r = (cond: string, fn: 'first' | 'last') => `SELECT ${F.wh} FROM ${M.reading} WHERE ${T.site} = ${sq} AND ${cond} GROUP BY ${T.meter} ORDER BY time ${fn === 'first' ? 'ASC' : 'DESC'} LIMIT 1`;
  const [newest, beforeWindow, inWindow, beforeA, fromA, beforeB, fromB, windowEnd] = (
    await influx.queryRaw(
      [
        r(`time >= ${ws - WINDOW_EDGE_MS}ms`, 'last'),
        r(`time >= ${ws - WINDOW_EDGE_MS}ms AND time < ${ws}ms`, 'last'),
        r(`time >= ${ws}ms AND time < ${b + lookaheadMs + WINDOW_EDGE_MS}ms`, 'first'),
        r(`time >= ${ws - WINDOW_EDGE_MS}ms AND time < ${a}ms`, 'last'),
        r(`time >= ${a}ms AND time < ${b + lookaheadMs + WINDOW_EDGE_MS}ms`, 'first'),
        r(`time >= ${ws - WINDOW_EDGE_MS}ms AND time < ${b}ms`, 'last'),
        r(`time >= ${b}ms AND time < ${b + lookaheadMs + WINDOW_EDGE_MS}ms`, 'first'),
        r(`time >= ${b + lookaheadMs}ms AND time < ${b + lookaheadMs + WINDOW_EDGE_MS}ms`, 'first'),
      ].join(';\n'),
    )
  ).map(byMeter);
  const ids = site.meters.map((m) => m.id);
  const stored = ids.length ? await redis.hmget(redisKeys(keyPrefix, site.id).rollupState, ...ids) : [];
  const windowFirst = new Map<string, number>();
  for (const id of ids) {
    const t = beforeWindow.get(id)?.[0] ?? inWindow.get(id)?.[0];
    if (t !== undefined) windowFirst.set(id, t);
  }
  // Counter flags since the earliest window start (per meter filtered below).
  const since = Math.min(...windowFirst.values(), ws);
  const kinds = COUNTER_FLAG_KINDS.map((k) => `${T.kind} = ${quoteString(k)}`).join(' OR ');
  const flagRows = rowsOf((await influx.queryRaw(`SELECT ${F.detail} FROM ${M.event} WHERE ${T.site} = ${sq} AND (${kinds}) AND time >= ${since}ms GROUP BY ${T.meter}`))[0] ?? []);
  const flagTimes = new Map<string, number[]>();
  for (const f of flagRows) {
    const m = f[T.meter] as string | undefined;
    if (m) flagTimes.set(m, [...(flagTimes.get(m) ?? []), f.time as number]);
  }

  const raw: { meter: string; why: string }[] = [];
  const accepted: { meter: string; edges: [number, number][] }[] = [];
  site.meters.forEach((meter, i) => {
    const pos = position(stored[i] ?? null);
    const last = newest.get(meter.id)?.[0];
    const edgeMap = new Map<number, number>();
    for (const e of [beforeA.get(meter.id), fromA.get(meter.id), beforeB.get(meter.id), fromB.get(meter.id)]) if (e) edgeMap.set(e[0], e[1]);
    const edges = [...edgeMap.entries()].sort((x, y) => x[0] - y[0]);
    const first = windowFirst.get(meter.id);
    const evidence: BucketEvidence = {
      caughtUp: pos !== undefined && !pos.seed && last !== undefined && pos.w >= last,
      ...(pos?.h !== undefined ? { rollupFrom: pos.h } : {}),
      ...(first !== undefined ? { windowFirst: first } : {}),
      flags: first === undefined ? 0 : (flagTimes.get(meter.id) ?? []).filter((t) => t >= first && t <= (windowEnd.get(meter.id)?.[0] ?? Infinity)).length,
      edges,
    };
    const why = bucketSettlementProblem(site, meter, day, evidence);
    if (why) raw.push({ meter: meter.id, why });
    else accepted.push({ meter: meter.id, edges });
  });
  const energy = accepted.length ? await bucketEnergy(influx, site, a, b) : new Map();
  return { fromBuckets: accepted.map((m) => ({ meter: m.meter, edges: m.edges, energy: energy.get(m.meter) ?? [] })), raw };
}
