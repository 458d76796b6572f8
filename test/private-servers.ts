import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, openSync, rmSync, writeFileSync } from 'node:fs';
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

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
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
