import { availableParallelism, loadavg } from 'node:os';
import { parseSiteYaml } from '../core/index.ts';
import type { Site } from '../core/index.ts';
import { BusRegistry, SerialPortLink, bitsPerChar } from '../collector/bus/index.ts';
import type { SerialLink, SerialSettings } from '../collector/bus/index.ts';
import { createInput } from '../collector/inputs/index.ts';
import { DI, decodeFrame, frameCheck, readRequest } from '../collector/inputs/dlt645/codec.ts';
import { startSimulator } from '../sim/simulator.ts';
import { dlt645Handler } from '../sim/dlt645/handler.ts';
import { openPtyPair } from '../sim/test-support.ts';

/**
 * Bus utilisation (issue 7): how close the one bus scheduler gets to the physical limit of
 * an RS485 line. The simulator emulates line timing (sim/serial-server.ts LineTiming: a
 * reply is held back by the wire time of request + reply at the bus's baud and framing,
 * turnaround 0 here), so on a PTY the bus behaves like a real 2400 or 9600 bps line. The
 * limit is computed from the bytes that actually crossed the line (counted at the link):
 * wire time = bytes x bits per character / baud. Ratio = that wire time / elapsed time =
 * achieved transactions/s / the wire-time limit in transactions/s. Goal >= 0.9.
 *
 * Two workloads per speed, three DL/T 645 meters on the bus, all work queued at once so
 * the scheduler never waits for work:
 * - "1 DI": each transaction reads forward active total (20-byte request with 4 FE
 *   wake-up bytes, 20-byte reply);
 * - "input read": Dlt645Input.read(), the collector's real poll (energy block, power,
 *   phase voltages and currents in one transaction).
 *
 * Run: npx tsx bench/bus-utilisation.bench.ts (or SUBMETER_BENCH=bench/bus-utilisation.bench.ts scripts/bench.sh)
 */

const ADDRESSES = ['000000002001', '000000002002', '000000002003'];

/** Counts the bytes crossing the link in both directions. */
class CountingLink implements SerialLink {
  written = 0;
  received = 0;
  private readonly inner: SerialPortLink;
  constructor(path: string) {
    this.inner = new SerialPortLink(path);
  }
  get path() {
    return this.inner.path;
  }
  get settings() {
    return this.inner.settings;
  }
  configure(s: SerialSettings) {
    return this.inner.configure(s);
  }
  async write(bytes: Uint8Array) {
    this.written += bytes.length;
    return this.inner.write(bytes);
  }
  onData(listener: (chunk: Buffer) => void) {
    this.inner.onData((chunk) => {
      this.received += chunk.length;
      listener(chunk);
    });
  }
  close() {
    return this.inner.close();
  }
}

function benchSite(port: string, baud: number, parity: 'none' | 'even'): Site {
  return parseSiteYaml(`
site: { id: bench-bus, timezone: Asia/Shanghai }
meters:
  - { id: M0, role: master }
${ADDRESSES.map((a, i) => `  - { id: D${i + 1}, role: tenant, account: A1, connection: { protocol: dlt645, port: ${JSON.stringify(port)}, baud: ${baud}, parity: ${parity}, address: "${a}", timeout_ms: 3000 } }`).join('\n')}
accounts:
  - { id: A1, tariff: t }
tariffs:
  - id: t
    versions:
      - effective_from: 2026-01-01
        prices: { flat: "1" }
        schedule: [{ periods: [{ from: "00:00", to: "24:00", period: flat }] }]
`);
}

interface Row {
  readonly line: string;
  readonly workload: string;
  readonly transactions: number;
  readonly bytes: number;
  readonly elapsedMs: number;
  readonly wireMs: number;
  /** The scheduler's own measure: time the bus was held by a transaction over wall time. */
  readonly busy: number;
  /** Ratio of the slowest of the repeated runs. */
  readonly worstRatio: number;
}

const REPEATS = Number(process.env.SUBMETER_BENCH_REPEATS ?? 3);

async function measure(baud: number, parity: 'none' | 'even', txPerMeter: number, readsPerMeter: number): Promise<Row[]> {
  const pty = await openPtyPair();
  const site = benchSite(pty.a, baud, parity);
  const sim = await startSimulator({ site, serial: pty.b, tcp: false, lineTiming: { turnaroundMs: 0 }, serialProtocols: [dlt645Handler({ site })], start: Date.UTC(2026, 2, 2, 4), epoch: Date.UTC(2026, 2, 2, 3) });
  let link: CountingLink | undefined;
  const buses = new BusRegistry({ link: (p) => (link = new CountingLink(p)) });
  const settings: SerialSettings = { baudRate: baud, parity, dataBits: 8, stopBits: 1 };
  const charMs = (bitsPerChar(settings) * 1000) / baud;
  const line = `${baud} 8${parity[0].toUpperCase()}1`;
  const rows: Row[] = [];
  try {
    const bus = buses.get(pty.a);
    const oneDi = (address: string) =>
      bus.transact(address, settings, async (t) => {
        t.flush();
        await t.write(readRequest(address, DI.forwardActiveTotal));
        const reply = decodeFrame(await t.read(frameCheck, 3000));
        if (!reply.ok) throw new Error(`bad reply: ${reply.error.message}`);
      }, { guardMs: 0 });
    // Warm-up: open the port, integrate the load model, create the meters' views.
    for (const a of ADDRESSES) await oneDi(a);

    // Best of REPEATS: the box is shared, and a burst of other load only ever slows a run
    // down; the fastest run is the closest to what the scheduler itself achieves.
    const run = async (workload: string, transactions: number, go: () => Promise<unknown>) => {
      let best: Row | undefined;
      let worst = Infinity;
      for (let k = 0; k < REPEATS; k++) {
        link!.written = 0;
        link!.received = 0;
        bus.resetStats();
        const t0 = performance.now();
        await go();
        const elapsedMs = performance.now() - t0;
        const bytes = link!.written + link!.received;
        const row: Row = { line, workload, transactions, bytes, elapsedMs, wireMs: bytes * charMs, busy: bus.stats().utilisation, worstRatio: 0 };
        const ratio = row.wireMs / elapsedMs;
        worst = Math.min(worst, ratio);
        if (!best || ratio > best.wireMs / best.elapsedMs) best = row;
        console.error(`[bench] ${line} ${workload} run ${k + 1}/${REPEATS}: ${transactions} tx, ${bytes} bytes, ${elapsedMs.toFixed(0)} ms, ratio ${ratio.toFixed(3)}, bus busy ${(row.busy * 100).toFixed(1)} %, load ${loadavg()[0].toFixed(1)}`);
      }
      rows.push({ ...best!, worstRatio: worst });
    };

    await run('1 DI', txPerMeter * ADDRESSES.length, () => Promise.all(Array.from({ length: txPerMeter }, () => ADDRESSES.map(oneDi)).flat()));

    const inputs = site.meters.filter((m) => m.connection?.protocol === 'dlt645').map((m) => createInput(m, { buses, tcp: undefined as never }));
    for (const i of inputs) await i.read(); // learn which phases the meters lack
    await run('input read', readsPerMeter * inputs.length, () => Promise.all(Array.from({ length: readsPerMeter }, () => inputs.map((i) => i.read())).flat()));
  } finally {
    await buses.closeAll();
    await sim.stop();
    await pty.close();
  }
  return rows;
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const load = loadavg()[0];
  const cores = availableParallelism();
  if (load > cores) console.error(`[bench] warning: load average ${load.toFixed(1)} on ${cores} cores; per-transaction latency (and the ratio) suffers`);
  // Even parity as real DL/T 645 lines use; the PTY opens once with it, so it holds.
  rows.push(...(await measure(2400, 'even', 10, 2)));
  rows.push(...(await measure(9600, 'even', 30, 6)));
  const out: string[] = [];
  out.push('## Bus utilisation: DL/T 645 through the one bus scheduler');
  out.push('');
  out.push('Achieved transactions/s over the wire-time limit of the bytes that crossed the line, with the simulator emulating RS485 line timing (turnaround 0) on a socat PTY pair; three DL/T 645 meters on one bus, all work queued at once. "1 DI": forward active total per transaction (20 + 20 bytes). "input read": the collector\'s Dlt645Input.read() (energy block, power, voltages, currents: several request/reply pairs in one transaction). Goal: ratio >= 0.9.');
  out.push('');
  out.push('Reproduce: `npx tsx bench/bus-utilisation.bench.ts` (needs Debian socat).');
  out.push('');
  out.push(`Load average at start: ${load.toFixed(1)} on ${cores} cores (the gap to 1.0 is per-transaction software latency: PTY, simulator, event loop; it grows with load). "scheduler busy" is the bus's own utilisation figure: the share of wall time a transaction held the bus.`);
  out.push('');
  out.push(`Best of ${REPEATS} runs per row (SUBMETER_BENCH_REPEATS); "worst run" is the slowest run's ratio.`);
  out.push('');
  out.push('| line | workload | transactions | bytes on wire | wire-time limit (tx/s) | achieved (tx/s) | ratio | worst run | scheduler busy |');
  out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const limit = (r.transactions * 1000) / r.wireMs;
    const achieved = (r.transactions * 1000) / r.elapsedMs;
    out.push(`| ${r.line} | ${r.workload} | ${r.transactions} | ${r.bytes} | ${limit.toFixed(2)} | ${achieved.toFixed(2)} | ${(achieved / limit).toFixed(3)} | ${r.worstRatio.toFixed(3)} | ${(r.busy * 100).toFixed(1)} % |`);
  }
  console.log(out.join('\n'));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
