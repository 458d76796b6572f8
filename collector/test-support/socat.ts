import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const RUN_TMP = fileURLToPath(new URL('../../.run/tmp/', import.meta.url));

/** A fresh directory under .run/tmp for one test. */
export function tempDir(prefix: string): string {
  const dir = join(RUN_TMP, `${prefix}-${randomBytes(6).toString('hex')}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

export interface PtyPair {
  /** The collector's end (like /dev/ttyUSB0). */
  readonly a: string;
  /** The meter's end. */
  readonly b: string;
  close(): Promise<void>;
}

/** A socat pseudo-terminal pair, raw, no echo; killed by close(). */
export async function openPtyPair(): Promise<PtyPair> {
  const dir = tempDir('pty');
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  const proc = spawn('socat', [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  for (let i = 0; i < 100 && !(existsSync(a) && existsSync(b)); i++) await new Promise((r) => setTimeout(r, 20));
  if (!existsSync(a) || !existsSync(b)) {
    proc.kill();
    throw new Error('socat did not create the PTY pair within 2 s (is Debian socat installed? scripts/test-deps.sh)');
  }
  return {
    a,
    b,
    close: async () => {
      if (proc.exitCode === null) proc.kill();
      await exited;
    },
  };
}
