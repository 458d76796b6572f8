import { execFile, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSiteYaml } from '../core/index.ts';
import { BusRegistry } from '../collector/bus/index.ts';
import { createInput } from '../collector/inputs/index.ts';
import { ModbusTcpPool } from '../collector/inputs/modbus-tcp/index.ts';
import { MODBUS_REGISTER_MAPS } from '../collector/inputs/modbus/maps.ts';

/**
 * Polling (issue 2 benchmarks): Modbus TCP reads/s of the collector's input against the
 * simulator, versus Debian's `mbpoll` doing the same requests in the same run: 20
 * SDM630 meters (unit ids 1..20) behind one simulator port, every meter read with the
 * map's read plan (2 requests: 0x0000+18 (phase V, A, W) and 0x0034+22, function 04), one request in
 * flight on one connection for both. mbpoll gets a repeated address list per block, so
 * its process start is spread over 500 requests. The simulator runs in its own process.
 * CPU: this process's user+sys (collector) and mbpoll's (from /usr/bin/time).
 * Reproduce: `npx tsx bench/polling.bench.ts`
 */
const REPO = fileURLToPath(new URL('../', import.meta.url));
const UNITS = 20;
const ROUNDS = Number(process.env.SUBMETER_BENCH_ROUNDS ?? 100);
const plan = MODBUS_REGISTER_MAPS.sdm630.plan;

const siteText = `site: { id: pollbench, name: Poll bench, timezone: Asia/Shanghai, currency: CNY }
meters:
${Array.from({ length: UNITS }, (_, i) => `  - { id: P${i + 1}, role: ${i === 0 ? 'master' : 'common, pool: p'}, connection: { protocol: modbus-tcp, host: 127.0.0.1, port: 5020, unit: ${i + 1}, map: sdm630, timeout_ms: 2000 } }`).join('\n')}
accounts:
  - { id: A1, tariff: t1 }
pools:
  - { id: p, method: equal }
tariffs:
  - id: t1
    versions:
      - effective_from: 2026-01-01
        prices: { flat: "1" }
        schedule:
          - periods: [{ from: "00:00", to: "24:00", period: flat }]
`;
const sitePath = join(REPO, '.run/tmp', `pollbench-${process.pid}.yaml`);
writeFileSync(sitePath, siteText);

// The simulator in its own process (not through the CLI, so no other command is loaded).
const simCode = `
  const { startSimulator } = await import(${JSON.stringify(join(REPO, 'sim/simulator.ts'))});
  const { loadSiteFile } = await import(${JSON.stringify(join(REPO, 'lib/site-file.ts'))});
  const sim = await startSimulator({ site: loadSiteFile(${JSON.stringify(sitePath)}), tcp: { port: 0 } });
  process.stdout.write(JSON.stringify({ tcp: sim.tcp }) + '\\n');
  process.on('SIGTERM', async () => { await sim.stop(); process.exit(0); });
`;
const sim = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', simCode], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, SUBMETER_LOG_LEVEL: 'warn' } });
const port = await new Promise<number>((resolve, reject) => {
  let out = '';
  sim.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    const line = out.split('\n')[0];
    if (out.includes('\n')) resolve((JSON.parse(line) as { tcp: { port: number }[] }).tcp[0].port);
  });
  sim.once('exit', (c) => reject(new Error(`simulator exited with ${c}`)));
});

async function collectorRun(): Promise<{ ms: number; cpuMs: number; requests: number }> {
  const tcp = new ModbusTcpPool();
  const buses = new BusRegistry();
  const site = parseSiteYaml(siteText, sitePath);
  const inputs = site.meters.map((m) => createInput({ ...m, connection: { ...(m.connection as Extract<NonNullable<typeof m.connection>, { protocol: 'modbus-tcp' }>), port } }, { tcp, buses }));
  await Promise.all(inputs.map((i) => i.read())); // connect and warm up
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let r = 0; r < ROUNDS; r++) await Promise.all(inputs.map((i) => i.read()));
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await tcp.close();
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000, requests: ROUNDS * UNITS * plan.length };
}

function mbpollRun(): Promise<{ ms: number; cpuMs: number; requests: number }> {
  const addresses = Array.from({ length: ROUNDS }, () => `1:${UNITS}`).join(',');
  const one = (b: (typeof plan)[number]) =>
    new Promise<{ ms: number; cpuMs: number; polled: number }>((resolve, reject) => {
      const t0 = performance.now();
      execFile('/usr/bin/time', ['-f', '%U %S', 'mbpoll', '-1', '-m', 'tcp', '-p', String(port), '-a', addresses, '-r', String(b.start), '-c', String(b.count), '-t', b.functionCode === 4 ? '3:hex' : '4:hex', '-0', '127.0.0.1'], { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
        const ms = performance.now() - t0;
        if (err) return reject(new Error(`mbpoll: ${stderr.slice(-300)}`));
        const [u, s] = stderr.trim().split('\n').at(-1)!.split(' ').map(Number);
        const polled = stdout.split('-- Polling slave').length - 1;
        resolve({ ms, cpuMs: (u + s) * 1000, polled });
      });
    });
  return (async () => {
    let ms = 0;
    let cpuMs = 0;
    let requests = 0;
    for (const b of plan) {
      const r = await one(b);
      ms += r.ms;
      cpuMs += r.cpuMs;
      requests += r.polled;
    }
    if (requests !== ROUNDS * UNITS * plan.length) throw new Error(`mbpoll polled ${requests} of ${ROUNDS * UNITS * plan.length}`);
    return { ms, cpuMs, requests };
  })();
}

const ours: { ms: number; cpuMs: number; requests: number }[] = [];
const theirs: { ms: number; cpuMs: number; requests: number }[] = [];
try {
  for (let i = 0; i < 3; i++) {
    theirs.push(await mbpollRun());
    ours.push(await collectorRun());
    process.stderr.write(`[polling] round ${i + 1}: mbpoll ${theirs.at(-1)!.ms.toFixed(0)} ms, collector ${ours.at(-1)!.ms.toFixed(0)} ms for ${ours.at(-1)!.requests} requests\n`);
  }
} finally {
  sim.kill('SIGTERM');
}

const best = (xs: typeof ours) => xs.reduce((a, b) => (b.ms < a.ms ? b : a));
const o = best(ours);
const m = best(theirs);
const rps = (x: typeof o) => Math.round((x.requests / x.ms) * 1000);
const cpuPer1000 = (x: typeof o) => ((x.cpuMs / x.requests) * 1000).toFixed(0);
process.stdout.write(`## Polling: Modbus TCP reads of the collector vs mbpoll

${UNITS} simulated SDM630 meters on one simulator port (own process), ${ROUNDS} rounds, each meter read with the map's
2-request plan: ${o.requests} requests per run, one in flight on one connection, best of 3 alternating runs.
CPU is the client's user+sys time (collector: this Node process; mbpoll: /usr/bin/time, process start included).
Reproduce: \`npx tsx bench/polling.bench.ts\`

| client | requests/s | meter reads/s | CPU ms per 1,000 requests | ratio (requests/s) |
|---|---:|---:|---:|---:|
| mbpoll 1.0 (baseline) | ${rps(m)} | ${Math.round(rps(m) / plan.length)} | ${cpuPer1000(m)} | 1.00 |
| collector ModbusTcpInput (modbus-serial, pooled connection) | ${rps(o)} | ${Math.round(rps(o) / plan.length)} | ${cpuPer1000(o)} | **${(rps(o) / rps(m)).toFixed(2)}** |
`);
