import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { addDays, parseSiteYaml, zoneOf } from '../core/index.ts';
import type { Site } from '../core/index.ts';
import { InfluxV1 } from '../influx/client.ts';
import { sampleLine } from '../influx/lines.ts';
import { siteDayLine } from '../influx/settlement-lines.ts';
import { announceNewData } from '../lib/new-data-channel.ts';
import { ReadingsLogWriter } from '../lib/readings-log.ts';
import { createRedis, scanKeys } from '../lib/redis.ts';
import { redisKeys } from '../workers/keys.ts';
import { batchCount, closeQueues, DEFAULTS, openQueues } from '../workers/queues.ts';
import { rollupAll, testContext, testEnv } from '../workers/testing/env.ts';
import type { TestEnv } from '../workers/testing/env.ts';
import { readingLines, syntheticReadings } from '../workers/testing/month.ts';
import { benchSiteYaml } from './bench-site.ts';
import { COMPOSE_WORKER_REPLICAS, COMPOSE_WORKERS_NODE_OPTIONS } from './compose-workers.ts';
import { cpuSeconds, influxPid, influxPointsWritten, memory, processName, redisInfo } from './proc-stats.ts';

/**
 * The scale soak (issue 15 item 1): N meters read every minute, over sites of 1,000 meters,
 * written into InfluxDB in real time, with the real workers (all queues, their default
 * cadence, in as many child processes as compose.yaml deploys by default: 2) and the API (a child process serving the first site, under
 * a light tenant load) on the real Redis and InfluxDB. No time compression: the workers'
 * cadence (rollup on announced data, balance after it) is wall-clock, and freshness is what
 * a tenant sees, so the soak runs in real time and bounds the run instead.
 *
 * The writer plays the sites' collectors: every second it writes the readings of the 1/60
 * of each site's meters whose minute it is (every meter once a minute, stamped "now") and
 * announces each site's batch on the new-data channel, as the collector does. From the
 * warm-up on, every second one meter (turn by turn over the sites) gets a marker step of
 * 2 kWh (120 kW for the minute, under the default max_kw): its account's live balance, as
 * the balance job keeps it in Redis for the API (provisional settlement with the pool and
 * loss shares, billing.md section 5), drops by >= 70 fen even at the valley price, against
 * ~1 fen a minute of background use. Freshness = when a poller (every 250 ms) sees the
 * drop, minus the marker sample's time (freshness.bench.ts measures the same on a small
 * site through InfluxDB).
 *
 * Settlement time per site-day: a separate site of 1,000 meters with a whole day of
 * 1-minute readings (1.44 M points) is written and rolled up once before the soaks, and
 * settled once then (idle); during each soak a child process settles it again
 * (settleSiteDay from the buckets, the nightly path), timed under the soak's load.
 *
 * Per N it reports the freshness p50/p95/max, the settlement time, the CPU of the workers,
 * InfluxDB, Redis and the API (cores = CPU seconds / wall seconds of the measured window),
 * the peak RSS of each process, Redis used_memory, InfluxDB points/s written (all writers:
 * SHOW STATS), and whether it kept up: freshness p95 <= 10 s, no marker lost, and memory
 * flat (the workers' RSS and the run's own Redis keys, MEMORY USAGE summed, in the last
 * quarter of the window within 15 % of the second quarter; the shared server's used_memory
 * moves with the other users of it and is reported, not judged). The median wait and run
 * of the last rollup and balance jobs say where a round's time goes.
 *
 * Run: `set -a; . .run/services.env; set +a; npx tsx bench/scale.bench.ts`
 * (SCALE_N meters, default 10000,100000 (the goal is 100,000 on this machine), SCALE_SECONDS per N, default 90; SCALE_SETTLE=0 skips the settlement site;
 * SCALE_WORKERS workers processes, default 2 as compose.yaml deploys; SCALE_CONCURRENCY jobs in flight per queue in each workers process, default the workers' own, 2;
 * SCALE_BATCH meters per rollup batch, default the workers' own; SCALE_TICK_MS the rollup's safety tick, default the workers' own; SCALE_LATE_CHECK_MS the rollup's
 * late-data check interval, default the workers' own, 60 s)
 */

const NS = (process.env.SCALE_N ?? '10000,100000').split(',').map(Number);
/**
 * Workers processes on the same Redis and InfluxDB: compose.yaml's default
 * (SUBMETER_WORKER_REPLICAS, 2: bench/compose-workers.ts), so the soak measures what the stack deploys. SCALE_WORKERS=1
 * measures one process.
 */
const WORKERS = Number(process.env.SCALE_WORKERS ?? COMPOSE_WORKER_REPLICAS);
const SECONDS = Number(process.env.SCALE_SECONDS ?? 90);
const SETTLE = process.env.SCALE_SETTLE !== '0';
const PER_SITE = 1000;
/** Each meter's energy in the seed's minute (Wh). */
const SEED_WH = 10;
const WARM_S = 15;
const GOAL_MS = 10_000;
const MARK_WH = 2000;
const DROP_FEN = 40;
const BASE_WH = 10; // each tenant's use per minute (600 W), the common meter the same
const SETTLE_DAY = '2026-10-01';
const INFLUX_URL = process.env.SUBMETER_INFLUX_URL ?? 'http://127.0.0.1:8096';
const REDIS_URL = process.env.SUBMETER_REDIS_URL ?? 'redis://127.0.0.1:6389';
const err = (s: string) => process.stderr.write(`[scale] ${s}\n`);

/** The soak's sites for N meters: ceil(N / 1000) sites of up to 1,000 tenant meters (plus a master and a common meter each). */
function soakSites(n: number): Site[] {
  const count = Math.ceil(n / PER_SITE);
  return Array.from({ length: count }, (_, i) => parseSiteYaml(benchSiteYaml(Math.min(PER_SITE, n - i * PER_SITE), `s${String(i + 1).padStart(3, '0')}`), `s${i + 1}.yaml`));
}

const settleSite = () => parseSiteYaml(benchSiteYaml(PER_SITE, 'settle'), 'settle.yaml');
const settleNow = () => zoneOf('Asia/Shanghai').midnight('2026-10-02') + 3_600_000;
const childEnv = (db: string, prefix: string): TestEnv => ({
  influx: new InfluxV1({ url: INFLUX_URL, db, timeoutMs: 120_000 }),
  redis: createRedis(REDIS_URL, { maxRetriesPerRequest: null }),
  prefix,
  cleanup: async () => undefined,
});

const role = process.env.SCALE_ROLE;
if (role === 'workers') {
  // The real workers: every queue, default schedule, as `submeter workers` (SCALE_WORKERS processes of it).
  process.env.SUBMETER_LOG_LEVEL ??= 'warn';
  const { startWorkers } = await import('../workers/start.ts');
  const prefix = process.env.SCALE_PREFIX!;
  const running = await startWorkers({ sites: soakSites(Number(process.env.SCALE_METERS)), influx: { url: INFLUX_URL, db: process.env.SCALE_DB! }, queuePrefix: prefix, keyPrefix: prefix, ...(process.env.SCALE_CONCURRENCY ? { concurrency: Number(process.env.SCALE_CONCURRENCY) } : {}), ...(process.env.SCALE_BATCH || process.env.SCALE_TICK_MS ? { schedule: { ...(process.env.SCALE_BATCH ? { metersPerBatch: Number(process.env.SCALE_BATCH) } : {}), ...(process.env.SCALE_TICK_MS ? { rollupEveryMs: Number(process.env.SCALE_TICK_MS) } : {}) } } : {}), ...(process.env.SCALE_LATE_CHECK_MS ? { tuning: { lateCheckEveryMs: Number(process.env.SCALE_LATE_CHECK_MS) } } : {}) });
  process.send!({ ready: true });
  process.on('message', async () => {
    await running.close();
    process.exit(0);
  });
} else if (role === 'api') {
  process.env.SUBMETER_LOG_LEVEL ??= 'warn';
  const { buildApp } = await import('../api/app.ts');
  const { SiteRef } = await import('../api/site-ref.ts');
  const { RedisTokenStore } = await import('../api/auth/token-store.ts');
  const site = soakSites(Number(process.env.SCALE_METERS))[0];
  const env = childEnv(process.env.SCALE_DB!, process.env.SCALE_PREFIX!);
  const apiPrefix = `${env.prefix}:api:`;
  const app = buildApp({ site: new SiteRef(site), influx: env.influx, redis: env.redis, keyPrefix: apiPrefix, workersKeyPrefix: env.prefix });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const store = new RedisTokenStore(env.redis, apiPrefix);
  const tokens: [string, string][] = [];
  for (const a of site.accounts.slice(0, 200)) tokens.push([a.id, (await store.create({ site: site.id, role: 'tenant', account: a.id })).token]);
  process.send!({ port: (server.address() as AddressInfo).port, tokens });
  process.on('message', () => {
    server.close();
    server.closeAllConnections();
    env.redis.disconnect();
    process.exit(0);
  });
} else if (role === 'settle') {
  // Settles the settlement site's day (seeding it first when asked); answers the time.
  process.env.SUBMETER_LOG_LEVEL ??= 'warn';
  const { settleSiteDay } = await import('../workers/settlement.ts');
  const site = settleSite();
  const env = childEnv(process.env.SCALE_DB!, process.env.SCALE_PREFIX!);
  const ctx = testContext(env, [site], { now: settleNow() });
  const report: Record<string, number | string> = {};
  if (process.env.SCALE_SEED === '1') {
    let t = performance.now();
    const rows = syntheticReadings(site, SETTLE_DAY, 1, 60_000, 15);
    const lines = readingLines(site.id, rows);
    for (let i = 0; i < lines.length; i += 50_000) await env.influx.write(lines.slice(i, i + 50_000));
    report.points = lines.length;
    report.writeMs = performance.now() - t;
    t = performance.now();
    const batches = batchCount(site);
    for (let b = 0; b < batches; b++) await rollupAll(ctx, site.id, b, batches);
    report.rollupMs = performance.now() - t;
  }
  const t = performance.now();
  const r = await settleSiteDay(ctx, site, SETTLE_DAY);
  report.settleMs = performance.now() - t;
  report.outcome = r.outcome;
  report.fromBuckets = r.fromBuckets;
  await closeQueues(ctx.queues);
  env.redis.disconnect();
  process.send!(report);
  process.exit(0);
} else {
  await main();
}

/** SCALE_CPU_PROF=<dir>: each workers process writes a V8 CPU profile there when it stops (where a round's time goes). */
function start(roleName: string, extra: Record<string, string>): ChildProcess {
  const prof = roleName === 'workers' && process.env.SCALE_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.SCALE_CPU_PROF}`] : [];
  // V8 flags of the workers' processes: compose.yaml's NODE_OPTIONS for them (a larger young
  // generation) unless SCALE_WORKERS_NODE_FLAGS says otherwise ('' for Node's defaults).
  if (roleName === 'workers') prof.push(...(process.env.SCALE_WORKERS_NODE_FLAGS ?? COMPOSE_WORKERS_NODE_OPTIONS).split(' ').filter(Boolean));
  return fork(import.meta.filename, [], { execArgv: ['--import', 'tsx', ...prof], env: { ...process.env, SCALE_ROLE: roleName, ...extra }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
}

function message<T>(child: ChildProcess): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    child.once('message', (m) => resolve(m as T));
    child.once('exit', (code) => reject(new Error(`bench child exited (${code})`)));
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.send('stop');
  await exited;
}

interface SettleReport {
  settleMs: number;
  outcome: string;
  fromBuckets: number;
  points?: number;
  writeMs?: number;
  rollupMs?: number;
}

interface Marker {
  site: string;
  account: string;
  t: number;
  base: number;
  seen?: number;
}

interface Sample {
  t: number;
  workersRss: number;
  /** Bytes of the run's own keys (MEMORY USAGE summed): the shared server's used_memory moves with the other users. */
  redisOurs: number;
}

interface SoakResult {
  n: number;
  sites: number;
  startupS: number;
  p50: number;
  p95: number;
  max: number;
  markers: number;
  missed: number;
  settle?: SettleReport;
  jobTimes: Record<string, { wait: number; run: number; jobs: number }>;
  cores: Record<string, number>;
  peak: Record<string, number>;
  redisUsedPeak: number;
  redisOursPeak: number;
  pointsPerS: number;
  readingsPerS: number;
  apiP99: number;
  apiRequests: number;
  apiErrors: number;
  flat: boolean;
  growth: { workers: number; redis: number };
  load: [number, number];
}

async function soak(n: number, influxd: number, redisPid: number, settleDb?: { db: string; prefix: string }): Promise<SoakResult> {
  const sites = soakSites(n);
  const env = await testEnv(`scale${n}`);
  const load0 = loadavg()[0];
  const children: ChildProcess[] = [];
  try {
    // Each meter's readings two minutes and a minute ago (the rollup's starting point, and
    // the last interval every running meter has: the balance takes cost per hour from the
    // rollup's last two readings, and a meter with one reading is asked of InfluxDB), then
    // the workers and the API.
    const t0 = Date.now() - 60_000;
    const reg = new Map<string, number>();
    const readingsLog = new ReadingsLogWriter(env.redis, env.prefix);
    const seed: string[] = [];
    for (const s of sites)
      for (const m of s.meters) {
        reg.set(`${s.id}/${m.id}`, 1_000_000);
        // The master's minute is what the others used plus 2 % loss (as the writer below does).
        const before = m.role === 'master' ? 1_000_000 - Math.round(SEED_WH * (s.meters.length - 1) * 1.02) : 1_000_000 - SEED_WH;
        seed.push(sampleLine(s.id, { meter: m.id, time: t0 - 60_000, wh: before }), sampleLine(s.id, { meter: m.id, time: t0, wh: 1_000_000 }));
      }
    // Settled through yesterday, as a running property is each morning (a site_day point is
    // what marks a settled day): the balance then settles only today provisionally, and the
    // trailing 24 h reach back into yesterday, as in operation.
    for (const s of sites) {
      const zone = zoneOf(s.timezone);
      const yesterday = zone.midnight(addDays(zone.dateOf(Date.now()), -1));
      seed.push(siteDayLine(s.id, yesterday, { period: 'flat', masterWh: 0, tenantWh: 0, commonWh: 0, lossWh: 0, lossAllocatedWh: 0, lossAbnormalWh: 0 }, s.loss.normalRate));
    }
    for (let i = 0; i < seed.length; i += 50_000) await env.influx.write(seed.slice(i, i + 50_000));
    const childVars = { SCALE_DB: env.influx.db, SCALE_PREFIX: env.prefix, SCALE_METERS: String(n) };
    const workers = Array.from({ length: WORKERS }, () => start('workers', childVars));
    children.push(...workers);
    const api = start('api', childVars);
    children.push(api);
    const [, apiInfo] = await Promise.all([Promise.all(workers.map((w) => message<{ ready: true }>(w))), message<{ port: number; tokens: [string, string][] }>(api)]);
    // Start-up, measured apart: every site's first rollup (each meter from its first reading,
    // one statement a meter) at the workers' start tick. The soak measures the steady state
    // after it, as a property runs for months after its first start.
    const started = Date.now();
    for (;;) {
      const held = await Promise.all(sites.map((s) => env.redis.hlen(redisKeys(env.prefix, s.id).rollupState)));
      if (held.every((h, i) => h >= sites[i].meters.length)) break;
      if (Date.now() - started > 600_000) throw new Error(`first rollups not done after 600 s: ${held.reduce((a, b) => a + b, 0)} of ${n} meters`);
      await new Promise((r) => setTimeout(r, 500));
    }
    const startupS = (Date.now() - started) / 1000;
    err(`N=${n}: ${sites.length} sites, workers pid ${workers.map((w) => w.pid).join(', ')}, api pid ${api.pid}; first rollups ${startupS.toFixed(1)} s; writing for ${SECONDS} s`);

    const markers: Marker[] = [];
    const outstanding = new Set<string>();
    const live = (site: string) => redisKeys(env.prefix, site).live;
    const balanceOf = (text: string | null) => (text ? (JSON.parse(text) as { figures: { balanceFen: number } }).figures.balanceFen : undefined);
    let writing = true;
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const open = markers.filter((m) => m.seen === undefined);
        if (open.length) {
          const got = await env.redis.pipeline(open.map((m) => ['hget', live(m.site), m.account])).exec();
          const now = Date.now();
          open.forEach((m, i) => {
            const fen = balanceOf((got?.[i]?.[1] as string | null) ?? null);
            if (fen !== undefined && fen <= m.base - DROP_FEN) {
              m.seen = now;
              outstanding.delete(`${m.site}/${m.account}`);
            }
          });
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    })();

    // A light tenant load on the API: 20 requests/s for the live figures of 200 accounts.
    const apiMs: number[] = [];
    let apiErrors = 0;
    const apiLoad = (async () => {
      for (let i = 0; writing; i++) {
        const [a, token] = apiInfo.tokens[i % apiInfo.tokens.length];
        const t = performance.now();
        const res = await fetch(`http://127.0.0.1:${apiInfo.port}/api/v1/accounts/${a}/live`, { headers: { authorization: `Bearer ${token}` } }).catch(() => undefined);
        if (!res?.ok) apiErrors++;
        await res?.arrayBuffer();
        apiMs.push(performance.now() - t);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    // Measured window: from the warm-up's end to the writer's end.
    // Each workers process apart (workers1, workers2, ...): 'workers' below is their CPU summed and the largest peak RSS.
    const workerKeys = workers.map((_, i) => `workers${i + 1}`);
    const pids: Record<string, number> = { ...Object.fromEntries(workers.map((w, i) => [workerKeys[i], w.pid!])), api: api.pid!, influxd, redis: redisPid, 'bench (writer)': process.pid };
    let cpu0: Record<string, number> = {};
    let points0 = 0;
    let w0 = 0;
    const samples: Sample[] = [];
    const peak: Record<string, number> = {};
    let redisUsedPeak = 0;
    let redisOursPeak = 0;
    const sample = async () => {
      for (const [k, pid] of Object.entries(pids)) peak[k] = Math.max(peak[k] ?? 0, memory(pid).peak);
      const used = Number((await redisInfo(env.redis, 'memory')).used_memory);
      redisUsedPeak = Math.max(redisUsedPeak, used);
      const keys = await scanKeys(env.redis, `${env.prefix}*`);
      let ours = 0;
      for (let i = 0; i < keys.length; i += 500) {
        const got = await env.redis.pipeline(keys.slice(i, i + 500).map((k) => ['memory', 'usage', k])).exec();
        for (const [, bytes] of got ?? []) ours += Number(bytes ?? 0);
      }
      redisOursPeak = Math.max(redisOursPeak, ours);
      samples.push({ t: Date.now(), workersRss: workers.reduce((a, w) => a + memory(w.pid!).rss, 0), redisOurs: ours });
    };
    let settling: Promise<SettleReport> | undefined;
    let readings = 0;
    const unmastered = new Map<string, number>();
    const begin = Date.now();
    for (let s = 0; Date.now() - begin < SECONDS * 1000; s++) {
      const t = Date.now();
      if (s === WARM_S) {
        cpu0 = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)]));
        points0 = await influxPointsWritten(INFLUX_URL);
        w0 = Date.now();
      }
      if (s >= WARM_S && s % 2 === 0) await sample();
      if (settleDb && s === WARM_S + 5) {
        const c = start('settle', { SCALE_DB: settleDb.db, SCALE_PREFIX: settleDb.prefix });
        children.push(c);
        settling = message<SettleReport>(c);
      }
      // The marker: one meter of this second's slot, the sites in turn, one open marker per account.
      const site = sites[s % sites.length];
      const tenants = site.meters.filter((m, i) => m.role === 'tenant' && i % 60 === s % 60);
      const mark = s >= WARM_S ? tenants.find((m) => !outstanding.has(`${site.id}/${m.account}`)) : undefined;
      if (mark) {
        const base = balanceOf(await env.redis.hget(live(site.id), mark.account!));
        if (base !== undefined) {
          markers.push({ site: site.id, account: mark.account!, t, base });
          outstanding.add(`${site.id}/${mark.account}`);
        }
      }
      const lines: string[] = [];
      const written = new Map<string, string[]>();
      for (const st of sites) {
        const ids: string[] = [];
        written.set(st.id, ids);
        st.meters.forEach((m, i) => {
          if (m.role === 'master' || i % 60 !== s % 60) return;
          const d = BASE_WH + (st === site && m === mark ? MARK_WH : 0);
          reg.set(`${st.id}/${m.id}`, reg.get(`${st.id}/${m.id}`)! + d);
          unmastered.set(st.id, (unmastered.get(st.id) ?? 0) + d);
          lines.push(sampleLine(st.id, { meter: m.id, time: t, wh: reg.get(`${st.id}/${m.id}`)! }));
          ids.push(m.id);
        });
        // The master once a minute too (meter 0, slot 0): what the others used since its last reading plus 2 % loss.
        if (s % 60 === 0) {
          const key = `${st.id}/${st.meters[0].id}`;
          reg.set(key, reg.get(key)! + Math.round((unmastered.get(st.id) ?? 0) * 1.02));
          unmastered.set(st.id, 0);
          lines.push(sampleLine(st.id, { meter: st.meters[0].id, time: t, wh: reg.get(key)! }));
          ids.push(st.meters[0].id);
        }
      }
      await env.influx.write(lines);
      readings += s >= WARM_S ? lines.length : 0;
      // As the collector does after each acknowledged batch: the readings to each site's log
      // (lib/readings-log.ts), then the site and the meters written on the new-data channel.
      await readingsLog.written(sites[0].id, lines.join('\n'));
      await Promise.all(sites.map((st) => announceNewData(env.redis, env.prefix, st.id, 'readings', written.get(st.id))));
      await new Promise((r) => setTimeout(r, Math.max(0, t + 1000 - Date.now())));
    }
    writing = false;
    const window = (Date.now() - w0) / 1000;
    const cores = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, (cpuSeconds(pid) - cpu0[k]) / window]));
    cores.workers = workerKeys.reduce((a, k) => a + cores[k], 0);
    const pointsPerS = ((await influxPointsWritten(INFLUX_URL)) - points0) / window;
    await sample();
    await apiLoad;
    // Let the last markers land (freshness beyond this counts as lost).
    for (let i = 0; i < 60 && markers.some((m) => m.seen === undefined); i++) await new Promise((r) => setTimeout(r, 250));
    polling = false;
    await poller;
    const settle = settling ? await settling : undefined;
    // Where a round's time goes: the last 100 jobs each queue keeps (removeOnComplete), their wait and run.
    const queues = openQueues(env.redis, env.prefix);
    const jobTimes: Record<string, { wait: number; run: number; jobs: number }> = {};
    for (const name of ['rollup', 'balance'] as const) {
      const jobs = (await queues[name].getCompleted(0, 99)).filter((j) => !j.name.endsWith('-tick') && j.processedOn && j.finishedOn);
      const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
      jobTimes[name] = { wait: med(jobs.map((j) => j.processedOn! - j.timestamp - (j.opts.delay ?? 0))), run: med(jobs.map((j) => j.finishedOn! - j.processedOn!)), jobs: jobs.length };
    }
    await closeQueues(queues);
    for (const [k, pid] of Object.entries(pids)) peak[k] = Math.max(peak[k] ?? 0, memory(pid).peak);
    peak.workers = Math.max(...workerKeys.map((k) => peak[k]));

    const fresh = markers.filter((m) => m.seen !== undefined).map((m) => m.seen! - m.t);
    const missed = markers.length - fresh.length;
    // A lost marker counts as slower than any seen one.
    const all = [...fresh.sort((a, b) => a - b), ...Array<number>(missed).fill(Infinity)];
    const q = (xs: number[], p: number) => (xs.length ? xs[Math.min(xs.length - 1, Math.ceil(p * xs.length) - 1)] : NaN);
    const quarter = (k: number, f: (x: Sample) => number) => {
      const part = samples.slice(Math.floor((k * samples.length) / 4), Math.floor(((k + 1) * samples.length) / 4));
      return part.length ? part.reduce((a, x) => a + f(x), 0) / part.length : NaN;
    };
    const growth = { workers: quarter(3, (x) => x.workersRss) / quarter(1, (x) => x.workersRss) - 1, redis: quarter(3, (x) => x.redisOurs) / quarter(1, (x) => x.redisOurs) - 1 };
    const apiSorted = [...apiMs].sort((a, b) => a - b);
    err(`N=${n}: markers ${markers.length}, missed ${missed}, freshness ms ${fresh.slice(0, 5).map((x) => x.toFixed(0)).join(' ')} .. ${fresh.slice(-5).map((x) => x.toFixed(0)).join(' ')}`);
    return {
      n,
      sites: sites.length,
      startupS,
      p50: q(all, 0.5),
      p95: q(all, 0.95),
      max: all.length ? all[all.length - 1] : NaN,
      markers: markers.length,
      missed,
      ...(settle ? { settle } : {}),
      jobTimes,
      cores,
      peak,
      redisUsedPeak,
      redisOursPeak,
      pointsPerS,
      readingsPerS: readings / window,
      apiP99: q(apiSorted, 0.99),
      apiRequests: apiMs.length,
      apiErrors,
      flat: growth.workers <= 0.15 && growth.redis <= 0.15,
      growth,
      load: [load0, loadavg()[0]],
    };
  } finally {
    for (const c of children) await stop(c).catch(() => undefined);
    await env.cleanup();
  }
}

async function main(): Promise<void> {
  const influxd = await influxPid(INFLUX_URL);
  const probe = createRedis(REDIS_URL, { maxRetriesPerRequest: 3 });
  const redisPid = Number((await redisInfo(probe, 'server')).process_id);
  probe.disconnect();
  err(`influxd pid ${influxd} (${processName(influxd)}), redis-server pid ${redisPid} (${processName(redisPid)})`);
  const load0 = loadavg();
  let settleEnv: TestEnv | undefined;
  let idle: SettleReport | undefined;
  const results: SoakResult[] = [];
  try {
    if (SETTLE) {
      settleEnv = await testEnv('scalesettle');
      err(`settlement site: writing, rolling up and settling ${SETTLE_DAY} of ${PER_SITE} meters at 1-minute readings ...`);
      const c = start('settle', { SCALE_DB: settleEnv.influx.db, SCALE_PREFIX: settleEnv.prefix, SCALE_SEED: '1' });
      idle = await message<SettleReport>(c);
      err(`settlement site: ${idle.points} points written in ${(idle.writeMs! / 1000).toFixed(1)} s, rolled up in ${(idle.rollupMs! / 1000).toFixed(1)} s, settled (${idle.outcome}, ${idle.fromBuckets} meters from buckets) in ${(idle.settleMs / 1000).toFixed(2)} s`);
    }
    for (const n of NS) {
      const r = await soak(n, influxd, redisPid, settleEnv ? { db: settleEnv.influx.db, prefix: settleEnv.prefix } : undefined);
      results.push(r);
      err(`N=${n}: freshness p95 ${(r.p95 / 1000).toFixed(1)} s, workers ${r.cores.workers.toFixed(2)} cores, influxd ${r.cores.influxd.toFixed(2)} cores, ${r.pointsPerS.toFixed(0)} points/s, kept up: ${r.p95 <= GOAL_MS && r.flat ? 'yes' : 'no'}`);
    }
  } finally {
    await settleEnv?.cleanup();
  }
  const mib = (b: number) => `${(b / 1024 / 1024).toFixed(0)} MiB`;
  const s = (ms: number) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(1)} s` : 'lost');
  const kept = results.filter((r) => r.p95 <= GOAL_MS && r.flat && r.missed === 0);
  const largest = kept.length ? Math.max(...kept.map((r) => r.n)) : 0;
  const col = (f: (r: SoakResult) => string) => results.map(f).join(' | ');
  const row = (name: string, f: (r: SoakResult) => string) => `| ${name} | ${col(f)} |`;
  process.stdout.write(
    [
      '## Scale soak: N meters at 1-minute readings, real workers and API (issue 15)',
      '',
      `N meters over sites of ${PER_SITE} tenant meters (plus a master and a common meter in an area pool each), every meter read once a minute and written in real time (each second the 1/60 of every site's meters whose minute it is, announced per site on the new-data channel as the collector does), for ${SECONDS} s per N (${WARM_S} s warm-up not measured). The real workers (every queue, default schedule: rollup on announced data gathered for ${DEFAULTS.rollupCoalesceMs / 1000} s, balance after each rollup with readings) in ${WORKERS === 1 ? 'one child process' : `${WORKERS} child processes on the same queues (compose.yaml's default replicas; SCALE_WORKERS sets the number)`} with Node flags \`${process.env.SCALE_WORKERS_NODE_FLAGS ?? COMPOSE_WORKERS_NODE_OPTIONS}\` (compose.yaml's NODE_OPTIONS for them), the API (serving the first site, 20 tenant requests/s for the live figures of 200 accounts) in another, on the shared InfluxDB and Redis on this machine. Freshness: from a marker sample (2 kWh on one meter a second) to its account's live balance (provisional settlement incl. pool and loss shares, as the balance job stores it for the API) showing it; a marker not seen within 15 s after the writer stopped counts as lost. CPU in cores (CPU seconds / wall seconds of the measured window) from /proc/<pid>/stat; peak RSS is VmHWM. Settlement: one site-day of ${PER_SITE} meters at 1-minute readings (1.44 M raw points) settled from the rollup's buckets (the nightly path, settleSiteDay) by a child process while the soak runs${idle ? `; alone before the soaks: ${(idle.settleMs / 1000).toFixed(2)} s (${idle.fromBuckets} of ${PER_SITE + 2} meters from buckets; writing the day took ${(idle.writeMs! / 1000).toFixed(1)} s, its rollup ${(idle.rollupMs! / 1000).toFixed(1)} s)` : ''}.`,
      `Load average at the start ${load0.map((x) => x.toFixed(2)).join(' / ')} (1/5/15 min) on ${cpus().length} cores; per N below.`,
      `Reproduce: \`set -a; . .run/services.env; set +a; SCALE_N=${NS.join(',')} SCALE_SECONDS=${SECONDS} npx tsx bench/scale.bench.ts\``,
      '',
      `| N meters | ${col((r) => r.n.toLocaleString('en'))} |`,
      `|---|${results.map(() => '---|').join('')}`,
      row('sites', (r) => String(r.sites)),
      row("start-up: every site's first rollup (each meter from its first reading), before the measured run", (r) => `${r.startupS.toFixed(1)} s`),
      row('freshness p50 / p95 / max (goal p95 <= 10 s)', (r) => `${s(r.p50)} / ${s(r.p95)} / ${s(r.max)}`),
      row('markers (lost)', (r) => `${r.markers} (${r.missed})`),
      row(`rollup job (up to ${DEFAULTS.metersPerBatch} meters a batch: one a site here): median wait in queue / run`, (r) => `${r.jobTimes.rollup.wait.toFixed(0)} ms / ${r.jobTimes.rollup.run.toFixed(0)} ms`),
      row('balance job (a site of 1,000 accounts): median wait in queue / run', (r) => `${r.jobTimes.balance.wait.toFixed(0)} ms / ${r.jobTimes.balance.run.toFixed(0)} ms`),
      row('settlement of a site-day during the soak', (r) => (r.settle ? `${(r.settle.settleMs / 1000).toFixed(2)} s` : '-')),
      row('nightly settlement of all sites at that pace (one after the other)', (r) => (r.settle ? `${((r.settle.settleMs * r.sites) / 1000).toFixed(0)} s` : '-')),
      row('readings written /s (the writer)', (r) => r.readingsPerS.toFixed(0)),
      row('InfluxDB points/s written (all writers)', (r) => r.pointsPerS.toFixed(0)),
      row(`CPU workers (${WORKERS} processes, summed) / InfluxDB / Redis / API / writer (cores)`, (r) => ['workers', 'influxd', 'redis', 'api', 'bench (writer)'].map((k) => r.cores[k].toFixed(2)).join(' / ')),
      row('CPU of each workers process (cores)', (r) => Object.keys(r.cores).filter((k) => /^workers\d+$/.test(k)).map((k) => r.cores[k].toFixed(2)).join(' / ')),
      row('peak RSS workers (largest process) / API / writer', (r) => ['workers', 'api', 'bench (writer)'].map((k) => mib(r.peak[k])).join(' / ')),
      row('peak RSS InfluxDB / Redis (servers, since their start)', (r) => `${mib(r.peak.influxd)} / ${mib(r.peak.redis)}`),
      row('Redis used_memory peak: whole server (shared) / the run\'s own keys', (r) => `${mib(r.redisUsedPeak)} / ${mib(r.redisOursPeak)}`),
      row('memory growth, last vs second quarter: workers RSS / the run\'s Redis keys', (r) => `${(r.growth.workers * 100).toFixed(0)} % / ${(r.growth.redis * 100).toFixed(0)} %`),
      row('API live route p99 at 20 req/s (errors)', (r) => `${r.apiP99.toFixed(0)} ms (${r.apiErrors})`),
      row('load average 1 min, start -> end', (r) => `${r.load[0].toFixed(2)} -> ${r.load[1].toFixed(2)}`),
      row('kept up (p95 <= 10 s, none lost, memory flat)', (r) => (r.p95 <= GOAL_MS && r.flat && r.missed === 0 ? 'yes' : 'no')),
      '',
      `Largest N kept up with in this run: ${largest ? largest.toLocaleString('en') : 'none'} meters.`,
      '',
      'Wider runs by hand (N = 100,000, larger rollup batches, more concurrency), with their commands and load: docs/scaling.md, "The scale soak".',
      '',
    ].join('\n'),
  );
}
