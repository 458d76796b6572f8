import { hostname } from 'node:os';
import type { Site } from '../core/index.ts';
import { InfluxV1 } from '../influx/client.ts';
import type { InfluxOptions } from '../influx/client.ts';
import type { MeterHealth } from '../influx/lines.ts';
import { collectorLine, healthLine, sampleLine } from '../influx/lines.ts';
import type { Logger } from '../lib/logger.ts';
import { createLogger } from '../lib/logger.ts';
import { BusRegistry } from './bus/index.ts';
import type { SerialBusOptions, SerialBusStats } from './bus/index.ts';
import type { MeterInput } from './input.ts';
import { MeterReadError } from './input.ts';
import { createInput } from './inputs/index.ts';
import { ModbusTcpPool } from './inputs/modbus-tcp/index.ts';
import { MeterPoller } from './poller.ts';
import { ClockKeeper } from './clock-keeper.ts';
import { LastSeenStore } from './last-seen.ts';
import { meterClockLine } from '../influx/meter-clock.ts';
import type { PollerSink } from './poller.ts';
import type { Sample, SampleSink } from './sample.ts';
import { Forwarder, Spool, SpoolFullError } from './spool/index.ts';
import { startRelayExecutor } from './relay/executor.ts';
import type { RelayExecutor, RelayExecutorOptions } from './relay/executor.ts';
import { loadRelaySecrets } from './relay/secrets.ts';
import type { ForwarderOptions, ForwarderStats, SpoolOptions, SpoolStats } from './spool/index.ts';

export interface CollectorOptions {
  readonly site: Site;
  /** Spool directory (durable; keep it on local disk). */
  readonly spoolDir: string;
  /** Where acknowledged data goes: an InfluxV1 or its options. */
  readonly influx: InfluxV1 | InfluxOptions;
  /** Only these meter ids (default: every meter with a connection). */
  readonly meters?: readonly string[];
  /** `host` tag of the collector measurement. @defaultValue os.hostname() */
  readonly host?: string;
  /** How often the collector measurement (spool depth) is written. @defaultValue 10000 */
  readonly stateIntervalMs?: number;
  /** Overrides every meter's poll interval (demos, tests). */
  readonly pollIntervalMs?: number;
  readonly spool?: Omit<SpoolOptions, 'log' | 'onFullChange'>;
  readonly forwarder?: Omit<ForwarderOptions, 'log'>;
  readonly bus?: SerialBusOptions;
  /** Clock of sample times. @defaultValue Date.now */
  readonly now?: () => number;
  /**
   * DL/T 645 clocks: local HH:MM of the daily clock check and broadcast time sync, or false
   * for neither (the start-up check included). @defaultValue '03:30'
   */
  readonly timeSyncAt?: string | false;
  readonly log?: Logger;
  /**
   * Carry out the workers' relay commands on this collector's buses (issue 13, collector
   * /relay/executor.ts): the Redis of the workers, and their queue and key prefixes.
   * Secrets from the environment unless given. Absent: no relay control.
   */
  readonly relay?: Omit<RelayExecutorOptions, 'site' | 'buses' | 'tcp' | 'writeLines' | 'secrets' | 'log' | 'now'> & { readonly secrets?: RelayExecutorOptions['secrets'] };
}

export interface CollectorHealth {
  readonly meters: readonly (MeterHealth & { reads: number })[];
  readonly spool: SpoolStats;
  readonly forwarder: ForwarderStats;
  readonly buses: readonly SerialBusStats[];
  /** Meters that could not be set up (unknown protocol, bad map), with the reason. */
  readonly unconfigured: Readonly<Record<string, string>>;
}

export interface Collector {
  readonly spool: Spool;
  readonly forwarder: Forwarder;
  /** DL/T 645 clock checks and time sync (undefined with `timeSyncAt: false`). */
  readonly clocks: ClockKeeper | undefined;
  health(): CollectorHealth;
  /** Waits until the spool is empty (everything acknowledged); false on timeout. */
  drained(timeoutMs?: number): Promise<boolean>;
  /** Stops polling, writes a last state line, lets the forwarder finish its batch, closes. */
  stop(): Promise<void>;
}

/**
 * The SampleSink (collector/sample.ts) of a spool: a sample is durable once `add`
 * resolves. Rejects with SpoolFullError when the spool is at its bound.
 */
export function spoolSink(spool: Spool, siteId: string): SampleSink {
  return { add: (s: Sample) => spool.append([sampleLine(siteId, s)]) };
}

/**
 * Builds the input of every meter that has a connection. Meters whose input cannot be
 * built are returned with the reason (they are reported, never silently skipped).
 */
export function buildInputs(site: Site, resources: { buses: BusRegistry; tcp: ModbusTcpPool; log?: Logger }, only?: readonly string[], now: () => number = Date.now): { inputs: MeterInput[]; unconfigured: Record<string, string> } {
  const inputs: MeterInput[] = [];
  const unconfigured: Record<string, string> = {};
  for (const m of site.meters) {
    if (!m.connection || (only && !only.includes(m.id))) continue;
    try {
      inputs.push(createInput(m, { timezone: site.timezone, ...resources }, now));
    } catch (err) {
      unconfigured[m.id] = (err as Error).message;
    }
  }
  if (only) for (const id of only) if (!site.meters.some((m) => m.id === id && m.connection)) unconfigured[id] = `${id}: no such meter with a connection in site ${site.id}`;
  return { inputs, unconfigured };
}

/**
 * Starts the long-running collector (issue 2 item 5): one poller per meter on its own
 * interval, every sample and health record into the durable spool first, a forwarder
 * draining the spool into InfluxDB, and a `collector` state line every
 * `stateIntervalMs`. Used by `submeter collect` and the demo.
 */
export async function startCollector(opts: CollectorOptions): Promise<Collector> {
  const log = opts.log ?? createLogger('collector');
  const site = opts.site;
  const now = opts.now ?? Date.now;
  const host = opts.host ?? hostname();
  const influx = opts.influx instanceof InfluxV1 ? opts.influx : new InfluxV1(opts.influx);
  const spool = await Spool.open(opts.spoolDir, { ...opts.spool, log });
  const forwarder = new Forwarder(spool, influx, { ...opts.forwarder, log });
  // A missing database is created up front; if InfluxDB is away, the forwarder creates it on its 404.
  await influx.createDatabase().catch((err: Error) => log.warn({ err: err.message }, 'influxdb not reachable at start; collecting into the spool'));
  forwarder.start();

  const buses = new BusRegistry(opts.bus);
  const tcp = new ModbusTcpPool();
  const { inputs, unconfigured } = buildInputs(site, { buses, tcp, log }, opts.meters, now);
  for (const [id, reason] of Object.entries(unconfigured)) log.error({ meter: id, reason }, 'meter not collected');

  const samples = spoolSink(spool, site.id);
  const lastSeen = new LastSeenStore(opts.spoolDir);
  const sink: PollerSink = {
    sample: async (s: Sample) => {
      await samples.add(s);
      lastSeen.note(s.meter, s.time);
    },
    health: (h: MeterHealth) =>
      spool.append([healthLine(site.id, h)]).catch((err: unknown) => {
        // Health lines are not worth an alarm of their own when the spool is full; the
        // refusal is counted in spool_refused.
        if (!(err instanceof SpoolFullError)) throw err;
      }),
  };
  const pollers = inputs.map((input) => new MeterPoller({ input, intervalMs: opts.pollIntervalMs ?? input.meter.pollIntervalMs, sink, now, log, lastSeen: lastSeen.get(input.meter.id) }));
  const clocks =
    opts.timeSyncAt === false
      ? undefined
      : new ClockKeeper({ site, inputs, buses, now, log, ...(opts.timeSyncAt ? { syncAt: opts.timeSyncAt } : {}), report: (c) => spool.append([meterClockLine(site.id, c)]).catch(() => undefined) });

  const stateLine = () => {
    const st = spool.stats();
    return collectorLine(site.id, { host, time: now(), spoolBytes: st.bytes, spoolSamples: st.lines, spoolFull: st.full, written: forwarder.stats().written, refused: st.refused });
  };
  const writeState = () => {
    try {
      lastSeen.flush();
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'could not save the meters\' last-seen times');
    }
    return spool.append([stateLine()]).catch(() => {});
  };
  const stateTimer = setInterval(() => void writeState(), opts.stateIntervalMs ?? 10_000);
  // One at start too: after a restart the spool depth left over is visible at once.
  void writeState();

  log.info({ site: site.id, meters: pollers.length, unconfigured: Object.keys(unconfigured).length, spool: opts.spoolDir, influx: influx.url, db: influx.db }, 'collector started');
  for (const p of pollers) p.start();
  clocks?.start();
  // Relay commands share the buses (priority) and the spool (their events).
  let relay: RelayExecutor | undefined;
  if (opts.relay) {
    relay = await startRelayExecutor({
      ...opts.relay,
      site,
      buses,
      tcp,
      secrets: opts.relay.secrets ?? loadRelaySecrets(),
      writeLines: (lines) => spool.append(lines),
      // The collector's clock: command deadlines (DL/T 645 N3..N8), read-back times and the
      // audit trail must agree with the sample times (tests and the demo inject a clock).
      now,
      log,
    });
  }

  let stopped = false;
  return {
    spool,
    forwarder,
    clocks,
    health: () => ({ meters: pollers.map((p) => p.health()), spool: spool.stats(), forwarder: forwarder.stats(), buses: buses.all().map((b) => b.stats()), unconfigured }),
    drained: (timeoutMs) => forwarder.drained(timeoutMs),
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(stateTimer);
      await clocks?.stop();
      await relay?.close();
      await Promise.all(pollers.map((p) => p.stop()));
      await writeState();
      await forwarder.stop();
      await Promise.all(inputs.map((i) => i.close()));
      await buses.closeAll();
      await tcp.close();
      await spool.close();
      log.info({ site: site.id, spool: spool.stats() }, 'collector stopped');
    },
  };
}

/**
 * `--test` mode (as `telegraf --test`): reads every meter once, in parallel, writing
 * nowhere. Returns the samples and, per meter that could not be read, the error.
 */
export async function collectOnce(site: Site, opts: { meters?: readonly string[]; now?: () => number; log?: Logger; bus?: SerialBusOptions } = {}): Promise<{ samples: Sample[]; errors: Record<string, string> }> {
  const buses = new BusRegistry(opts.bus);
  const tcp = new ModbusTcpPool();
  const { inputs, unconfigured } = buildInputs(site, { buses, tcp, ...(opts.log ? { log: opts.log } : {}) }, opts.meters, opts.now);
  const errors: Record<string, string> = { ...unconfigured };
  const samples: Sample[] = [];
  try {
    const results = await Promise.all(
      inputs.map((i) =>
        i.read().then(
          (s) => ({ meter: i.meter.id, s }),
          (e: unknown) => ({ meter: i.meter.id, e: e instanceof MeterReadError ? `${e.kind}: ${e.message}` : String(e) }),
        ),
      ),
    );
    // Site-file order, so the output is stable.
    for (const r of results) {
      if ('s' in r) samples.push(r.s);
      else errors[r.meter] = r.e;
    }
  } finally {
    await Promise.all(inputs.map((i) => i.close()));
    await buses.closeAll();
    await tcp.close();
  }
  return { samples, errors };
}
