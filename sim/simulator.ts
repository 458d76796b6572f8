import type { Site } from '../core/index.ts';
import { createLogger } from '../lib/logger.ts';
import type { Logger } from '../lib/logger.ts';
import type { Fault } from './faults.ts';
import { validateFault } from './faults.ts';
import { MODEL_EPOCH, SiteLoadModel } from './load-model.ts';
import type { SerialFrameHandler } from './serial-server.ts';
import { SerialServer } from './serial-server.ts';
import type { MeterReading } from './simulated-meter.ts';
import { SimulatedMeter } from './simulated-meter.ts';
import { ModbusTcpServer } from './tcp-server.ts';

export type { Fault } from './faults.ts';
export type { FrameMatch, LineTiming, SerialBusContext, SerialFrameHandler } from './serial-server.ts';
export type { MeterReading, SimulatedMeter } from './simulated-meter.ts';

export interface SimulatorOptions {
  readonly site: Site;
  /** Load model seed. @defaultValue 1 */
  readonly seed?: number;
  /** Simulated seconds per real second (60: an hour a minute). @defaultValue 1 */
  readonly speed?: number;
  /** Simulated time at start, epoch ms. @defaultValue Date.now() */
  readonly start?: number;
  /** Replaces the simulated clock entirely (tests step time by hand). Overrides start/speed. */
  readonly now?: () => number;
  /** Load model epoch (see LoadModelOptions). @defaultValue MODEL_EPOCH, or `start` if earlier */
  readonly epoch?: number;
  /** Energy counters at the epoch, Wh by meter id. @defaultValue seeded */
  readonly initialWh?: Readonly<Record<string, number>>;
  /** Load multipliers by meter id. @defaultValue 1 */
  readonly scale?: Readonly<Record<string, number>>;
  /**
   * Where Modbus TCP meters are served. By default each distinct host:port of the site
   * file gets a listener there. `{ port: 0 }` (tests) serves every TCP meter on one free
   * port of `host` (default 127.0.0.1): unit ids must then be unique across the site.
   * `false`: no TCP.
   */
  readonly tcp?: { readonly host?: string; readonly port?: number } | false;
  /**
   * Serial devices to serve the site's RS485 buses on (`connection.port` of modbus-rtu and
   * dlt645 meters). A string serves every bus on that one device (one PTY in tests); a
   * record maps site port -> device; buses not in it are not served. @defaultValue none
   */
  readonly serial?: string | Readonly<Record<string, string>>;
  /**
   * Emulate RS485 wire time on serial buses, at the baud and parity the site file gives
   * the meter each transaction addresses, plus this turnaround (default 5 ms).
   * @defaultValue false
   */
  readonly lineTiming?: boolean | { readonly turnaroundMs?: number };
  /** Extra serial protocols (e.g. DL/T 645) tried before Modbus RTU on every bus. */
  readonly serialProtocols?: readonly SerialFrameHandler[];
  /** Faults in force from the start, by meter id. */
  readonly faults?: Readonly<Record<string, Fault | readonly Fault[]>>;
  readonly logger?: Logger;
}

export interface TcpEndpoint {
  readonly host: string;
  /** The bound port (the real one when asked for port 0). */
  readonly port: number;
  /** The site file's port these meters were configured on. */
  readonly sitePort: number;
  readonly meters: readonly string[];
}

export interface SerialEndpoint {
  readonly sitePort: string;
  readonly device: string;
  readonly meters: readonly string[];
}

export interface Simulator {
  readonly site: Site;
  readonly tcp: readonly TcpEndpoint[];
  /** The first TCP listener's bound port (the only one with `tcp: { port: 0 }`). */
  readonly tcpPort: number | undefined;
  readonly serial: readonly SerialEndpoint[];
  /** Simulated time now, epoch ms. */
  now(): number;
  /** A meter as the wire sees it (request counters, values). */
  meter(id: string): SimulatedMeter;
  /** What the meter shows now, faults applied (consumes no fault). */
  read(id: string): MeterReading;
  injectFault(meterId: string, fault: Fault): void;
  /** Clears request faults and pending spikes of one meter, or of all. */
  clearFaults(meterId?: string): void;
  /** Adds a serial protocol (e.g. DL/T 645) on every bus, before Modbus RTU. */
  registerSerialProtocol(handler: SerialFrameHandler): void;
  stop(): Promise<void>;
}

/**
 * Starts serving the meters of a site over their real wire protocols: Modbus TCP (many
 * unit ids per port) and Modbus RTU on serial devices, plus any registered serial
 * protocols (DL/T 645) on the same buses. Values come from the deterministic load model
 * (sim/load-model.ts) at simulated time, which may run faster than real time.
 */
export async function startSimulator(opts: SimulatorOptions): Promise<Simulator> {
  const { site } = opts;
  const log = opts.logger ?? createLogger('sim');
  const speed = opts.speed ?? 1;
  if (!(speed > 0) || !Number.isFinite(speed)) throw new Error(`simulator: speed must be a positive number, got ${opts.speed}`);
  const realStart = Date.now();
  const simStart = opts.start ?? realStart;
  const now = opts.now ?? (() => simStart + (Date.now() - realStart) * speed);
  const epoch = opts.epoch ?? Math.min(MODEL_EPOCH, opts.now ? opts.now() : simStart);
  const model = new SiteLoadModel(site, { seed: opts.seed, epoch, initialWh: opts.initialWh, scale: opts.scale });

  const meters = new Map<string, SimulatedMeter>();
  for (const m of site.meters) meters.set(m.id, new SimulatedMeter(m, model, now));
  const meterOf = (id: string): SimulatedMeter => {
    const m = meters.get(id);
    if (!m) throw new Error(`simulator: no meter '${id}' in site ${site.id}`);
    return m;
  };
  for (const [id, f] of Object.entries(opts.faults ?? {})) {
    const list: readonly Fault[] = Array.isArray(f) ? f : [f as Fault];
    for (const one of list) validateFault(id, one);
    for (const one of list) meterOf(id).inject(one);
  }
  // Integrate up to now once, so the first request is not slow.
  model.advanceTo(now());

  const handlers: SerialFrameHandler[] = [...(opts.serialProtocols ?? [])];
  const tcpServers: ModbusTcpServer[] = [];
  const serialServers: SerialServer[] = [];
  const tcp: TcpEndpoint[] = [];
  const serial: SerialEndpoint[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all([...tcpServers.map((s) => s.close()), ...serialServers.map((s) => s.close())]);
  };

  try {
    // Modbus TCP: group by listener.
    if (opts.tcp !== false) {
      const groups = new Map<string, { host: string; port: number; sitePort: number; units: Map<number, SimulatedMeter> }>();
      for (const sm of meters.values()) {
        const c = sm.meter.connection;
        if (c?.protocol !== 'modbus-tcp') continue;
        const host = opts.tcp?.host ?? (opts.tcp?.port !== undefined ? '127.0.0.1' : c.host);
        const port = opts.tcp?.port ?? c.port;
        const key = `${host}:${port}`;
        let g = groups.get(key);
        if (!g) groups.set(key, (g = { host, port, sitePort: c.port, units: new Map() }));
        const clash = g.units.get(c.unit);
        if (clash) throw new Error(`simulator: meters ${clash.id} and ${sm.id} both use Modbus TCP unit ${c.unit} on ${key}`);
        g.units.set(c.unit, sm);
      }
      for (const g of groups.values()) {
        const server = new ModbusTcpServer(g.units, log);
        const addr = await server.listen(g.host, g.port);
        tcpServers.push(server);
        tcp.push({ host: g.host, port: addr.port, sitePort: g.sitePort, meters: [...g.units.values()].map((m) => m.id) });
      }
    }

    // Serial buses.
    if (opts.serial !== undefined) {
      const byDevice = new Map<string, { sitePorts: Set<string>; meters: SimulatedMeter[] }>();
      for (const sm of meters.values()) {
        const c = sm.meter.connection;
        if (c?.protocol !== 'modbus-rtu' && c?.protocol !== 'dlt645') continue;
        const device = typeof opts.serial === 'string' ? opts.serial : opts.serial[c.port];
        if (!device) continue;
        let d = byDevice.get(device);
        if (!d) byDevice.set(device, (d = { sitePorts: new Set(), meters: [] }));
        d.sitePorts.add(c.port);
        d.meters.push(sm);
      }
      for (const [device, d] of byDevice) {
        const units = new Map<number, string>();
        for (const sm of d.meters) {
          const c = sm.meter.connection!;
          if (c.protocol !== 'modbus-rtu') continue;
          const clash = units.get(c.unit);
          if (clash) throw new Error(`simulator: meters ${clash} and ${sm.id} both use Modbus RTU unit ${c.unit} on device ${device}`);
          units.set(c.unit, sm.id);
        }
        const first = d.meters[0].meter.connection as { baud: number };
        const sitePort = [...d.sitePorts].join(',');
        const server = new SerialServer({ sitePort, device, meters: d.meters, handlers: () => handlers, timing: opts.lineTiming, baud: first.baud, log });
        await server.open();
        serialServers.push(server);
        serial.push({ sitePort, device, meters: d.meters.map((m) => m.id) });
        const orphans = d.meters.filter((m) => m.meter.connection?.protocol === 'dlt645').map((m) => m.id);
        if (orphans.length > 0 && handlers.length === 0) log.warn({ device, meters: orphans }, 'simulator: DL/T 645 meters on this bus stay silent until a DL/T 645 handler is registered');
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }

  log.info({ site: site.id, meters: meters.size, tcp, serial, speed, start: new Date(now()).toISOString() }, 'simulator: serving');
  return {
    site,
    tcp,
    tcpPort: tcp[0]?.port,
    serial,
    now,
    meter: meterOf,
    read: (id) => meterOf(id).read(),
    injectFault: (id, fault) => {
      meterOf(id).inject(fault);
      log.info({ meter: id, fault }, 'simulator: fault injected');
    },
    clearFaults: (id) => {
      for (const m of id === undefined ? meters.values() : [meterOf(id)]) m.clearFaults();
    },
    registerSerialProtocol: (h) => {
      handlers.push(h);
    },
    stop,
  };
}
