import { liveFigures, parseSiteYaml, zoneOf } from '../core/index.ts';
import { quoteString } from '../influx/client.ts';
import { processBalance } from '../workers/balance.ts';
import { loadLiveInputs } from '../workers/live-figures.ts';
import { batchCount, closeQueues, DEFAULTS } from '../workers/queues.ts';
import { rollupAll, testContext, testEnv } from '../workers/testing/env.ts';
import { readingLines, syntheticReadings } from '../workers/testing/month.ts';
import { benchSiteYaml } from './bench-site.ts';

/**
 * Provisional settlement (issue 10, billing.md section 5) of a 1,000-account site with
 * 1-minute readings, the day so far (12 hours): the balance job reads the bucket sums of the
 * unsettled day and the trailing 24 h, each meter's last interval, payments and charges from
 * InfluxDB, settles them with the core (own, two pools, loss with the cap) and writes a
 * balance point per account. It must fit the balance cadence (DEFAULTS.balanceEveryMs).
 * Raced against the bare InfluxDB queries it makes (the I/O floor) and the core alone.
 * Run: npx tsx bench/provisional.bench.ts   (diagnostics on stderr; SUBMETER_BENCH_ACCOUNTS, default 1000)
 */

const err = (s: string) => process.stderr.write(`[bench] ${s}\n`);
const N = Number(process.env.SUBMETER_BENCH_ACCOUNTS ?? 1000);
const HOURS = 12;
const RUNS = 5;

const site = parseSiteYaml(benchSiteYaml(N, 'prov', { name: 'Provisional', hall: true }), 'prov.yaml');
const zone = zoneOf(site.timezone);
const DAY = '2026-10-01';
const now = zone.midnight(DAY) + HOURS * 3_600_000 + 30_000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const env = await testEnv('prov');
let out: string[];
try {
  const rows = syntheticReadings(site, DAY, 1, 60_000, 11).filter((r) => r.time <= now);
  err(`writing ${rows.length} one-minute readings of ${site.meters.length} meters ...`);
  const lines = readingLines(site.id, rows);
  for (let i = 0; i < lines.length; i += 20_000) await env.influx.write(lines.slice(i, i + 20_000));
  const ctx = testContext(env, [site], { now }, { rollupMaxReadings: 1000 });
  const batches = batchCount(site);
  const tr = performance.now();
  for (let b = 0; b < batches; b++) await rollupAll(ctx, site.id, b, batches);
  err(`rollup of the day so far: ${((performance.now() - tr) / 1000).toFixed(1)} s for ${batches} batches`);

  // Baseline 1: the bare InfluxDB queries of the balance job (bucket sums, last intervals, payments, charges).
  const sq = quoteString(site.id);
  const tz = quoteString(site.timezone);
  const group = `GROUP BY meter, period, time(1d) fill(none) tz(${tz})`;
  const bare = async () => {
    await env.influx.queryRaw(
      [
        `SELECT last(master_wh) FROM site_day WHERE site = ${sq}`,
        `SELECT sum(fen), count(fen) FROM payment WHERE site = ${sq} GROUP BY account`,
        `SELECT sum(wh) FROM tou_bucket WHERE site = ${sq} AND time >= 0ms AND time <= ${now}ms ${group}`,
        `SELECT sum(wh) FROM tou_bucket WHERE site = ${sq} AND time >= ${now - 86_400_000}ms AND time <= ${now}ms ${group}`,
        `SELECT wh FROM reading WHERE site = ${sq} AND time > ${now - 25 * 3_600_000}ms AND time <= ${now}ms GROUP BY meter ORDER BY time DESC LIMIT 2`,
        `SELECT sum(fen) FROM charge WHERE site = ${sq} GROUP BY account`,
      ].join(';\n'),
    );
  };
  const queryMs: number[] = [];
  const coreMs: number[] = [];
  const jobMs: number[] = [];
  let inputs = (await loadLiveInputs({ influx: env.influx, site, now })).inputs;
  for (let i = 0; i < RUNS; i++) {
    let t = performance.now();
    await bare();
    queryMs.push(performance.now() - t);
    t = performance.now();
    inputs = (await loadLiveInputs({ influx: env.influx, site, now })).inputs;
    const figures = liveFigures(site, inputs);
    const gather = performance.now() - t;
    t = performance.now();
    liveFigures(site, inputs);
    coreMs.push(performance.now() - t);
    t = performance.now();
    const written = await processBalance(ctx, { site: site.id });
    jobMs.push(performance.now() - t);
    if (written.length !== N || figures.accounts.some((a) => a.provisionalFen <= 0)) throw new Error('every account should carry provisional charges');
    err(`run ${i + 1}: bare queries ${queryMs[i].toFixed(0)} ms, gather + core ${gather.toFixed(0)} ms, core ${coreMs[i].toFixed(0)} ms, balance job ${jobMs[i].toFixed(0)} ms`);
  }
  await closeQueues(ctx.queues);
  const cadence = DEFAULTS.balanceEveryMs;
  const job = median(jobMs);
  const q = median(queryMs);
  const cells = inputs.unsettled.reduce((s, d) => s + d.energy.length, 0);
  out = [
    '## Workers: provisional settlement of a 1,000-account site (the live balance with shares)',
    '',
    `${N} accounts, ${site.meters.length} meters (two pools: area and consumption; loss capped at 3 %), 1-minute readings for the first ${HOURS} h of the day, rolled up; the balance job then settles the day so far by the core (billing.md section 5: ${cells} meter-period energies, own, pool and loss lines rounded per line) plus the trailing 24 h and the cost per hour, and writes ${N} balance points. Median of ${RUNS} runs, raced against the bare InfluxDB queries the job makes and the core alone; real InfluxDB 1.6 and Redis.`,
    'Reproduce: `set -a; . .run/services.env; set +a; npx tsx bench/provisional.bench.ts`',
    '',
    '| measure | result | baseline | ratio |',
    '|---|---|---|---|',
    `| balance job per site (provisional settlement incl. shares) | ${(job / 1000).toFixed(2)} s | ${(cadence / 1000).toFixed(0)} s balance cadence | ${(job / cadence).toFixed(2)} (< 1 fits the cadence) |`,
    `| of which the core (liveFigures) | ${(median(coreMs) / 1000).toFixed(3)} s | - | ${(median(coreMs) / job).toFixed(2)} of the job |`,
    `| InfluxDB queries alone | ${(q / 1000).toFixed(2)} s | - | job = ${(job / q).toFixed(2)}x the queries |`,
    '',
    `Freshness for this site: the rollup runs on each announcement of new data (gathered for ${DEFAULTS.rollupCoalesceMs / 1000} s; its ${DEFAULTS.rollupEveryMs / 1000} s tick is only a safety net) and the balance job right after it, so about ${((DEFAULTS.rollupCoalesceMs + job) / 1000).toFixed(1)} s plus the rollup itself against the 10 s goal (bench/freshness.bench.ts and bench/scale.bench.ts measure it end to end).`,
  ];
} finally {
  await env.cleanup();
}
process.stdout.write(`${out.join('\n')}\n`);
