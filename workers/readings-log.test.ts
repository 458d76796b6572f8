import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { zoneOf } from '../core/index.ts';
import type { Site } from '../core/index.ts';
import { quoteString } from '../influx/client.ts';
import { sampleLine } from '../influx/lines.ts';
import { announceNewData } from '../lib/new-data-channel.ts';
import { readingsLogKey, ReadingsLogWriter } from '../lib/readings-log.ts';
import type { WorkerContext } from './context.ts';
import { redisKeys } from './keys.ts';
import { closeQueues } from './queues.ts';
import { READING_FIELDS } from './reading-series.ts';
import { processRollup } from './rollup.ts';
import { allMember, markRollup } from './rollup-dirty.ts';
import { testContext, testEnv, testSite } from './testing/env.ts';
import { rng } from './testing/rng.ts';
import type { TestEnv } from './testing/env.ts';

/**
 * Issue 15: the rollup takes a collector's acknowledged readings from the site's readings
 * log (lib/readings-log.ts, workers/readings-cursor.ts) instead of asking InfluxDB again.
 * It must reach exactly the state and buckets of the rollup that asks InfluxDB (a second
 * pipeline on its own database and prefix, fed the same readings and announcements, with no
 * log), after every step of a seeded random walk over what happens to a collector and its
 * batches: readings of some meters, batches sent twice, late readings, tariff registers,
 * a collector killed between its InfluxDB write and its append (a new writer), a batch
 * InfluxDB refused in part, the log trimmed past the position, an import that does not log,
 * the safety tick, the per-run limit. And plain steps must send InfluxDB no reading statement.
 */

const zone = zoneOf('Asia/Shanghai');
const T0 = zone.midnight('2026-10-02') + 9 * 3_600_000;


describe('rollup from the readings log = rollup from InfluxDB (real Redis and InfluxDB)', () => {
  let site: Site;
  let logged: TestEnv;
  let plain: TestEnv;
  let ctxLog: WorkerContext;
  let ctxPlain: WorkerContext;
  const clock = { now: T0 };
  let readingStatements = 0;

  beforeAll(async () => {
    site = testSite();
    [logged, plain] = await Promise.all([testEnv('rlog'), testEnv('rplain')]);
    const tuning = { rollupMaxReadings: 5, lateCheckEveryMs: 0, lateWindowDays: 3 };
    ctxLog = testContext(logged, [site], clock, tuning);
    // Without a log, every tick reads every meter from InfluxDB (as before the log).
    ctxPlain = testContext(plain, [site], clock, { ...tuning, rollupResyncEveryMs: 0 });
    // Count the rollup's reading statements of the logged pipeline (its loads select READING_FIELDS).
    const query = logged.influx.queryRaw.bind(logged.influx);
    logged.influx.queryRaw = (q, opts) => {
      if (q.includes(`SELECT ${READING_FIELDS} FROM`)) readingStatements++;
      return query(q, opts);
    };
  });
  afterAll(async () => {
    await closeQueues(ctxLog.queues);
    await closeQueues(ctxPlain.queues);
    await Promise.all([logged.cleanup(), plain.cleanup()]);
  });

  /** Both pipelines' rollup state, watermarks, last two readings and buckets (the log's sync tag left out). */
  async function snapshot(env: TestEnv) {
    const k = redisKeys(env.prefix, site.id);
    const states = Object.fromEntries(
      Object.entries(await env.redis.hgetall(k.rollupState))
        .filter(([f]) => !f.includes(':'))
        .map(([f, v]) => {
          const { s: _s, l: _l, ...rest } = JSON.parse(v) as Record<string, unknown>;
          return [f, rest];
        }),
    );
    const [buckets = []] = await env.influx.queryRaw(`SELECT ${'"wh"'} FROM tou_bucket WHERE site = ${quoteString(site.id)} GROUP BY *`);
    return {
      states,
      watermarks: await env.redis.hgetall(k.watermarks),
      last: await env.redis.hgetall(k.lastReadings),
      buckets: buckets.map((s) => ({ tags: s.tags, values: s.values })).sort((a, b) => JSON.stringify(a.tags).localeCompare(JSON.stringify(b.tags))),
    };
  }

  /** Runs a pipeline's marked rollup until it has nothing left (what its queued follow-ups do). */
  async function drain(ctx: WorkerContext) {
    for (let i = 0; i < 50; i++) if (!(await processRollup(ctx, { site: site.id, batch: 0, batches: 1, marked: true })).more) return;
    throw new Error('rollup did not drain');
  }

  it('after every step of a random walk: equal states, watermarks, last readings and buckets; plain steps read no readings from InfluxDB', async () => {
    const rand = rng(15);
    const meters = site.meters.map((m) => m.id);
    const reg = new Map(meters.map((m, i) => [m, 1_000_000 + i * 50_000]));
    const last = new Map(meters.map((m) => [m, T0 - 60_000]));
    let writer = new ReadingsLogWriter(logged.redis, logged.prefix);
    let previous: string[] = [];
    const seen = new Set<string>();
    let plainSteps = 0;

    // Readings of some meters after their last ones (a register now and then).
    const batch = (all = false): { lines: string[]; ids: string[] } => {
      const ids = meters.filter(() => all || rand() < 0.6);
      const lines: string[] = [];
      for (const id of ids) {
        for (let k = 0, n = 1 + Math.floor(rand() * 3); k < n; k++) {
          const time = last.get(id)! + 60_000 * (1 + Math.floor(rand() * 3));
          const wh = reg.get(id)! + Math.floor(rand() * 400);
          last.set(id, time);
          reg.set(id, wh);
          const tariffWh = rand() < 0.3 ? { 1: Math.floor(wh / 3), 2: Math.floor(wh / 3), 3: wh - 2 * Math.floor(wh / 3) } : undefined;
          lines.push(sampleLine(site.id, { meter: id, time, wh, ...(tariffWh ? { tariffWh } : {}), ...(rand() < 0.2 ? { source: 'frozen' as const } : {}) }));
        }
      }
      clock.now = Math.max(clock.now, ...ids.map((id) => last.get(id)!)) + 30_000;
      return { lines, ids };
    };
    const writeBoth = async (lines: string[]) => {
      if (lines.length) await Promise.all([logged.influx.write(lines), plain.influx.write(lines)]);
    };
    const announce = async (ids: string[]) => {
      await markRollup(logged.redis, logged.prefix, site.id, ids);
      await markRollup(plain.redis, plain.prefix, site.id, ids);
    };
    /** After a batch the log missed: the writer's next batch, logged; the pipeline without the log is told of both (it would find the first at its safety tick). */
    const thenLogged = async (missed: string[]) => {
      const next = batch();
      await writeBoth(next.lines);
      await writer.written(site.id, next.lines.join('\n'));
      await announce([...missed, ...next.ids]);
    };

    for (let step = 0; step < 60; step++) {
      const r = rand();
      let kind: string;
      const before = readingStatements;
      if (step === 0 || r < 0.6) {
        kind = 'readings';
        // The first: every meter (a meter's first run reads its history from InfluxDB).
        const b = batch(step === 0);
        await writeBoth(b.lines);
        await writer.written(site.id, b.lines.join('\n'));
        await announce(b.ids);
        previous = b.lines;
      } else if (r < 0.66) {
        kind = 'sent twice';
        await writeBoth(previous);
        await writer.written(site.id, previous.join('\n'));
        await announce([...new Set(previous.map((l) => /meter=([^,]+)/.exec(l)![1]))]);
      } else if (r < 0.72) {
        kind = 'late';
        const id = meters[Math.floor(rand() * meters.length)];
        const line = sampleLine(site.id, { meter: id, time: last.get(id)! - 90_000, wh: reg.get(id)! - 10 });
        await writeBoth([line]);
        await writer.written(site.id, line);
        await announce([id]);
      } else if (r < 0.78) {
        kind = 'killed before the append';
        const b = batch();
        await writeBoth(b.lines);
        writer = new ReadingsLogWriter(logged.redis, logged.prefix);
        await thenLogged(b.ids);
      } else if (r < 0.84) {
        kind = 'refused in part';
        const b = batch();
        await writeBoth(b.lines.slice(0, Math.ceil(b.lines.length / 2)));
        await writer.broken(site.id);
        await thenLogged(b.ids);
      } else if (r < 0.88) {
        kind = 'trimmed';
        const b = batch();
        await writeBoth(b.lines);
        await writer.written(site.id, b.lines.join('\n'));
        await logged.redis.xtrim(readingsLogKey(logged.prefix, site.id), 'MAXLEN', 0);
        await announce(b.ids);
      } else if (r < 0.93) {
        kind = 'import';
        const b = batch();
        await writeBoth(b.lines);
        await announceNewData(logged.redis, logged.prefix, site.id, 'readings');
        await announce([allMember(0, 1)]);
      } else {
        kind = 'tick';
        await announce([allMember(0, 1)]);
      }
      await drain(ctxLog);
      await drain(ctxPlain);
      seen.add(kind);
      expect(await snapshot(logged), `step ${step} (${kind})`).toEqual(await snapshot(plain));
      // A plain step after a plain step: the log vouches, so no reading is asked of InfluxDB.
      if (kind === 'readings' && step > 0 && previousKind === 'readings') {
        plainSteps++;
        expect(readingStatements - before, `step ${step}: reading statements`).toBe(0);
      }
      previousKind = kind;
    }
    expect([...seen].sort()).toEqual(['import', 'killed before the append', 'late', 'readings', 'refused in part', 'sent twice', 'tick', 'trimmed']);
    expect(plainSteps).toBeGreaterThan(10);
    // The rollup trims what it has read: the entry at its position is what is left.
    expect(await logged.redis.xlen(readingsLogKey(logged.prefix, site.id))).toBe(1);
  }, 120_000);
  let previousKind = '';
});

/** One reading of every meter of `site` at `from`, as the collector writes it (each meter's Wh climbing 1 a second from T0). */
const readingLinesAt = (site: Site, from: number) => site.meters.map((m, i) => sampleLine(site.id, { meter: m.id, time: from, wh: 1_000_000 + i * 1000 + (from - T0) / 1000 }));

/** A rollup tick of the site's one batch, marked as the scheduler marks it. */
async function markedTick(env: TestEnv, ctx: WorkerContext, site: Site) {
  await markRollup(env.redis, env.prefix, site.id, [allMember(0, 1)]);
  return processRollup(ctx, { site: site.id, batch: 0, batches: 1, marked: true });
}

describe('the tick reads synced meters from InfluxDB every rollupResyncEveryMs, not on every tick', () => {
  let env: TestEnv;
  let ctx: WorkerContext;
  afterAll(async () => {
    await closeQueues(ctx.queues);
    await env.cleanup();
  });

  it('readings a writer did not log reach the rollup at the next resync; ticks between read nothing for synced meters', async () => {
    const site = testSite();
    env = await testEnv('rresync');
    const clock = { now: T0 + 10 * 60_000 };
    ctx = testContext(env, [site], clock, { lateCheckEveryMs: 1e12, rollupResyncEveryMs: 300_000 });
    let statements = 0;
    const query = env.influx.queryRaw.bind(env.influx);
    env.influx.queryRaw = (q, opts) => {
      if (q.includes(`SELECT ${READING_FIELDS} FROM`)) statements++;
      return query(q, opts);
    };
    const writer = new ReadingsLogWriter(env.redis, env.prefix);
    const lines = (from: number) => readingLinesAt(site, from);
    const tick = () => markedTick(env, ctx, site);
    const w = async () => JSON.parse((await env.redis.hget(redisKeys(env.prefix, site.id).rollupState, 'T101'))!).w as number;
    // Logged and rolled up: every meter synced (the first tick reads them all from InfluxDB).
    await env.influx.write(lines(T0));
    await writer.written(site.id, lines(T0).join('\n'));
    await tick();
    await env.influx.write(lines(T0 + 60_000));
    await writer.written(site.id, lines(T0 + 60_000).join('\n'));
    statements = 0;
    expect((await tick()).readings).toBe(site.meters.length);
    expect(statements).toBe(0);
    // A writer that does not log: the tick does not ask InfluxDB for synced meters...
    await env.influx.write(lines(T0 + 120_000));
    clock.now += 60_000;
    expect((await tick()).readings).toBe(0);
    expect(statements).toBe(0);
    expect(await w()).toBe(T0 + 60_000);
    // ...until the resync is due.
    clock.now += 300_000;
    expect((await tick()).readings).toBe(site.meters.length);
    expect(statements).toBeGreaterThan(0);
    expect(await w()).toBe(T0 + 120_000);
  });
});

describe('a collector that does not log (run without Redis)', () => {
  let env: TestEnv;
  let ctx: WorkerContext;
  afterAll(async () => {
    await closeQueues(ctx.queues);
    await env.cleanup();
  });

  it('its readings reach the rollup at every tick, as before the log', async () => {
    const site = testSite();
    env = await testEnv('rnolog');
    const clock = { now: T0 + 10 * 60_000 };
    ctx = testContext(env, [site], clock, { lateCheckEveryMs: 1e12, rollupResyncEveryMs: 300_000 });
    const lines = (from: number) => readingLinesAt(site, from);
    const tick = () => markedTick(env, ctx, site);
    for (let k = 0; k < 4; k++) {
      await env.influx.write(lines(T0 + k * 60_000));
      clock.now += 1000;
      expect((await tick()).readings, `tick ${k}`).toBe(site.meters.length);
    }
  });
});
