import { fork } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { createRequire } from 'node:module';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';

/**
 * The API under load (issue 5): autocannon against the bill and live-status routes, and
 * a bare Express route returning a small JSON in the same run as the baseline. Servers
 * run in a child process (one core), autocannon in this one (the other core), so the load
 * generator does not steal the server's event loop. The data are the API tests' fixture
 * in a fresh InfluxDB database and Redis prefix (real servers), token auth included.
 *
 * Two runs per route: as fast as it goes (throughput, 10 connections) and at a fixed
 * 500 req/s (p99 with coordinated-omission correction). Goals: p99 <= 20 ms at 500 req/s
 * and throughput >= 0.5 of bare Express.
 * Reproduce: `set -a; . .run/services.env; set +a; npx tsx bench/api.bench.ts`
 */

const SECONDS = Number(process.env.SUBMETER_BENCH_SECONDS ?? 5);
const RATE = 500;

if (process.env.SUBMETER_BENCH_ROLE === 'server') {
  process.env.SUBMETER_LOG_LEVEL ??= 'warn';
  const { buildApp } = await import('../api/app.ts');
  const { SiteRef } = await import('../api/site-ref.ts');
  const { RedisTokenStore } = await import('../api/auth/token-store.ts');
  const { createFixture, NOW } = await import('../api/testing/fixture.ts');
  const fx = await createFixture('bench');
  // The default statement cache (1 s) as in production; the clock frozen at the fixture's now.
  const app = buildApp({ site: new SiteRef(fx.site), influx: fx.influx, redis: fx.redis, keyPrefix: fx.prefix, workersKeyPrefix: fx.workersPrefix, now: () => NOW });
  const bare = express();
  bare.get('/bare', (_req, res) => {
    res.json({ ok: true, balance: '412.35' });
  });
  const listen = (a: express.Express) => new Promise<Server>((resolve) => {
    const s = a.listen(0, '127.0.0.1', () => resolve(s));
  });
  // The same app with the cache off: what each request costs InfluxDB (many accounts polling).
  const uncached = buildApp({ site: new SiteRef(fx.site), influx: fx.influx, redis: fx.redis, keyPrefix: fx.prefix, workersKeyPrefix: fx.workersPrefix, now: () => NOW, cacheMs: 0 });
  const [api, base, nocache] = await Promise.all([listen(app), listen(bare), listen(uncached)]);
  const token = (await new RedisTokenStore(fx.redis, fx.prefix).create({ site: fx.site.id, role: 'tenant', account: 'A101' })).token;
  process.send!({ api: (api.address() as AddressInfo).port, bare: (base.address() as AddressInfo).port, nocache: (nocache.address() as AddressInfo).port, token });
  process.on('message', async () => {
    for (const srv of [api, base, nocache]) {
      srv.close();
      srv.closeAllConnections();
    }
    await fx.cleanup();
    process.exit(0);
  });
} else {
  interface Result {
    requests: { average: number; total: number };
    latency: { p50: number; p99: number; max: number };
    non2xx: number;
    errors: number;
    timeouts: number;
  }
  const autocannon = createRequire(import.meta.url)('autocannon') as (opts: object) => Promise<Result>;
  const child = fork(import.meta.filename, [], { execArgv: ['--import', 'tsx'], env: { ...process.env, SUBMETER_BENCH_ROLE: 'server' }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const ports = await new Promise<{ api: number; bare: number; nocache: number; token: string }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { api: number; bare: number; nocache: number; token: string }));
    child.once('exit', (code) => reject(new Error(`bench server exited (${code})`)));
  });
  const headers = { authorization: `Bearer ${ports.token}` };
  const targets = [
    { name: 'bare Express (baseline)', url: `http://127.0.0.1:${ports.bare}/bare`, headers: {} },
    { name: 'GET bill 2026-10 (JSON)', url: `http://127.0.0.1:${ports.api}/api/v1/accounts/A101/bills/2026-10`, headers },
    { name: 'GET live status', url: `http://127.0.0.1:${ports.api}/api/v1/accounts/A101/live`, headers },
    { name: 'GET bill, cache off', url: `http://127.0.0.1:${ports.nocache}/api/v1/accounts/A101/bills/2026-10`, headers },
    { name: 'GET live status, cache off', url: `http://127.0.0.1:${ports.nocache}/api/v1/accounts/A101/live`, headers },
  ];
  const load0 = loadavg()[0];
  const run = async (t: (typeof targets)[number], rate?: number) => {
    const r = await autocannon({ url: t.url, headers: t.headers, connections: 10, duration: SECONDS, ...(rate ? { overallRate: rate } : {}) });
    if (r.non2xx || r.errors || r.timeouts) process.stderr.write(`[bench] ${t.name}: ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts\n`);
    return r;
  };
  const rows: string[] = [];
  let bareRps = 0;
  let bareP99 = 0;
  const verdicts: boolean[] = [];
  for (const t of targets) {
    await autocannon({ url: t.url, headers: t.headers, connections: 4, duration: 1 }); // warm-up (JIT, caches, keep-alive)
    const max = await run(t);
    const fixed = await run(t, RATE);
    if (!bareRps) {
      bareRps = max.requests.average;
      bareP99 = fixed.latency.p99;
    }
    const ratio = max.requests.average / bareRps;
    const ok = t.name.startsWith('bare') || (fixed.latency.p99 <= 20 && ratio >= 0.5 && fixed.non2xx === 0);
    if (!t.name.startsWith('bare')) verdicts.push(ok);
    process.stderr.write(`[bench] ${t.name}: ${max.requests.average.toFixed(0)} req/s max; at ${RATE}/s p50 ${fixed.latency.p50} ms p99 ${fixed.latency.p99} ms (${fixed.requests.average.toFixed(0)} req/s achieved)\n`);
    rows.push(`| ${t.name} | ${max.requests.average.toFixed(0)} | ${ratio.toFixed(2)} | ${fixed.requests.average.toFixed(0)} | ${fixed.latency.p50} | ${fixed.latency.p99} | ${t.name.startsWith('bare') ? '' : ok ? 'yes' : 'no'} |`);
  }
  child.send('stop');
  await new Promise((resolve) => child.once('exit', resolve));
  process.stdout.write(
    [
      '## API: bill and live-status routes under autocannon, beside bare Express',
      '',
      `Server in one process, autocannon (10 connections, ${SECONDS} s per run, after a 1 s warm-up) in another; tenant bearer token checked against Redis on every request; figures from InfluxDB through the API's 1 s read cache (the same-account polling case), and again with the cache off (every request queries InfluxDB: the many-accounts case). Goals: p99 <= 20 ms at ${RATE} req/s and max throughput >= 0.5 of bare Express. Load average ${load0.toFixed(1)} -> ${loadavg()[0].toFixed(1)} on ${cpus().length} cores during the run (other work on the machine moves every figure, the baseline's too).`,
      'Reproduce: `set -a; . .run/services.env; set +a; npx tsx bench/api.bench.ts` (SUBMETER_BENCH_SECONDS to change the run length)',
      '',
      `| route | max req/s | ratio to bare | req/s at fixed ${RATE} | p50 ms | p99 ms | meets goals |`,
      '|---|---|---|---|---|---|---|',
      ...rows,
      '',
      `${verdicts.filter(Boolean).length} of ${verdicts.length} API routes meet both goals in this run.${bareP99 > 20 ? ` Bare Express itself had p99 ${bareP99} ms at ${RATE} req/s here, so the machine's load, not the routes, sets the tail in this run; compare the p99 columns with the baseline's.` : ''}`,
      '',
    ].join('\n'),
  );
}
