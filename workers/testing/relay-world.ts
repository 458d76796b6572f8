import { Point } from '@influxdata/influxdb-client';
import { parseSiteYaml } from '../../core/index.ts';
import type { Site } from '../../core/index.ts';
import { BusRegistry } from '../../collector/bus/index.ts';
import { ModbusTcpPool } from '../../collector/inputs/modbus-tcp/tcp-pool.ts';
import { startRelayExecutor } from '../../collector/relay/executor.ts';
import type { RelayExecutor } from '../../collector/relay/executor.ts';
import { loadRelaySecrets } from '../../collector/relay/secrets.ts';
import { collectorLine, healthLine } from '../../influx/lines.ts';
import { F, M, T } from '../../influx/schema.ts';
import { RelayStore } from '../../lib/relay-store.ts';
import type { CommandRecord } from '../../lib/relay-store.ts';
import { dlt645Handler } from '../../sim/dlt645/handler.ts';
import type { Dlt645SerialHandler } from '../../sim/dlt645/handler.ts';
import { startSimulator } from '../../sim/simulator.ts';
import type { Simulator } from '../../sim/simulator.ts';
import { openPtyPair } from '../../sim/test-support.ts';
import type { PtyPair } from '../../sim/test-support.ts';
import type { WorkerContext } from '../context.ts';
import { processEnforcement } from '../enforcement.ts';
import type { EnforcementResult } from '../enforcement.ts';
import { closeQueues } from '../queues.ts';
import { REDIS_URL, testContext, testEnv } from './env.ts';
import type { TestEnv } from './env.ts';

/**
 * A world for the enforcement tests: the simulator serving DL/T 645 meters on a socat PTY
 * and Modbus meters over TCP, the real Redis and InfluxDB on the test's own database and
 * prefix, the workers' enforcement processor on a settable clock, and the collector's
 * relay executor on the same clock, talking to the simulator through its own buses.
 */
export interface RelayWorld {
  readonly site: Site;
  readonly sim: Simulator;
  readonly dlt: Dlt645SerialHandler;
  readonly env: TestEnv;
  readonly ctx: WorkerContext;
  readonly store: RelayStore;
  readonly clock: { now: number };
  executor: RelayExecutor | undefined;
  /** One enforcement cycle at the clock's time. */
  cycle(): Promise<EnforcementResult>;
  /** The balance worker's output for an account, at the clock's time. */
  balance(account: string, fen: number, hoursLeft?: number): Promise<void>;
  /** Fresh meter health and collector state at the clock's time (a running collector). */
  fresh(at?: number): Promise<void>;
  startExecutor(): Promise<void>;
  /** Waits until the command reaches a final status. */
  command(id: string, timeoutMs?: number): Promise<CommandRecord>;
  close(): Promise<void>;
}

export interface RelayWorldOptions {
  readonly tag: string;
  /** The site file with `PTY` and `TCP_PORT` placeholders for the serial device and TCP port. */
  readonly siteYaml: string;
  readonly start: number;
  /** DL/T 645 meters' control passwords by meter id. */
  readonly passwords: Readonly<Record<string, string>>;
  /** The control password the collector has (SUBMETER_DLT645_PASSWORD). */
  readonly secret: string;
}

export async function relayWorld(o: RelayWorldOptions): Promise<RelayWorld> {
  const clock = { now: o.start };
  const pty: PtyPair = await openPtyPair();
  const site0 = parseSiteYaml(o.siteYaml.replaceAll('PTY', pty.a).replaceAll('TCP_PORT', '5020'), 'relay-world.yaml');
  const dlt = dlt645Handler({ site: site0, control: { password: { ...o.passwords } } });
  const sim = await startSimulator({ site: site0, tcp: { port: 0 }, serial: pty.b, now: () => clock.now, epoch: o.start - 86_400_000, serialProtocols: [dlt] });
  const site = parseSiteYaml(o.siteYaml.replaceAll('PTY', pty.a).replaceAll('TCP_PORT', String(sim.tcpPort)), 'relay-world.yaml');
  const env = await testEnv(o.tag);
  const ctx = testContext(env, [site], clock);
  const store = new RelayStore(env.redis, site.id, env.prefix);
  const buses = new BusRegistry();
  const tcp = new ModbusTcpPool();

  const world: RelayWorld = {
    site,
    sim,
    dlt,
    env,
    ctx,
    store,
    clock,
    executor: undefined,
    cycle: () => processEnforcement(ctx, { site: site.id }),
    async balance(account, fen, hoursLeft) {
      const p = new Point(M.balance).tag(T.site, site.id).tag(T.account, account).intField(F.balanceFen, fen).intField(F.costRateFenH, 100).intField(F.costTodayFen, 0);
      if (hoursLeft !== undefined) p.floatField(F.hoursLeft, hoursLeft);
      await env.influx.write([p.timestamp(clock.now).toLineProtocol()!]);
    },
    async fresh(at = clock.now) {
      const lines = site.meters.filter((m) => m.connection).map((m) => healthLine(site.id, { meter: m.id, time: at, ok: true, errors: 0, consecutiveErrors: 0, lastSeen: at }));
      lines.push(collectorLine(site.id, { host: 'test', time: at, spoolBytes: 0, spoolSamples: 0, spoolFull: false, written: 0, refused: 0 }));
      await env.influx.write(lines);
    },
    async startExecutor() {
      world.executor = await startRelayExecutor({
        site,
        redisUrl: REDIS_URL,
        queuePrefix: env.prefix,
        keyPrefix: env.prefix,
        buses,
        tcp,
        secrets: loadRelaySecrets({ SUBMETER_DLT645_PASSWORD: o.secret }),
        writeLines: (lines) => env.influx.write(lines),
        readbackPollMs: 100,
        statusEveryMs: 3_600_000,
        now: () => clock.now,
      });
      await world.executor.pollStates();
    },
    async command(id, timeoutMs = 30_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const c = await store.command(id);
        if (c && ['done', 'refused', 'mismatch', 'unsupported', 'failed'].includes(c.status)) return c;
        if (Date.now() > end) throw new Error(`command ${id} not final after ${timeoutMs} ms: ${JSON.stringify(c)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async close() {
      await world.executor?.close();
      await closeQueues(ctx.queues);
      const { closeRelayQueues } = await import('../enforcement.ts');
      await closeRelayQueues(ctx);
      await buses.closeAll();
      await tcp.close();
      await sim.stop();
      await pty.close();
      await env.cleanup();
    },
  };
  return world;
}
