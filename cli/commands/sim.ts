import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';

interface SimCliOptions {
  site?: string;
  demo?: boolean;
  writeDemoSite?: string;
  tenants: number;
  tcp: boolean;
  tcpHost?: string;
  tcpPort?: number;
  serial?: string;
  serialMap: string[];
  lineTiming?: boolean | string;
  speed: number;
  seed: number;
  start?: string;
  epoch?: string;
  fault: string[];
  backfillCsv?: string;
  from?: string;
  to?: string;
  step: string;
}

const int = (what: string, min: number, max: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${what} must be an integer ${min}..${max}`);
  return n;
};
const collect = (v: string, prev: string[]) => [...prev, v];

/**
 * `submeter sim`: serves a site's meters over their real wire protocols from the simulated
 * load until Ctrl-C. Prints one JSON line on stdout with where it listens (the bound TCP
 * port when --tcp-port 0), logs on stderr. Lines on stdin control it at run time:
 * `fault METER SPEC` (SPEC as --fault), `clear [METER]`, `read METER`.
 */
export function registerSim(program: Command): void {
  program
    .command('sim')
    .description('simulate a site: serve its meters over Modbus TCP / RTU (and DL/T 645) until Ctrl-C')
    .option('--site <file>', 'site file (YAML)')
    .option('--demo', 'serve the generated demo site (the example plus --tenants tenants)')
    .option('--write-demo-site <file>', 'write the demo site file and exit')
    .option('--tenants <n>', 'tenants the demo site adds to the example', int('--tenants', 0, 150), 40)
    .option('--no-tcp', 'do not serve Modbus TCP meters')
    .option('--tcp-host <host>', 'serve every Modbus TCP meter on this host (default: the site file\'s)')
    .option('--tcp-port <n>', 'serve every Modbus TCP meter on this one port; 0 picks a free port', int('--tcp-port', 0, 65535))
    .option('--serial <device>', 'serve every RS485 bus of the site on this device (e.g. one end of a socat PTY pair)')
    .option('--serial-map <bus=device>', 'serve one site bus (connection.port) on a device; repeatable', collect, [])
    .option('--line-timing [turnaroundMs]', 'hold serial replies back by their RS485 wire time (+ turnaround, default 5 ms)')
    .option('--speed <x>', 'simulated seconds per real second', (v) => {
      const n = Number(v);
      if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError('--speed must be a positive number');
      return n;
    }, 1)
    .option('--seed <n>', 'load model seed', int('--seed', 0, 2 ** 31 - 1), 1)
    .option('--start <time>', 'simulated start instant, RFC 3339 (default: now)')
    .option('--epoch <time>', 'load model epoch, RFC 3339: counters start there (default 2026-01-01T00:00Z); use the same as the backfill so registers continue it')
    .option('--backfill-csv <file>', 'write simulated history [--from, --to) as a readings CSV (billing.md format) and exit')
    .option('--from <time>', 'backfill start, RFC 3339')
    .option('--to <time>', 'backfill end (exclusive), RFC 3339')
    .option('--step <duration>', 'backfill interval: 30s, 15m, 1h', '15m')
    .option('--fault <meter=spec>', 'inject a fault from the start, e.g. T101=no-answer, T103=spike:500000x2, M0=rollover; repeatable', collect, [])
    .action(async (opts: SimCliOptions) => {
      const { demoSiteYaml } = await import('../../sim/index.ts');
      if (opts.writeDemoSite) {
        const { writeFileSync } = await import('node:fs');
        writeFileSync(opts.writeDemoSite, demoSiteYaml({ tenants: opts.tenants }));
        process.stdout.write(`${opts.writeDemoSite}: demo site with ${opts.tenants} added tenants\n`);
        return;
      }
      if (!opts.site === !opts.demo) throw Object.assign(new Error('give exactly one of --site FILE or --demo'), { exitCode: 2 });
      const { parseSiteYaml } = await import('../../core/index.ts');
      const { loadSiteFile } = await import('../../lib/site-file.ts');
      const { parseFault } = await import('../../sim/index.ts');
      const { startSimulator } = await import('../../sim/index.ts');
      const site = opts.site ? loadSiteFile(opts.site) : parseSiteYaml(demoSiteYaml({ tenants: opts.tenants }), 'demo site');

      const start = instant('--start', opts.start);
      const epoch = instant('--epoch', opts.epoch);
      if (opts.backfillCsv) {
        const from = instant('--from', opts.from);
        const to = instant('--to', opts.to);
        if (from === undefined || to === undefined) throw Object.assign(new Error('--backfill-csv needs --from and --to'), { exitCode: 2 });
        const m = /^(\d+)(s|m|h)$/.exec(opts.step);
        if (!m || Number(m[1]) <= 0) throw Object.assign(new Error(`--step: expected a duration like 30s, 15m, 1h, got '${opts.step}'`), { exitCode: 2 });
        const stepMs = Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 's' | 'm' | 'h'];
        const { writeReadingsCsv } = await import('../../sim/index.ts');
        const { MODEL_EPOCH } = await import('../../sim/index.ts');
        // The live simulator's default epoch, so `sim` started later continues this history.
        const rows = await writeReadingsCsv(site, { from, to, stepMs, seed: opts.seed, epoch: epoch ?? Math.min(from, MODEL_EPOCH) }, opts.backfillCsv);
        process.stdout.write(`${opts.backfillCsv}: ${rows} readings of ${site.meters.length} meters\n`);
        return;
      }
      const faults: Record<string, ReturnType<typeof parseFault>[]> = {};
      for (const f of opts.fault) {
        const [meter, spec] = splitOnce(f, '=', '--fault');
        (faults[meter] ??= []).push(parseFault(spec));
      }
      let serial: string | Record<string, string> | undefined = opts.serial;
      if (opts.serialMap.length > 0) {
        if (serial) throw Object.assign(new Error('give --serial or --serial-map, not both'), { exitCode: 2 });
        serial = Object.fromEntries(opts.serialMap.map((m) => splitOnce(m, '=', '--serial-map')));
      }
      const lineTiming = opts.lineTiming === undefined ? false : opts.lineTiming === true ? true : { turnaroundMs: Number(opts.lineTiming) };
      const serialProtocols = await dlt645Handlers(site);

      const sim = await startSimulator({
        site,
        seed: opts.seed,
        speed: opts.speed,
        start,
        epoch,
        tcp: opts.tcp ? (opts.tcpHost !== undefined || opts.tcpPort !== undefined ? { host: opts.tcpHost, port: opts.tcpPort } : undefined) : false,
        serial,
        lineTiming,
        serialProtocols,
        faults,
      });
      process.stdout.write(`${JSON.stringify({ site: site.id, tcp: sim.tcp, serial: sim.serial, speed: opts.speed, seed: opts.seed, start: new Date(sim.now()).toISOString() })}\n`);

      // Run-time control on stdin, one command a line.
      const { createInterface } = await import('node:readline');
      const rl = createInterface({ input: process.stdin, terminal: false });
      rl.on('line', (line) => {
        const [cmd, meter, spec] = line.trim().split(/\s+/);
        try {
          if (cmd === 'fault' && meter && spec) sim.injectFault(meter, parseFault(spec));
          else if (cmd === 'clear') sim.clearFaults(meter);
          else if (cmd === 'read' && meter) process.stdout.write(`${JSON.stringify(sim.read(meter))}\n`);
          else if (cmd) process.stderr.write(`sim: unknown command '${line.trim()}' (fault METER SPEC | clear [METER] | read METER)\n`);
        } catch (err) {
          process.stderr.write(`sim: ${(err as Error).message}\n`);
        }
      });

      await new Promise<void>((resolve) => {
        const done = () => resolve();
        process.once('SIGINT', done);
        process.once('SIGTERM', done);
      });
      rl.close();
      await sim.stop();
    });
}

function instant(what: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/.test(text) || Number.isNaN(ms)) {
    throw Object.assign(new Error(`${what}: not an RFC 3339 time with offset: ${text}`), { exitCode: 2 });
  }
  return ms;
}

function splitOnce(text: string, sep: string, what: string): [string, string] {
  const i = text.indexOf(sep);
  if (i <= 0 || i === text.length - 1) throw Object.assign(new Error(`${what}: expected A${sep}B, got '${text}'`), { exitCode: 2 });
  return [text.slice(0, i), text.slice(i + 1)];
}

/** The DL/T 645 meters' serial handler (sim/dlt645/), loaded only for sites that have such meters. */
async function dlt645Handlers(site: import('../../core/index.ts').Site): Promise<import('../../sim/index.ts').SerialFrameHandler[]> {
  if (!site.meters.some((m) => m.connection?.protocol === 'dlt645')) return [];
  const { dlt645Handler } = await import('../../sim/index.ts');
  return [dlt645Handler({ site })];
}
