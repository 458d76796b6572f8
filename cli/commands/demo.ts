import type { Command } from 'commander';

interface DemoOptions {
  readonly tenants: string;
  readonly days: string;
  readonly minutes?: string;
  readonly apiPort: string;
  readonly tcpPort: string;
  readonly seed: string;
  readonly poll: string;
  readonly db: string;
  readonly enforcement?: string;
}

/**
 * `submeter demo` (`make demo`): the whole platform on one machine, end to end.
 *
 * 1. a demo site (the example file plus ~40 tenants) served by the simulator over Modbus TCP,
 *    and over Modbus RTU + DL/T 645 on a socat PTY pair (one mixed RS485 bus);
 * 2. some days of simulated history backfilled fast into InfluxDB (the same load model the
 *    simulator serves live, so the registers continue without a jump) and a few top-ups;
 * 3. the collector polling every meter through its spool into InfluxDB;
 * 4. the workers rolling up, settling the past days, moving balances and raising alerts;
 * 5. the API, the tenant page (a one-time login link printed) and the manager page, with demo tokens;
 * 6. the bills of the backfilled days, live from the API and offline from `submeter bill`
 *    on the same readings and payments, compared.
 *
 * Everything lives in its own InfluxDB database, Redis key prefixes and working directory
 * (.run/demo/<db>), all named by `--db` and reset at start, so a demo can be run again,
 * two demos with different `--db` never share a site file, readings or spool (the demo
 * test of `make test` beside a running `make demo`), and it never touches a production
 * database. Logs go to <dir>/demo.log: the terminal is for people.
 */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run a simulated site end to end: simulator, collector, workers, API, bills')
    .option('--tenants <n>', 'tenants added to the example site', '40')
    .option('--days <n>', 'days of history to backfill before going live', '7')
    .option('--minutes <n>', 'stay live this long, then stop (default: until Ctrl-C on a terminal, 1 minute otherwise)')
    .option('--api-port <n>', 'API and tenant page port (0: any free port)', '8080')
    .option('--tcp-port <n>', 'Modbus TCP port of the simulated meters (0: any free port)', '5020')
    .option('--poll <seconds>', 'collector poll interval', '5')
    .option('--seed <n>', 'load model seed', '1')
    .option('--db <name>', 'InfluxDB database of the demo (reset at start); also names its Redis key prefixes and its directory .run/demo/<name>', 'submeter_demo')
    .option('--enforcement <mode>', "prepaid relay control: off | dry-run | on (default: the example site's dry-run)")
    .action(async (opts: DemoOptions) => {
      await runDemo(opts);
    });
}


function positiveInt(name: string, text: string, min = 1): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw Object.assign(new Error(`${name}: expected an integer >= ${min}, got '${text}'`), { exitCode: 2 });
  return n;
}

async function runDemo(opts: DemoOptions): Promise<void> {
  const { mkdirSync, rmSync, writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { createRedis, deleteMatching } = await import('../../lib/redis.ts');
  const { readEnv } = await import('../../lib/env.ts');
  const { checkDemoDb, demoDir, demoPrefixes } = await import('./demo-prefixes.ts');
  // Logs (the demo's and every part's it starts) go to a file in the demo's directory,
  // set before any logger exists: JSON lines would break the human output.
  checkDemoDb(opts.db);
  const dir = demoDir(process.cwd(), opts.db);
  mkdirSync(dir, { recursive: true });
  const logFile = join(dir, 'demo.log');
  process.env.SUBMETER_LOG_FILE = logFile;
  const { createLogger } = await import('../../lib/logger.ts');
  const { InfluxV1 } = await import('../../influx/client.ts');
  const { parseSiteYaml, zoneOf, fixed, moneyFen } = await import('../../core/index.ts');
  const { demoSiteYaml } = await import('../../sim/index.ts');
  const { startSimulator } = await import('../../sim/index.ts');
  const { dlt645Handler } = await import('../../sim/index.ts');
  const { MODEL_EPOCH } = await import('../../sim/index.ts');
  const { startCollector } = await import('../../collector/index.ts');
  const { startWorkers, recordPayment } = await import('../../workers/index.ts');
  const { startApi, createDemoTokens } = await import('../../api/index.ts');
  const { DEMO_TOPUP_YAML, startDemoTopup, demoTopup } = await import('./demo-topup.ts');
  const { DEMO_DLT645_PASSWORD, demoEnforcementYaml, demoRelayOptions, relaySummary } = await import('./demo-relay.ts');

  const tenants = positiveInt('--tenants', opts.tenants, 0);
  const days = positiveInt('--days', opts.days);
  const pollMs = positiveInt('--poll', opts.poll) * 1000;
  const seed = positiveInt('--seed', opts.seed, 0);
  const interactive = process.stdin.isTTY === true;
  const minutes = opts.minutes !== undefined ? positiveInt('--minutes', opts.minutes, 0) : interactive ? undefined : 1;

  const DB = opts.db;
  const PREFIX = demoPrefixes(DB);
  const env = readEnv();
  const log = createLogger('demo', process.env.SUBMETER_LOG_LEVEL ?? 'info');

  const stops: (() => Promise<unknown>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch((err: Error) => log.warn({ err }, 'stop failed'));
    stops.length = 0;
  };

  try {
    // --- reset the demo's own database and keys ---------------------------------------
    const influx = new InfluxV1({ url: env.SUBMETER_INFLUX_URL, db: DB, token: env.SUBMETER_INFLUX_TOKEN });
    if (!(await influx.ping())) throw new Error(`InfluxDB does not answer at ${env.SUBMETER_INFLUX_URL}: run scripts/services.sh up (make demo does)`);
    await influx.dropDatabase().catch(() => undefined);
    await influx.createDatabase();
    const redis = createRedis(env.SUBMETER_REDIS_URL, { maxRetriesPerRequest: 3, lazyConnect: true });
    await redis.connect();
    stops.push(async () => redis.quit());
    // Every demo key starts with one of its prefixes (the API's has no ':' of its own).
    for (const prefix of Object.values(PREFIX)) await deleteMatching(redis, `${prefix}*`);
    rmSync(join(dir, 'spool'), { recursive: true, force: true });
    say(`demo ${DB}: directory ${dir}, InfluxDB database ${DB}, logs ${logFile}`);

    // --- the site: TCP meters, and one RS485 bus on a PTY pair ----------------------------
    const tcpPort = await freePort(positiveInt('--tcp-port', opts.tcpPort, 0));
    const pty = await ptyPair(log);
    if (pty) stops.push(pty.close);
    const yaml = demoSiteYaml({ tenants, tcpHost: '127.0.0.1', tcpPort, ...(pty ? { serialPort: pty.collectorSide } : {}) }) + DEMO_TOPUP_YAML + demoEnforcementYaml(opts.enforcement);
    const sitePath = join(dir, 'site.yaml');
    let site = parseSiteYaml(yaml, sitePath);
    if (!pty) {
      // No socat: leave the serial meters out rather than poll a device that is not there.
      const serialIds = new Set(site.meters.filter((m) => m.connection && m.connection.protocol !== 'modbus-tcp').map((m) => m.id));
      site = { ...site, meters: site.meters.map((m) => (serialIds.has(m.id) ? { ...m, connection: undefined } : m)) };
      say('socat not found: serving the RS485 meters is skipped (they still appear in bills from the backfill)');
    }
    writeFileSync(sitePath, yaml);
    const roles = { master: 0, tenant: 0, common: 0 };
    for (const m of site.meters) roles[m.role]++;
    say(`site ${site.id}: ${site.meters.length} meters (${roles.master} master, ${roles.tenant} tenant, ${roles.common} common), ${site.accounts.length} accounts -> ${sitePath}`);

    // --- history: the same load model the simulator will serve live ----------------------
    const now = Date.now();
    const to = Math.floor(now / 60_000) * 60_000;
    const zone = zoneOf(site.timezone);
    const fromDate = zone.dateOf(to - days * 86_400_000);
    const from = zone.midnight(fromDate);
    const readingsCsv = join(dir, 'readings.csv');
    const rows = await backfill(site, influx, { from, to, seed, epoch: MODEL_EPOCH, csv: readingsCsv });
    say(`backfilled ${rows.toLocaleString('en')} readings (${fromDate} .. now, 1-minute) into InfluxDB ${DB}, also as ${readingsCsv}`);

    // A top-up for most accounts at the start of the history. A few (every 7th from the
    // 4th) are to run low during the demo so their alert fires: their top-up is worked out
    // from the history just written, with the core's own bill, so that they end it 5 CNY
    // below their threshold whatever the time of day (a fixed small top-up left them above
    // it on some runs: the Grafana "below threshold" panel then had no data).
    const paymentsCsv = join(dir, 'payments.csv');
    const payLines = ['time,account,amount,reference'];
    const lowAccounts = site.accounts.filter((_, i) => i % 7 === 3);
    const history = await historyBill(site, readingsCsv, fromDate, zone.dateOf(to));
    for (const [i, a] of site.accounts.entries()) {
      let fen = 300_000 + (i % 5) * 100_000;
      if (lowAccounts.includes(a)) {
        const threshold = a.lowBalance !== undefined ? moneyFen(a.lowBalance) : 0;
        const closing = history.get(a.id) ?? moneyFen(a.openingBalance);
        fen = threshold - 500 - closing;
        if (fen <= 0) continue; // already below its threshold without a top-up
      }
      const payment = { account: a.id, fen, reference: `demo-topup-${a.id}`, time: from + 3_600_000 };
      await recordPayment({ site, influx, redis, keyPrefix: PREFIX.workers }, payment);
      payLines.push(`${new Date(payment.time).toISOString()},${a.id},${fixed(fen, 2)},${payment.reference}`);
    }
    writeFileSync(paymentsCsv, `${payLines.join('\n')}\n`);
    say(`recorded ${payLines.length - 1} top-up payments (also as ${paymentsCsv}); ${lowAccounts.map((a) => a.id).join(', ') || 'no account'} left to run low`);

    // --- live: simulator, collector, workers, API ---------------------------------------
    const sim = await startSimulator({
      site,
      seed,
      epoch: MODEL_EPOCH,
      tcp: { host: '127.0.0.1', port: tcpPort },
      ...(pty ? { serial: { [pty.collectorSide]: pty.simSide } } : {}),
      serialProtocols: [dlt645Handler({ site, control: { password: DEMO_DLT645_PASSWORD } })],
      logger: log,
    });
    stops.push(() => sim.stop());
    // With the relay executor (`collect --relay`): the workers' relay commands go out on the collector's buses.
    const relay = await demoRelayOptions({ redisUrl: env.SUBMETER_REDIS_URL, queuePrefix: PREFIX.queues, keyPrefix: PREFIX.workers });
    // With the workers' Redis: each acknowledged batch of readings is announced, the rollup runs on it.
    const collector = await startCollector({ site, spoolDir: join(dir, 'spool'), influx, pollIntervalMs: pollMs, log, relay, reloadChannel: { redisUrl: env.SUBMETER_REDIS_URL, keyPrefix: PREFIX.workers } });
    stops.push(() => collector.stop());
    const topup = await startDemoTopup();
    stops.push(topup.stop);
    // No settlement grace: the backfill already holds every reading up to now, and with the
    // default 15 minutes a demo started in the first quarter hour after the site's local
    // midnight waited for yesterday's settlement until it gave up (its test failed every day
    // between 16:00 and 16:15 UTC for Asia/Shanghai).
    const workers = await startWorkers({ sites: [site], redisUrl: env.SUBMETER_REDIS_URL, influx, queuePrefix: PREFIX.queues, keyPrefix: PREFIX.workers, log, topupProviders: new Map([[site.id, topup.providers]]), schedule: { settlementGraceMinutes: 0 } });
    stops.push(() => workers.close());
    const api = await startApi({ siteFile: sitePath, port: positiveInt('--api-port', opts.apiPort, 0), influxDb: DB, redisUrl: env.SUBMETER_REDIS_URL, keyPrefix: PREFIX.api, workersKeyPrefix: PREFIX.workers, topupProviders: topup.providers });
    stops.push(() => api.close());
    const tokens = await createDemoTokens({ siteFile: sitePath, redisUrl: env.SUBMETER_REDIS_URL, keyPrefix: PREFIX.api });
    say(`simulator: Modbus TCP on 127.0.0.1:${tcpPort}${pty ? `, RS485 bus (Modbus RTU + DL/T 645) on ${pty.simSide} <-> ${pty.collectorSide}` : ''}`);
    say(`collector: polling every ${pollMs / 1000} s, spool ${join(dir, 'spool')}`);

    // --- wait for the workers to settle the history ---------------------------------------
    const lastDay = zone.dateOf(to); // today: not settled yet
    const get = async (path: string): Promise<any> => {
      const res = await fetch(`${api.url}${path}`, { headers: { Authorization: `Bearer ${tokens.manager}` } });
      if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
      return res.json();
    };
    const settledDays = async () => {
      const rows = await influx.query(`SELECT count("master_wh") FROM "site_day" WHERE time >= ${from}ms`).catch(() => []);
      return Number(rows[0]?.count ?? 0);
    };
    const started = Date.now();
    let settled = 0;
    const lowIds = lowAccounts.map((a) => a.id);
    process.stderr.write('waiting for the workers to settle the backfilled days ');
    while (Date.now() - started < 240_000) {
      settled = await settledDays();
      // site_day has one point per day and period; a day is settled once any period is.
      const stats = await get(`/api/v1/stats/bills?from=${fromDate}&to=${lastDay}`).catch(() => undefined);
      // ... and the live balances follow the settled charges: the low accounts show as low.
      const lowNow = await Promise.all(lowIds.map((id) => get(`/api/v1/accounts/${id}/live`).then((l) => l.status !== 'ok' && l.balance_source === 'live', () => false)));
      if (stats && Number(stats.totals?.total_amount ?? 0) > 0 && settled >= days * 3 && lowNow.every(Boolean)) break;
      process.stderr.write('.');
      await sleep(2000);
    }
    process.stderr.write('\n');

    // --- bills: live (API) and offline (core on the same readings and payments) ----------
    const stats = await get(`/api/v1/stats/bills?from=${fromDate}&to=${lastDay}`);
    say(`\nbills ${fromDate} .. ${lastDay} (exclusive), from the live pipeline (GET /api/v1/stats/bills):`);
    say(table(['account', 'own kWh', 'common kWh', 'loss kWh', 'opening', 'amount', 'payments', 'closing'], stats.accounts.slice(0, 8).map((a: any) => [a.account, a.kwh.own, a.kwh.common, a.kwh.loss, a.opening_balance, a.total_amount, a.payments, a.closing_balance])));
    if (stats.accounts.length > 8) say(`  ... and ${stats.accounts.length - 8} more accounts; totals: ${stats.totals.kwh.own} kWh own, ${stats.totals.total_amount} CNY`);
    const offline = await offlineBill(sitePath, readingsCsv, paymentsCsv, fromDate, lastDay);
    const liveTotal = String(stats.totals.total_amount);
    const offlineText = fixed(offline.accounts.reduce((s: number, a: any) => s + moneyFen(a.total_amount), 0), 2);
    say(`offline \`submeter bill\` on the same readings and payments: total ${offlineText} CNY; live ${liveTotal} CNY${offlineText === liveTotal ? ' (equal)' : ' (differs: the collector added live readings, or settlement is still running)'}`);
    say(`master meter: ${offline.master.kwh} kWh, tenants ${offline.master.tenant_kwh}, common ${offline.master.common_kwh}, loss ${offline.master.loss_kwh} (rate ${offline.master.loss_rate})`);

    const first = site.accounts[0]?.id;
    const low = site.accounts[3]?.id;
    if (first) await demoTopup({ apiUrl: api.url, account: first, tenantToken: tokens.tenants[first], sim: topup.sim, say });
    say('\nwhere to look:');
    // A phone signs in once with a login link (issue 11); the link works once, for 24 h.
    const link = first
      ? await fetch(`${api.url}/api/v1/accounts/${first}/login-links`, { method: 'POST', headers: { Authorization: `Bearer ${tokens.manager}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ minutes: 1440, label: 'demo' }) })
          .then((r) => (r.ok ? (r.json() as Promise<{ url: string }>) : undefined))
          .catch(() => undefined)
      : undefined;
    say(`  tenant page    ${link ? `${link.url}  (${first}: opens once, then the browser stays signed in)` : `${api.url}/`}`);
    say(`  manager page   ${api.url}/manage.html  (sign in with the manager token)`);
    say(`  API            ${api.url}/openapi.json`);
    say(`  manager token  ${tokens.manager}`);
    say(`  viewer token   ${tokens.viewer}`);
    if (first) say(`  tenant ${first}    ${tokens.tenants[first]}`);
    if (low) say(`  tenant ${low}    ${tokens.tenants[low]}  (small top-up: watch its balance fall and its alert fire)`);
    say(`  try            curl -H "Authorization: Bearer ${first ? tokens.tenants[first] : tokens.manager}" ${api.url}/api/v1/accounts/${first}/live`);
    say(`  InfluxDB       ${env.SUBMETER_INFLUX_URL} database ${DB}; Grafana: see docs/grafana.md (compose.yaml runs it)`);
    for (const line of relaySummary(await get('/api/v1/relay'))) say(line);
    say(`  offline bill   npx submeter bill --site ${sitePath} --readings ${readingsCsv} --payments ${paymentsCsv} --from ${fromDate} --to ${lastDay}`);
    say(`  recovery       npx submeter reconcile --site ${sitePath} --readings ${readingsCsv} --from ${fromDate} --to ${lastDay}`);
    say(`  more tokens    npx submeter token create --db ${DB} --role viewer   (the demo's site and key prefixes)`);
    say(`  backup         npx submeter backup --db ${DB} --site ${sitePath}`);
    say(`  logs           ${logFile}`);

    // --- live ---------------------------------------------------------------------------
    say(minutes === undefined ? '\nlive (Ctrl-C to stop):' : `\nlive for ${minutes} minute(s):`);
    let interrupted = false;
    const onSignal = () => {
      interrupted = true;
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const until = minutes === undefined ? Infinity : Date.now() + minutes * 60_000;
    while (!interrupted && Date.now() < until) {
      const h = collector.health();
      const reads = h.meters.reduce((s, m) => s + m.reads, 0);
      const failing = h.meters.filter((m) => m.consecutiveErrors > 0).length;
      const parts = [`${new Date().toISOString().slice(11, 19)}`, `reads ${reads}`, `failing ${failing}`, `spool ${h.spool.lines}`];
      if (low) {
        const live = await get(`/api/v1/accounts/${low}/live`).catch(() => undefined);
        if (live) parts.push(`${low}: ${live.status}, balance ${live.balance} CNY, ${live.cost_per_hour ?? '-'} CNY/h at ${live.period ?? '-'} ${live.price ?? ''}, ${live.hours_left ?? '-'} h left`);
        const alerts = await get(`/api/v1/accounts/${low}/alerts`).catch(() => undefined);
        if (alerts) parts.push(`alerts ${alerts.alerts.length}`);
      }
      say(`  ${parts.join(' | ')}`);
      const wait = Math.min(15_000, until - Date.now());
      for (let t = 0; t < wait && !interrupted; t += 250) await sleep(250);
    }
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    const drained = await collector.drained(10_000);
    say(`\nstopping: collector spool ${drained ? 'drained' : 'not yet drained (kept on disk for next time)'}`);
  } finally {
    await stopAll();
  }
  say('demo stopped; servers stay up (make services-down stops them)');
  function say(text: string) {
    process.stdout.write(`${text}\n`);
  }
}

async function freePort(wanted: number): Promise<number> {
  const { createServer } = await import('node:net');
  const tryListen = (port: number) =>
    new Promise<number | undefined>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(undefined));
      s.listen(port, '127.0.0.1', () => {
        const p = (s.address() as import('node:net').AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
  return (wanted > 0 ? await tryListen(wanted) : undefined) ?? (await tryListen(0))!;
}

async function ptyPair(log: import('pino').Logger): Promise<{ simSide: string; collectorSide: string; close: () => Promise<void> } | undefined> {
  const { spawn } = await import('node:child_process');
  const proc = spawn('socat', ['-d', '-d', 'pty,raw,echo=0', 'pty,raw,echo=0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  return new Promise((resolve) => {
    const paths: string[] = [];
    let text = '';
    const timer = setTimeout(() => {
      proc.kill();
      resolve(undefined);
    }, 5000);
    proc.once('error', () => {
      clearTimeout(timer);
      resolve(undefined);
    });
    proc.stderr.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      for (const m of text.matchAll(/PTY is (\S+)/g)) if (!paths.includes(m[1])) paths.push(m[1]);
      if (paths.length === 2) {
        clearTimeout(timer);
        log.debug({ paths }, 'pty pair');
        resolve({
          simSide: paths[0],
          collectorSide: paths[1],
          close: async () => {
            proc.kill();
          },
        });
      }
    });
  });
}

/** Writes the history to InfluxDB (reading lines, as the collector would) and to a CSV, with progress. */
async function backfill(
  site: import('../../core/index.ts').Site,
  influx: import('../../influx/client.ts').InfluxV1,
  o: { from: number; to: number; seed: number; epoch: number; csv: string },
): Promise<number> {
  const { createWriteStream } = await import('node:fs');
  const { SingleBar, Presets } = await import('cli-progress');
  const { simulateReadings } = await import('../../sim/index.ts');
  const { readingCsvLine, READINGS_CSV_HEADER } = await import('../../sim/index.ts');
  const { sampleLine } = await import('../../influx/lines.ts');
  const out = createWriteStream(o.csv);
  out.write(`${READINGS_CSV_HEADER}\n`);
  const total = Math.ceil((o.to - o.from) / 60_000) * site.meters.length;
  const bar = new SingleBar({ format: 'backfill [{bar}] {percentage}% {value}/{total} readings', stream: process.stderr }, Presets.shades_classic);
  bar.start(total, 0);
  let lines: string[] = [];
  let csv = '';
  let n = 0;
  const flush = async () => {
    if (lines.length > 0) await influx.write(lines);
    if (csv && !out.write(csv)) await new Promise<void>((r) => out.once('drain', () => r()));
    lines = [];
    csv = '';
    bar.update(n);
  };
  for (const r of simulateReadings(site, { from: o.from, to: o.to, stepMs: 60_000, seed: o.seed, epoch: o.epoch })) {
    lines.push(sampleLine(site.id, { meter: r.meter, time: r.time, wh: r.wh, w: r.w, ...(r.tariffWh ? { tariffWh: r.tariffWh } : {}) }));
    csv += `${readingCsvLine(r)}\n`;
    n++;
    if (lines.length >= 20_000) await flush();
  }
  await flush();
  bar.stop();
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  return n;
}

/** Each account's closing balance in fen over [from, to) of the history, without payments (the core's bill rules). */
async function historyBill(site: import('../../core/index.ts').Site, readingsCsv: string, from: string, to: string): Promise<Map<string, number>> {
  const { createReadStream } = await import('node:fs');
  const { ReadingsScanner, computeBillRun, moneyFen } = await import('../../core/index.ts');
  const scanner = new ReadingsScanner(site, readingsCsv);
  for await (const chunk of createReadStream(readingsCsv)) scanner.push(chunk as Buffer);
  const run = computeBillRun(site, scanner.end(), [], from, to);
  return new Map(run.accounts.map((a) => [a.account, moneyFen(a.closing_balance)]));
}

/** The offline bill (billing.md section 6) of the same readings and payments, through the CLI's own code path. */
async function offlineBill(site: string, readings: string, payments: string, from: string, to: string): Promise<any> {
  const { execFile } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const bin = fileURLToPath(new URL('../../bin/submeter.js', import.meta.url));
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [bin, 'bill', '--site', site, '--readings', readings, '--payments', payments, '--from', from, '--to', to], { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`submeter bill failed: ${stderr || err.message}`));
      else resolve(JSON.parse(stdout));
    });
  });
}

function table(head: string[], rows: unknown[][]): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const widths = head.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  return cells.map((r) => `  ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')}`).join('\n');
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
