import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addDays, PERIODS, settleMeterEnergy, settleRange, storeReadings, zoneOf } from '../core/index.ts';
import type { ChargeLine, LocalDate, MeterEnergy, Period, ReadingRow } from '../core/index.ts';
import { quoteString } from '../influx/client.ts';
import type { WorkerContext } from './context.ts';
import { closeQueues } from './queues.ts';
import { settleSiteDay } from './settlement.ts';
import { rollupAll, testContext, testEnv, testSite } from './testing/env.ts';
import type { TestEnv } from './testing/env.ts';
import { readingLines, syntheticReadings } from './testing/month.ts';

/**
 * Bucket cells == raw-reading cells (issue 10). The live balance settles unsettled days
 * from the rollup's 15-minute buckets; the nightly settlement settles the same day from raw
 * readings in its own window. The split telescopes, so the two agree exactly when both see
 * the same accepted readings; this test makes that hard: readings arrive in small pieces
 * (each rollup run takes at most 5 readings per meter), a lone spike, a persistent jump (a
 * spike run that becomes the new baseline), meters silent 7 h across midnight (longer than
 * the old 6 h rollup context), 29 h into a day (longer than the 24 h settlement lookback)
 * and 32 h out of one (longer than the 6 h lookahead). For every day: buckets per meter = the offline cells, provisional
 * lines = settled lines = offline lines, and the settlement rewrites no bucket.
 */

const site = testSite();
const zone = zoneOf(site.timezone);
const FROM = '2026-10-01';
const DAYS = 4;
const H = 3_600_000;
const at = (day: number, hour: number) => zone.midnight(addDays(FROM, day)) + hour * H;

function scenario(): ReadingRow[] {
  let rows = syntheticReadings(site, FROM, DAYS);
  // T101: one reading 500 kWh too high (a spike, dropped).
  const spike = rows.find((r) => r.meter === 'T101' && r.time > at(1, 10))!;
  rows = rows.map((r) => (r === spike ? { ...r, wh: r.wh + 500_000 } : r));
  // T103: from day 1 14:00 every reading 300 kWh higher (a run of 3 -> new baseline).
  rows = rows.map((r) => (r.meter === 'T103' && r.time > at(1, 14) ? { ...r, wh: r.wh + 300_000 } : r));
  // T102 silent 20:00 -> 03:00 across the first midnight (longer than the old 6 h rollup
  // context); C-ELEV silent 29 h into 2026-10-03 (its last reading is before that day's 24 h
  // lookback); M0 silent 32 h out of 2026-10-03 (its next reading is after the 6 h lookahead).
  rows = rows.filter((r) => !(r.meter === 'T102' && r.time > at(0, 20) && r.time < at(1, 3)));
  rows = rows.filter((r) => !(r.meter === 'C-ELEV' && r.time > at(0, 22) && r.time < at(2, 3)));
  rows = rows.filter((r) => !(r.meter === 'M0' && r.time > at(2, 12) && r.time < at(3, 20)));
  return rows;
}

const key = (l: Pick<ChargeLine, 'account' | 'kind' | 'pool' | 'period' | 'wh' | 'fen'>) => `${l.account}|${l.kind}|${l.pool ?? ''}|${l.period}|${l.wh}|${l.fen}`;

describe('bucket cells == raw-reading cells (real Redis and InfluxDB)', () => {
  let env: TestEnv;
  let ctx: WorkerContext;
  const clock = { now: 0 };
  const rows = scenario();

  beforeAll(async () => {
    env = await testEnv('cells');
    ctx = testContext(env, [site], clock, { rollupMaxReadings: 5, lateCheckEveryMs: 1e12 });
    // Readings arrive in order, 97 minutes at a time, a rollup after each delivery.
    const end = at(DAYS, 0) + 60_000;
    for (let t = at(0, 0) + 97 * 60_000, prev = -Infinity; ; prev = t, t = Math.min(t + 97 * 60_000, end)) {
      const part = rows.filter((r) => r.time <= t && r.time > prev);
      if (part.length) await env.influx.write(readingLines(site.id, part));
      clock.now = t;
      await rollupAll(ctx, site.id);
      if (t === end) break;
    }
  }, 300_000);
  afterAll(async () => {
    await closeQueues(ctx.queues);
    await env.cleanup();
  });

  async function bucketEnergy(day: LocalDate): Promise<MeterEnergy[]> {
    const rs = await env.influx.query(
      `SELECT sum(wh) FROM tou_bucket WHERE site = ${quoteString(site.id)} AND time >= ${zone.midnight(day)}ms AND time < ${zone.midnight(addDays(day, 1))}ms GROUP BY meter, period`,
    );
    return rs.map((r) => ({ meter: r.meter as string, period: r.period as Period, wh: r.sum as number }));
  }

  function offlineMeterCells(day: LocalDate): Map<string, number> {
    const out = new Map<string, number>();
    settleRange(site, storeReadings(site, rows), day, addDays(day, 1), {
      onSegments: (mi, cal, wh) => {
        const d = cal.days.indexOf(day);
        for (let k = 0; k < cal.segments; k++) {
          if (cal.day[k] !== d || wh[k] === 0) continue;
          const id = `${site.meters[mi].id}|${PERIODS[cal.period[k]]}`;
          out.set(id, (out.get(id) ?? 0) + wh[k]);
        }
      },
    });
    return out;
  }

  for (let d = 0; d < DAYS; d++) {
    const day = addDays(FROM, d);
    it(`${day}: buckets per meter and period = offline cells; provisional lines = settled lines = offline lines; no bucket rewritten`, async () => {
      const energy = await bucketEnergy(day);
      const mine = new Map(energy.filter((e) => e.wh !== 0).map((e) => [`${e.meter}|${e.period}`, e.wh]));
      expect(mine).toEqual(offlineMeterCells(day));

      const provisional = settleMeterEnergy(site, day, energy).lines.map(key).sort();
      const offline = settleRange(site, storeReadings(site, rows), day, addDays(day, 1));
      expect(provisional).toEqual(offline.days[offline.fromDay].lines.map(key).sort());

      const before = await bucketEnergy(day);
      expect((await settleSiteDay(ctx, site, day)).outcome).toBe('settled');
      const settled = await env.influx.query(`SELECT wh, fen FROM charge WHERE site = ${quoteString(site.id)} AND time = ${zone.midnight(day)}ms GROUP BY account, kind, pool, period, rev`);
      expect(settled.map((r) => key({ account: r.account as string, kind: r.kind as ChargeLine['kind'], pool: (r.pool as string) || undefined, period: r.period as Period, wh: r.wh as number, fen: r.fen as number })).sort()).toEqual(provisional);
      expect(await bucketEnergy(day)).toEqual(before);
    });
  }
});

describe('where the settlement window may see other history (documented in docs/workers.md)', () => {
  it('a spike right before a silence longer than the lookback: the settled day is the truth and its buckets follow it', async () => {
    const env = await testEnv('cells2');
    const clock = { now: 0 };
    const ctx = testContext(env, [site], clock, { lateCheckEveryMs: 1e12 });
    try {
      // T101's reading at day 0 10:05 is 500 kWh too high (dropped); then T101 is silent until
      // day 2 04:00. The rollup, which carries the whole history, spreads day 0 10:00 ->
      // day 2 04:00 over the silence; the settlement of day 2 starts its window at the
      // spike (the last reading before its 24 h lookback), takes it as the baseline and
      // sees day 2 04:00 as a reset: no T101 energy 00:00-04:00.
      let rows = syntheticReadings(site, FROM, 3);
      const spike = rows.find((r) => r.meter === 'T101' && r.time > at(0, 10))!;
      rows = rows.map((r) => (r === spike ? { ...r, wh: r.wh + 500_000 } : r)).filter((r) => !(r.meter === 'T101' && r.time > spike.time && r.time < at(2, 4)));
      await env.influx.write(readingLines(site.id, rows));
      clock.now = at(3, 0) + 60_000;
      await rollupAll(ctx, site.id);
      const day = addDays(FROM, 2);
      const energy = async () =>
        (await env.influx.query(`SELECT sum(wh) FROM tou_bucket WHERE site = ${quoteString(site.id)} AND time >= ${zone.midnight(day)}ms AND time < ${zone.midnight(addDays(day, 1))}ms GROUP BY meter, period`)).map((r) => ({
          meter: r.meter as string,
          period: r.period as Period,
          wh: r.sum as number,
        }));
      const provisional = settleMeterEnergy(site, day, await energy()).lines.map(key).sort();
      const offline = settleRange(site, storeReadings(site, rows), day, addDays(day, 1));
      expect(provisional).toEqual(offline.days[offline.fromDay].lines.map(key).sort()); // the rollup is exact
      await settleSiteDay(ctx, site, day);
      const settled = (await env.influx.query(`SELECT wh, fen FROM charge WHERE site = ${quoteString(site.id)} AND time = ${zone.midnight(day)}ms GROUP BY account, kind, pool, period, rev`))
        .map((r) => key({ account: r.account as string, kind: r.kind as ChargeLine['kind'], pool: (r.pool as string) || undefined, period: r.period as Period, wh: r.wh as number, fen: r.fen as number }))
        .sort();
      expect(settled).not.toEqual(provisional);
      // The settlement rewrote the day's buckets: usage now agrees with what was charged.
      expect(settleMeterEnergy(site, day, await energy()).lines.map(key).sort()).toEqual(settled);
    } finally {
      await closeQueues(ctx.queues);
      await env.cleanup();
    }
  });
});
