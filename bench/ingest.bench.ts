import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InfluxV1 } from '../influx/client.ts';
import { Forwarder, Spool, spoolSink } from '../collector/index.ts';
import type { Sample } from '../influx/sample.ts';

/**
 * Ingest (issue 2 benchmarks): samples/s from the collector's sink (line built with
 * Point, appended to the spool with fsync, forwarded in batches and acknowledged)
 * into InfluxDB, against a minimal raw writer in the same run: template-string lines
 * POSTed in 5000-line batches, one request in flight, no durability. Same samples, same
 * server, a fresh database each. Goal (issue 15): ratio >= 0.9.
 * Reproduce: `set -a; . .run/services.env; set +a; npx tsx bench/ingest.bench.ts`
 * (SUBMETER_BENCH_SAMPLES to change the count).
 */
const N = Number(process.env.SUBMETER_BENCH_SAMPLES ?? 200_000);
const METERS = 100;
const BATCH = 5000;
const REPEATS = Number(process.env.SUBMETER_BENCH_REPEATS ?? 3);
const url = process.env.SUBMETER_INFLUX_URL ?? 'http://127.0.0.1:8096';
const SITE = 'bench';
const T0 = Date.UTC(2026, 9, 1);

const samples: Sample[] = Array.from({ length: N }, (_, i) => ({
  meter: `T${i % METERS}`,
  time: T0 + Math.floor(i / METERS) * 60_000,
  wh: 1_000_000 + i,
  w: 1234.5 + (i % 7),
  v: 230.1,
  a: 5.37,
  pf: 0.98,
  hz: 50,
}));

async function fresh(tag: string): Promise<InfluxV1> {
  const influx = new InfluxV1({ url, db: `bench_ingest_${tag}_${randomBytes(3).toString('hex')}`, timeoutMs: 60_000 });
  await influx.createDatabase();
  return influx;
}

async function count(influx: InfluxV1): Promise<number> {
  const [r] = await influx.query('SELECT count(wh) AS n FROM reading');
  return Number(r?.n ?? 0);
}

/** The baseline: the least a writer can do. */
async function raw(influx: InfluxV1): Promise<number> {
  const t = performance.now();
  for (let i = 0; i < N; i += BATCH) {
    let body = '';
    for (const s of samples.slice(i, i + BATCH)) body += `reading,meter=${s.meter},site=${SITE} a=${s.a},hz=${s.hz},pf=${s.pf},v=${s.v},w=${s.w},wh=${s.wh}i ${s.time}\n`;
    const res = await fetch(`${influx.url}/write?db=${influx.db}&precision=ms`, { method: 'POST', body });
    if (res.status !== 204) throw new Error(`raw write: ${res.status} ${await res.text()}`);
  }
  return performance.now() - t;
}

/**
 * Ours: the collector's sink path. Pollers append one sample at a time without waiting
 * for each other, so appends are issued per sample and group-committed by the spool;
 * a poll round of 1000 meters is awaited as a unit, as pollers would be.
 */
async function ours(influx: InfluxV1, fsync: boolean): Promise<number> {
  const dir = join(fileURLToPath(new URL('../.run/tmp/', import.meta.url)), `bench-spool-${randomBytes(4).toString('hex')}`);
  const spool = await Spool.open(dir, { fsync });
  const fwd = new Forwarder(spool, influx, { batchLines: BATCH, idleMs: 5 });
  const sink = spoolSink(spool, SITE);
  const t = performance.now();
  fwd.start();
  for (let i = 0; i < N; i += 1000) {
    await Promise.all(samples.slice(i, i + 1000).map((s) => sink.add(s)));
  }
  if (!(await fwd.drained(600_000))) throw new Error('forwarder did not drain');
  const ms = performance.now() - t;
  await fwd.stop();
  await spool.close();
  rmSync(dir, { recursive: true, force: true });
  return ms;
}

const load0 = loadavg()[0];
const results: { name: string; ms: number }[] = [];
const dbs: InfluxV1[] = [];
try {
  // Alternate, REPEATS times each, and keep the best of each: the server and the 2 cores are shared.
  for (let round = 0; round < REPEATS; round++) {
    for (const [name, run] of [
      ['raw line-protocol writer (baseline)', raw],
      ['collector sink -> spool (fsync) -> InfluxDB', (db: InfluxV1) => ours(db, true)],
    ] as const) {
      const db = await fresh(round + name.slice(0, 3));
      dbs.push(db);
      const ms = await run(db);
      const n = await count(db);
      if (n !== N) throw new Error(`${name}: InfluxDB holds ${n} of ${N} samples`);
      process.stderr.write(`[ingest] ${name}: ${ms.toFixed(0)} ms\n`);
      results.push({ name, ms });
    }
  }
} finally {
  for (const db of dbs) await db.dropDatabase().catch(() => {});
}

const best = (name: string) => Math.min(...results.filter((r) => r.name === name).map((r) => r.ms));
const rawMs = best('raw line-protocol writer (baseline)');
const oursMs = best('collector sink -> spool (fsync) -> InfluxDB');
const rate = (ms: number) => Math.round((N / ms) * 1000).toLocaleString('en-US');
const ratio = rawMs / oursMs;

process.stdout.write(`## Ingest: collector sink to InfluxDB

${N.toLocaleString('en-US')} samples (${METERS} meters, 6 fields each) into InfluxDB at ${url}, each writer on a fresh database,
best of ${REPEATS} alternating runs. Every sample is counted back from InfluxDB after each run.
InfluxDB runs on the same 2 cores, so the writer's own CPU competes with the server's. Load average ${load0.toFixed(2)} -> ${loadavg()[0].toFixed(2)}.
Reproduce: \`set -a; . .run/services.env; set +a; npx tsx bench/ingest.bench.ts\`

| writer | samples/s | ratio to raw |
|---|---:|---:|
| raw line-protocol writer (5000-line POSTs, no durability) | ${rate(rawMs)} | 1.00 |
| collector sink: line -> spool (group commit, fsync) -> forwarder -> InfluxDB | ${rate(oursMs)} | **${ratio.toFixed(2)}** |

Goal: ratio >= 0.9. ${ratio >= 0.9 ? 'Met.' : 'Not met in this run.'}
`);
