import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';

/**
 * Private Redis and InfluxDB servers for the tests that kill and restart them (collector
 * store-and-forward, workers' crash tests): the shared servers of scripts/services.sh are
 * never touched. Data and logs live under .run/tmp/<random>, configured like
 * scripts/services.sh. Each server is started when created.
 */
const ROOT = fileURLToPath(new URL('../', import.meta.url));

export function tmpDir(tag: string): string {
  const d = `${ROOT}.run/tmp/${tag}-${randomBytes(4).toString('hex')}`;
  mkdirSync(d, { recursive: true });
  return d;
}

/** Whether nothing listens on 127.0.0.1:port right now. */
function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** The kernel's ephemeral port range (local ports of outgoing connections). */
function ephemeralRange(): [number, number] {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo > 0 && hi >= lo) return [lo, hi];
  } catch {
    // not Linux: the IANA dynamic range
  }
  return [49152, 65535];
}

/**
 * A free loopback port for a server that another process binds later (redis-server,
 * influxd, python, an API process), and binds again on restart. Not from the ephemeral
 * range (what listen(0) hands out): a port there is free when checked and can become the
 * local port of some outgoing connection before the server binds it, which a loaded
 * machine full of test connections did ("bind: address already in use" from a private
 * influxd). Random below the range, checked free.
 */
export async function freePort(): Promise<number> {
  const [lo] = ephemeralRange();
  const min = 10_000;
  const max = Math.max(min, lo - 11_000); // room for a cluster node's bus port (+10000)
  for (let i = 0; i < 200; i++) {
    const p = min + Math.floor(Math.random() * (max - min + 1));
    if (await isFree(p)) return p;
  }
  throw new Error(`no free port in ${min}-${max}`);
}

/** Polls `check` until true; a check that throws `Fatal` (the server exited) stops at once. */
class Fatal extends Error {}
async function waitFor(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await check().catch((err: unknown) => {
      if (err instanceof Fatal) throw err;
      return false;
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not come up within ${ms} ms`);
}

function exited(p: ChildProcess): Promise<void> {
  return p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', () => r()));
}

export interface PrivateServer {
  readonly url: string;
  readonly dir: string;
  /** Stops the server (SIGTERM, or SIGKILL for a crash) and waits for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  /** Freezes the process (SIGSTOP: connections are accepted by the kernel, nothing answers) or thaws it (SIGCONT). */
  freeze(): void;
  thaw(): void;
  /** Stops it and removes its data. */
  destroy(): Promise<void>;
}

export async function privateRedis(opts: { readonly started?: boolean } = {}): Promise<PrivateServer> {
  const dir = tmpDir('redis');
  const port = await freePort();
  let proc: ChildProcess | undefined;
  const url = `redis://127.0.0.1:${port}`;
  const ping = async () => {
    const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on('error', () => undefined);
    try {
      await r.connect();
      return (await r.ping()) === 'PONG';
    } finally {
      r.disconnect();
    }
  };
  const server: PrivateServer = {
    url,
    dir,
    async start() {
      // AOF with fsync every second, as scripts/services.sh runs the shared one.
      proc = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', ''], { stdio: 'ignore' });
      await waitFor(ping, 10_000, 'private redis-server');
    },
    async stop(signal = 'SIGTERM') {
      if (!proc) return;
      proc.kill('SIGCONT'); // a frozen server could not act on SIGTERM
      proc.kill(signal);
      await exited(proc);
      proc = undefined;
    },
    freeze() {
      proc?.kill('SIGSTOP');
    },
    thaw() {
      proc?.kill('SIGCONT');
    },
    async destroy() {
      await server.stop('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  if (opts.started !== false) await server.start();
  return server;
}

/** @param opts.started false: the port and data directory are chosen, but the server is not started (a service that is down). */
export async function privateInflux(opts: { readonly started?: boolean } = {}): Promise<PrivateServer> {
  const dir = tmpDir('influx');
  const port = await freePort();
  const rpc = await freePort();
  const conf = `${dir}/influxdb.conf`;
  writeFileSync(
    conf,
    `reporting-enabled = false
bind-address = "127.0.0.1:${rpc}"
[meta]
  dir = "${dir}/meta"
[data]
  dir = "${dir}/data"
  wal-dir = "${dir}/wal"
  query-log-enabled = false
  index-version = "inmem"
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:${port}"
  log-enabled = false
  max-body-size = 0
[continuous_queries]
  enabled = false
`,
  );
  const url = `http://127.0.0.1:${port}`;
  let proc: ChildProcess | undefined;
  const server: PrivateServer = {
    url,
    dir,
    async start() {
      const log = openSync(`${dir}/influxd.log`, 'a');
      const p = spawn('influxd', ['run', '-config', conf], { stdio: ['ignore', log, log] });
      proc = p;
      await waitFor(
        async () => {
          if (p.exitCode !== null) throw new Fatal(`private influxd exited with ${p.exitCode}; see ${dir}/influxd.log`);
          return (await fetch(`${url}/ping`, { signal: AbortSignal.timeout(500) })).status === 204;
        },
        30_000,
        `private influxd (log: ${dir}/influxd.log)`,
      );
    },
    async stop(signal = 'SIGTERM') {
      if (!proc) return;
      proc.kill('SIGCONT'); // a frozen server could not act on SIGTERM
      proc.kill(signal);
      await exited(proc);
      proc = undefined;
    },
    freeze() {
      proc?.kill('SIGSTOP');
    },
    thaw() {
      proc?.kill('SIGCONT');
    },
    async destroy() {
      await server.stop('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  if (opts.started !== false) await server.start();
  return server;
}

/** A port whose cluster bus port (port + 10000) is free too. */
async function clusterPort(taken: Set<number>): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const p = await freePort();
    if (taken.has(p) || taken.has(p + 10_000)) continue;
    if (await isFree(p + 10_000)) {
      taken.add(p);
      taken.add(p + 10_000);
      return p;
    }
  }
  throw new Error('no free port pair for a Redis Cluster node');
}

export interface PrivateCluster {
  /** SUBMETER_REDIS_URL form: every node, comma-separated (lib/redis.ts). */
  readonly url: string;
  readonly ports: readonly number[];
  /** INFO errorstats of every node, merged: error prefix (CROSSSLOT, MOVED, ...) -> count. */
  errorStats(): Promise<Record<string, number>>;
  /** Stops every node and removes their data. */
  destroy(): Promise<void>;
}

/**
 * A Redis Cluster of `primaries` primaries (no replicas) on loopback, as an operator
 * builds one: redis-server in cluster mode per node (own port, bus port + 10000, data
 * under .run/tmp), then `redis-cli --cluster create`, waiting until every node reports
 * cluster_state:ok.
 */
export async function privateRedisCluster(primaries = 3): Promise<PrivateCluster> {
  const dir = tmpDir('redis-cluster');
  const taken = new Set<number>();
  const ports: number[] = [];
  for (let i = 0; i < primaries; i++) ports.push(await clusterPort(taken));
  const procs: ChildProcess[] = [];
  const destroy = async () => {
    for (const p of procs) p.kill('SIGKILL');
    await Promise.all(procs.map(exited));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      const d = `${dir}/${port}`;
      mkdirSync(d, { recursive: true });
      const log = openSync(`${d}/redis.log`, 'a');
      procs.push(
        spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--dir', d, '--cluster-enabled', 'yes', '--cluster-config-file', `${d}/nodes.conf`, '--cluster-node-timeout', '5000', '--appendonly', 'no', '--save', '', '--logfile', `${d}/redis.log`], { stdio: ['ignore', log, log] }),
      );
    }
    const node = (port: number) => {
      const r = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, disableClientInfo: true });
      r.on('error', () => undefined);
      return r;
    };
    const ask = async <T>(port: number, f: (r: Redis) => Promise<T>): Promise<T> => {
      const r = node(port);
      try {
        await r.connect();
        return await f(r);
      } finally {
        r.disconnect();
      }
    };
    for (const port of ports) await waitFor(async () => (await ask(port, (r) => r.ping())) === 'PONG', 10_000, `cluster node ${port}`);
    await new Promise<void>((resolve, reject) => {
      const p = spawn('redis-cli', ['--cluster', 'create', ...ports.map((x) => `127.0.0.1:${x}`), '--cluster-replicas', '0', '--cluster-yes'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      p.stdout!.on('data', (b: Buffer) => (out += b.toString()));
      p.stderr!.on('data', (b: Buffer) => (out += b.toString()));
      p.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`redis-cli --cluster create exited ${code}: ${out.slice(-500)}`))));
    });
    for (const port of ports) await waitFor(async () => /cluster_state:ok/.test(await ask(port, (r) => r.cluster('INFO') as Promise<string>)), 20_000, `cluster state ok on ${port}`);
    return {
      url: `redis://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`,
      ports,
      async errorStats() {
        const out: Record<string, number> = {};
        for (const port of ports) {
          const text = await ask(port, (r) => r.info('errorstats'));
          for (const m of text.matchAll(/^errorstat_([A-Z_-]+):count=(\d+)/gm)) out[m[1]] = (out[m[1]] ?? 0) + Number(m[2]);
        }
        return out;
      },
      destroy,
    };
  } catch (err) {
    await destroy();
    throw err;
  }
}
