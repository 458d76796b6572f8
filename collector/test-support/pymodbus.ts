import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../test/private-servers.ts';
import { tempDir } from './socat.ts';

const SCRIPT = fileURLToPath(new URL('../testcases/pymodbus/server.py', import.meta.url));

export interface PymodbusSpec {
  [unit: string]: { fc: 3 | 4; floats?: Record<string, number>; ints?: Record<string, number[]> };
}

export interface PymodbusServer {
  readonly port?: number;
  stop(): Promise<void>;
}

/** A free loopback port for the python server to bind (test/private-servers.ts says why not listen(0)). */
export { freePort };

async function waitReady(proc: ChildProcess, what: string): Promise<void> {
  let err = '';
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} not ready in 15 s: ${err.slice(-500)}`)), 15_000);
    proc.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code}: ${err.slice(-800)}`));
    });
  });
}

function stopper(proc: ChildProcess): () => Promise<void> {
  return async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.kill('SIGKILL');
    await exited;
  };
}

/** Debian's pymodbus (/usr/bin/python3, not pyenv's) serving `spec` over Modbus TCP. */
export async function startPymodbusTcp(spec: PymodbusSpec): Promise<PymodbusServer> {
  const dir = tempDir('pymodbus');
  const specFile = join(dir, 'spec.json');
  writeFileSync(specFile, JSON.stringify(spec));
  const port = await freePort();
  const proc = spawn('/usr/bin/python3', [SCRIPT, 'tcp', String(port), specFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  await waitReady(proc, 'pymodbus tcp server');
  // "ready" is printed before serve_forever; wait until it accepts.
  for (let i = 0; i < 50; i++) {
    const ok = await new Promise<boolean>((r) => {
      const c = connect(port, '127.0.0.1', () => {
        c.destroy();
        r(true);
      });
      c.once('error', () => r(false));
    });
    if (ok) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port, stop: stopper(proc) };
}

/** Debian's pymodbus serving `spec` over Modbus RTU on a serial device (a socat PTY end). */
export async function startPymodbusRtu(device: string, baud: number, spec: PymodbusSpec): Promise<PymodbusServer> {
  const dir = tempDir('pymodbus');
  const specFile = join(dir, 'spec.json');
  writeFileSync(specFile, JSON.stringify(spec));
  const proc = spawn('/usr/bin/python3', [SCRIPT, 'rtu', device, String(baud), specFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  await waitReady(proc, 'pymodbus rtu server');
  return { stop: stopper(proc) };
}
