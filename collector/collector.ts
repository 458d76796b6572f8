import { watch } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, resolve } from 'node:path';
import { multiplierAt, SiteFileError } from '../core/index.ts';
import type { Site } from '../core/index.ts';
import { InfluxV1 } from '../influx/client.ts';
import { createRedis, createSubscriber } from '../lib/redis.ts';
import { siteReloadChannel } from '../lib/site-reload-channel.ts';
import { announceNewData } from '../lib/new-data-channel.ts';
import { ReadingsLogWriter } from '../lib/readings-log.ts';
import { M, T } from '../influx/schema.ts';
import type { InfluxOptions } from '../influx/client.ts';
import type { MeterHealth } from '../influx/lines.ts';
import { collectorLine, healthLine, sampleLine } from '../influx/lines.ts';
import type { Logger } from '../lib/logger.ts';
import { createLogger } from '../lib/logger.ts';
import { loadSiteFile } from '../lib/site-file.ts';
import { effectiveConnection, meterAt, nextAddressChange } from './meter-config.ts';
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
  /**
   * The file `site` was read from: read again when it changes on disk and on reload()
   * (SIGHUP in the CLI). A bad file is refused with its reasons and the running one stays;
   * a good one re-creates the pollers of meters whose connection changed, e.g. the new
   * address after a meter change (billing.md section 11).
   */
  readonly siteFile?: string;
  /** Watch siteFile for changes. @defaultValue true */
  readonly watchSiteFile?: boolean;
  /**
   * The workers' Redis and key prefix: the collector announces each batch of readings
   * InfluxDB acknowledged on their new-data channel (lib/new-data-channel.ts), so the
   * rollup runs on new data instead of polling, and reloads siteFile when the API's reload
   * route publishes this site's id (lib/site-reload-channel.ts), as the workers do.
   * Optional: without it (or while Redis is down) the collector runs on; the workers' safety
   * tick picks the readings up, and reloads come from file changes and SIGHUP.
   */
  readonly reloadChannel?: { readonly redisUrl: string; readonly keyPrefix?: string };
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
  /** Waits until every line appended before the call is acknowledged by InfluxDB (the spool empty, once appends stop); false on timeout. */
  drained(timeoutMs?: number): Promise<boolean>;
  /** Reads the site file again (siteFile): 'applied', or 'refused' with the reasons. */
  reload(): Promise<{ outcome: 'applied' | 'refused'; reasons: string[] }>;
  /** Stops polling, writes a last state line, lets the forwarder finish its batch, closes. */
  stop(): Promise<void>;
}

/**
 * The SampleSink (collector/sample.ts) of a spool: a sample is durable once `add`
 * resolves. Rejects with SpoolFullError when the spool is at its bound.
 */
export function spoolSink(spool: Spool, siteId: string, multiplierOf: (meter: string, t: number) => number = () => 1): SampleSink {
  return { add: (s: Sample) => spool.append([sampleLine(siteId, s, multiplierOf(s.meter, s.time))]) };
}

/** The multiplier the site file puts in force for a meter at an instant (1 for an unknown meter). */
export function siteMultiplier(site: () => Site): (meter: string, t: number) => number {
  return (meter, t) => {
    const m = site().meters.find((x) => x.id === meter);
    return m ? multiplierAt(m, t) : 1;
  };
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
      // The address in force now (a replaced meter answers at its new address); the site's
      // zone for a DL/T 645 meter's daily freezes.
      inputs.push(createInput(meterAt(m, now()), { timezone: site.timezone, ...resources }, now));
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
  const announcer = opts.reloadChannel ? readingsAnnouncer(opts.reloadChannel, site.id) : undefined;
  const forwarder = new Forwarder(spool, influx, { ...opts.forwarder, log, ...(announcer ? { onWritten: announcer.written, onRejected: announcer.rejected } : {}) });
  // A missing database is created up front; if InfluxDB is away, the forwarder creates it on its 404.
  await influx.createDatabase().catch((err: Error) => log.warn({ err: err.message }, 'influxdb not reachable at start; collecting into the spool'));
  forwarder.start();

  const buses = new BusRegistry(opts.bus);
  const tcp = new ModbusTcpPool();
  let current = site;
  const samples = spoolSink(spool, site.id, siteMultiplier(() => current));
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

  // One poller per meter, keyed by what it reads (connection in force, interval): a reload
  // or an address change at a meter change replaces exactly the pollers whose key changed.
  const running = new Map<string, { key: string; input: MeterInput; poller: MeterPoller }>();
  let unconfigured: Record<string, string> = {};
  let stopped = false;
  let addressTimer: NodeJS.Timeout | undefined;
  const sync = async (next: Site): Promise<void> => {
    const t = now();
    const wanted = new Map<string, string>();
    for (const m of next.meters) {
      if (!m.connection || (opts.meters && !opts.meters.includes(m.id))) continue;
      wanted.set(m.id, JSON.stringify([effectiveConnection(m, t), opts.pollIntervalMs ?? m.pollIntervalMs]));
    }
    for (const [id, r] of running) {
      if (wanted.get(id) === r.key) continue;
      await r.poller.stop();
      await r.input.close();
      running.delete(id);
    }
    const fresh = next.meters.filter((m) => wanted.has(m.id) && !running.has(m.id));
    const built = buildInputs({ ...next, meters: fresh }, { buses, tcp, log }, undefined, now);
    const before = unconfigured;
    unconfigured = {};
    for (const id of wanted.keys()) if (!running.has(id) && !built.inputs.some((i) => i.meter.id === id)) unconfigured[id] = built.unconfigured[id] ?? before[id];
    if (opts.meters) for (const id of opts.meters) if (!next.meters.some((m) => m.id === id && m.connection)) unconfigured[id] = `${id}: no such meter with a connection in site ${next.id}`;
    for (const [id, reason] of Object.entries(built.unconfigured)) log.error({ meter: id, reason }, 'meter not collected');
    for (const input of built.inputs) {
      const poller = new MeterPoller({ input, intervalMs: opts.pollIntervalMs ?? input.meter.pollIntervalMs, sink, now, log, lastSeen: lastSeen.get(input.meter.id) });
      running.set(input.meter.id, { key: wanted.get(input.meter.id)!, input, poller });
      if (!stopped) poller.start();
    }
    // A change entered ahead of time: switch to the new address when it comes.
    clearTimeout(addressTimer);
    const upcoming = next.meters.map((m) => nextAddressChange(m, t)).filter((x): x is number => x !== undefined);
    if (upcoming.length && !stopped) addressTimer = setTimeout(() => void sync(current).catch((err: Error) => log.error({ err: err.message }, 'address change failed')), Math.min(Math.max(0, Math.min(...upcoming) - now()), 2 ** 31 - 1));
  };
  await sync(site);
  const clocks =
    opts.timeSyncAt === false
      ? undefined
      : new ClockKeeper({ site, inputs: () => [...running.values()].map((r) => r.input), buses, now, log, ...(opts.timeSyncAt ? { syncAt: opts.timeSyncAt } : {}), report: (c) => spool.append([meterClockLine(site.id, c)]).catch(() => undefined) });

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

  log.info({ site: site.id, meters: running.size, unconfigured: Object.keys(unconfigured).length, spool: opts.spoolDir, influx: influx.url, db: influx.db }, 'collector started');
  clocks?.start();

  // One reload at a time; the file is validated before anything changes.
  let chain: Promise<unknown> = Promise.resolve();
  const reload = (): Promise<{ outcome: 'applied' | 'refused'; reasons: string[] }> => {
    const run = async () => {
      if (!opts.siteFile) return { outcome: 'refused' as const, reasons: ['the collector was started without a site file'] };
      let next: Site;
      try {
        next = loadSiteFile(opts.siteFile);
      } catch (err) {
        const reasons = err instanceof SiteFileError ? err.issues.map((i) => `${i.line ? `line ${i.line}: ` : ''}${i.path || '(top level)'}: ${i.message}`) : [(err as Error).message];
        log.error({ file: opts.siteFile, reasons }, 'site file refused; the one in force stays');
        return { outcome: 'refused' as const, reasons };
      }
      if (next.id !== site.id) {
        const reasons = [`${opts.siteFile} is site ${next.id}, not ${site.id}`];
        log.error({ file: opts.siteFile, reasons }, 'site file refused; the one in force stays');
        return { outcome: 'refused' as const, reasons };
      }
      current = next;
      await sync(next);
      relay?.setSite(next);
      log.info({ file: opts.siteFile, meters: running.size }, 'site file reloaded');
      return { outcome: 'applied' as const, reasons: [] };
    };
    const p = chain.then(run, run);
    chain = p.catch(() => undefined);
    return p;
  };
  const watcher = opts.siteFile && opts.watchSiteFile !== false ? watchFile(opts.siteFile, () => void reload(), log) : undefined;
  const subscriber = opts.siteFile && opts.reloadChannel ? subscribeReloads(opts.reloadChannel, site.id, () => void reload(), log) : undefined;
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

  return {
    spool,
    forwarder,
    clocks,
    health: () => ({ meters: [...running.values()].map((r) => r.poller.health()), spool: spool.stats(), forwarder: forwarder.stats(), buses: buses.all().map((b) => b.stats()), unconfigured }),
    drained: (timeoutMs) => forwarder.drained(timeoutMs),
    reload,
    async stop() {
      if (stopped) return;
      stopped = true;
      watcher?.close();
      subscriber?.close();
      clearTimeout(addressTimer);
      await chain;
      clearInterval(stateTimer);
      await clocks?.stop();
      await relay?.close();
      await Promise.all([...running.values()].map((r) => r.poller.stop()));
      await writeState();
      await forwarder.stop();
      announcer?.close();
      await Promise.all([...running.values()].map((r) => r.input.close()));
      await buses.closeAll();
      await tcp.close();
      await spool.close();
      log.info({ site: site.id, spool: spool.stats() }, 'collector stopped');
    },
  };
}

/**
 * The meter tag of each `reading` line of a forwarded batch (line protocol as influx/lines.ts
 * writes it: `reading,meter=<id>,site=<site> ...`, tags sorted). A meter id never needs
 * escaping (letters, digits, `_ . : -`, core/site/schema.ts); a value that does, or a
 * reading line without the tag, makes the batch announce the whole site (undefined).
 */
export function readingMeters(body: string): Set<string> | undefined {
  const meters = new Set<string>();
  const head = `${M.reading},`;
  const tag = `${T.meter}=`;
  for (const line of body.split('\n')) {
    if (!line.startsWith(head)) continue;
    const tags = line.slice(head.length, line.indexOf(' '));
    const kv = tags.split(',').find((t) => t.startsWith(tag));
    const id = kv?.slice(tag.length);
    if (!id || !/^[A-Za-z0-9][A-Za-z0-9_.:-]*$/.test(id)) return undefined;
    meters.add(id);
  }
  return meters;
}

/**
 * Logs acknowledged readings in the site's readings log (lib/readings-log.ts: the rollup
 * takes them from there instead of asking InfluxDB again) and then announces them on the
 * workers' new-data channel (one publish per forwarded batch that holds readings, naming the
 * batch's meters so the workers roll up only those; health and state lines alone announce
 * nothing). Best effort: an append or a publish that fails is dropped (the log's chain then
 * sends the rollup to InfluxDB; the workers' safety tick is the net for a lost publish).
 */
function readingsAnnouncer(ch: { redisUrl: string; keyPrefix?: string }, siteId: string): { written(body: string | Buffer): void; rejected(): void; close(): void } {
  const pub = createRedis(ch.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  pub.on('error', () => undefined);
  const log = new ReadingsLogWriter(pub, ch.keyPrefix);
  return {
    written(body) {
      const text = typeof body === 'string' ? body : body.toString('utf8');
      const meters = readingMeters(text);
      // undefined: a reading whose meter could not be told, so the whole site.
      if (meters === undefined || meters.size > 0) void log.written(siteId, text).then(() => announceNewData(pub, ch.keyPrefix, siteId, 'readings', meters));
    },
    // InfluxDB may have kept part of a refused batch: the rollup must not trust the log past it.
    rejected: () => void log.broken(siteId),
    close: () => pub.disconnect(),
  };
}

/**
 * Calls `onReload` when this site's id is published on the reload channel. Never blocks
 * or stops the collector: Redis down at start or later is logged once per outage, and
 * ioredis reconnects and subscribes again by itself.
 */
function subscribeReloads(ch: { redisUrl: string; keyPrefix?: string }, siteId: string, onReload: () => void, log: Logger): { close(): void } {
  const channel = siteReloadChannel(ch.keyPrefix);
  // A single server or a Redis Cluster, as every process connects (lib/redis.ts).
  const sub = createSubscriber(ch.redisUrl, { lazyConnect: true, maxRetriesPerRequest: null });
  let down = false;
  sub.on('error', (err: Error) => {
    if (!down) log.warn({ channel, err: err.message }, 'site reload channel unreachable: reloads come from the file and SIGHUP until it is back');
    down = true;
  });
  sub.on('ready', () => {
    if (down) log.info({ channel }, 'site reload channel back');
    down = false;
  });
  sub.on('message', (_c: string, id: string) => {
    if (id !== siteId) return;
    log.info({ channel, site: id }, 'site reload announced');
    onReload();
  });
  sub.subscribe(channel).catch((err: Error) => log.warn({ channel, err: err.message }, 'could not subscribe to the site reload channel'));
  return { close: () => sub.disconnect() };
}

/** Calls `onChange` (debounced) when the file is written or replaced: the folder is watched, so an editor's rename is seen. */
function watchFile(file: string, onChange: () => void, log: Logger): { close(): void } {
  const abs = resolve(file);
  let timer: NodeJS.Timeout | undefined;
  const w = watch(dirname(abs), (_e, name) => {
    if (name !== null && String(name) !== basename(abs)) return;
    clearTimeout(timer);
    timer = setTimeout(onChange, 300);
  });
  w.on('error', (err) => log.warn({ file, err: err.message }, 'site file watch error'));
  return {
    close() {
      clearTimeout(timer);
      w.close();
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
