import { addDays, parseSiteYaml, settleRange, storeReadings, zoneOf } from '../core/index.ts';
import type { Site } from '../core/index.ts';
import { loadRaw } from '../workers/context.ts';
import { closeQueues } from '../workers/queues.ts';
import { processRollup } from '../workers/rollup.ts';
import { settleSiteDay } from '../workers/settlement.ts';
import { testContext, testEnv } from '../workers/testing/env.ts';
import { readingLines, syntheticReadings } from '../workers/testing/month.ts';
import { benchSiteYaml as siteYaml } from './bench-site.ts';

/**
 * Workers (issue 4): rollup throughput (readings/s from InfluxDB to 15-minute TOU buckets
 * written back) raced against the bare InfluxDB query of the same readings (the I/O floor
 * the rollup cannot beat), and the settlement of one day for 1,000 accounts through
 * InfluxDB raced against the core's settleRange on the same readings in memory.
 * Real servers (SUBMETER_INFLUX_URL, SUBMETER_REDIS_URL), a fresh database, dropped after.
 * Run: npx tsx bench/rollup.bench.ts   (diagnostics on stderr)
 */

const err = (s: string) => process.stderr.write(`[bench] ${s}\n`);

async function writeAll(env: Awaited<ReturnType<typeof testEnv>>, site: Site, rows: ReturnType<typeof syntheticReadings>): Promise<void> {
  const lines = readingLines(site.id, rows);
  for (let i = 0; i < lines.length; i += 20_000) await env.influx.write(lines.slice(i, i + 20_000));
}

// --- rollup: 200 meters (one default batch), 12 hours of 1-minute readings ---
const rollSite = parseSiteYaml(siteYaml(198), 'bench.yaml');
const DAY = '2026-10-01';
const zone = zoneOf(rollSite.timezone);
const env = await testEnv('bench');
let result: string[];
try {
  const hours = 12;
  const rows = syntheticReadings(rollSite, DAY, 1, 60_000, 3).filter((r) => r.time <= zone.midnight(DAY) + hours * 3_600_000);
  err(`writing ${rows.length} readings of ${rollSite.meters.length} meters ...`);
  await writeAll(env, rollSite, rows);
  const ctx = testContext(env, [rollSite], { now: zone.midnight(DAY) + hours * 3_600_000 + 60_000 }, { lateWindowDays: 1 });
  const ids = rollSite.meters.map((m) => m.id);
  const t0 = performance.now();
  const raw = await loadRaw(env.influx, rollSite.id, ids, zone.midnight(DAY) - 1, zone.midnight(DAY) + 86_400_000);
  const queryS = (performance.now() - t0) / 1000;
  const n = [...raw.values()].reduce((s, r) => s + r.time.length, 0);
  const t1 = performance.now();
  const r = await processRollup(ctx, { site: rollSite.id, batch: 0, batches: 1 });
  const rollS = (performance.now() - t1) / 1000;
  err(`query ${n} readings ${queryS.toFixed(2)} s; rollup ${r.readings} readings -> ${r.buckets} buckets ${rollS.toFixed(2)} s`);

  // --- settlement: 1,000 accounts, one day (with the day before as history), 15-minute readings ---
  const site = parseSiteYaml(siteYaml(1000), 'bench.yaml');
  const sRows = syntheticReadings(site, addDays(DAY, -1), 2, 15 * 60_000, 5);
  err(`writing ${sRows.length} readings of ${site.meters.length} meters ...`);
  await writeAll(env, site, sRows);
  const sctx = testContext(env, [site], { now: zone.midnight(addDays(DAY, 1)) + 20 * 60_000 });
  const t2 = performance.now();
  const s = await settleSiteDay(sctx, site, DAY);
  const settleS = (performance.now() - t2) / 1000;
  const inWindow = sRows.filter((x) => x.time >= zone.midnight(DAY) - 86_400_000 && x.time < zone.midnight(addDays(DAY, 1)) + 6 * 3_600_000);
  const t3 = performance.now();
  settleRange(site, storeReadings(site, inWindow), DAY, addDays(DAY, 1));
  const coreS = (performance.now() - t3) / 1000;
  err(`settle ${s.lines} lines ${settleS.toFixed(2)} s; core only ${coreS.toFixed(2)} s`);
  await closeQueues(ctx.queues);
  await closeQueues(sctx.queues);
  const f = (x: number) => Math.round(x).toLocaleString('en-US');
  result = [
    '## Workers: rollup throughput and daily settlement for 1,000 accounts',
    '',
    `Real InfluxDB 1.6 and Redis on this machine. Rollup: ${f(n)} one-minute readings of ${rollSite.meters.length} meters (one rollup job, the default batch size) from InfluxDB through the core's counter rules and 15-minute TOU split, ${f(r.buckets)} bucket points written back; raced against the bare InfluxDB query of the same readings. Settlement: one day for 1,000 accounts (1,002 meters, 15-minute readings, the day before loaded as history), load -> core settleRange -> ${f(s.lines)} charge lines written; raced against settleRange on the same readings in memory.`,
    'Reproduce: `set -a; . .run/services.env; set +a; npx tsx bench/rollup.bench.ts`',
    '',
    '| measure | workers | baseline | ratio |',
    '|---|---|---|---|',
    `| rollup readings/s | ${f(n / rollS)} | ${f(n / queryS)} (InfluxDB query only) | ${(rollS / queryS).toFixed(2)}x the query time |`,
    `| settle 1 day, 1,000 accounts | ${settleS.toFixed(2)} s | ${coreS.toFixed(2)} s (core in memory) | ${(settleS / coreS).toFixed(1)}x; ${((settleS / (15 * 60)) * 100).toFixed(2)} % of the 15-min grace |`,
    '',
    `Settlement reads ${f(inWindow.length)} raw readings here; with 1-minute readings it reads 15x as many, so expect about ${(settleS * 15).toFixed(0)} s a day for 1,000 accounts (see docs/scaling.md).`,
  ];
} finally {
  await env.cleanup();
}
process.stdout.write(`${result.join('\n')}\n`);
