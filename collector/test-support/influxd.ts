import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './pymodbus.ts';
import { tempDir } from './socat.ts';

/**
 * A private InfluxDB 1.6 (`influxd run`) on free ports with data under .run/tmp, for
 * tests that stop and restart the database. The shared server is never touched.
 */
export interface PrivateInfluxd {
  readonly url: string;
  readonly dir: string;
  /** Starts it (again, on the same ports and data); resolves when /ping answers. */
  start(): Promise<void>;
  /** SIGKILLs it (the harshest stop) and waits for the exit. */
  kill(): Promise<void>;
}

export async function privateInfluxd(): Promise<PrivateInfluxd> {
  const dir = tempDir('influxd');
  const http = await freePort();
  const rpc = await freePort();
  const conf = join(dir, 'influxdb.conf');
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
  bind-address = "127.0.0.1:${http}"
  log-enabled = false
  max-body-size = 0
[continuous_queries]
  enabled = false
`,
  );
  const url = `http://127.0.0.1:${http}`;
  let proc: ChildProcess | undefined;
  const ping = async () => {
    try {
      const r = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(500) });
      return r.status === 204;
    } catch {
      return false;
    }
  };
  return {
    url,
    dir,
    async start() {
      const log = openSync(join(dir, 'influxd.log'), 'a');
      proc = spawn('influxd', ['run', '-config', conf], { stdio: ['ignore', log, log] });
      for (let i = 0; i < 300; i++) {
        if (await ping()) return;
        if (proc.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`private influxd did not answer on ${url}; see ${dir}/influxd.log`);
    },
    async kill() {
      const p = proc;
      proc = undefined;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise<void>((r) => p.once('exit', () => r()));
      p.kill('SIGKILL');
      await exited;
    },
  };
}
