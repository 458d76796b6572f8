import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../test-support/socat.ts';
import { SpoolLockedError } from './spool-lock.ts';
import { Spool } from './spool.ts';

const lines = (from: number, n: number) => Array.from({ length: n }, (_, i) => `reading,meter=m wh=${from + i}i ${1_700_000_000_000 + from + i}`);
const SPOOL = fileURLToPath(new URL('./spool.ts', import.meta.url));

/** A second process that opens the spool in `dir` and keeps it open until killed. */
async function holder(dir: string): Promise<{ pid: number; kill(): Promise<void> }> {
  const code = `const { Spool } = await import(${JSON.stringify(SPOOL)}); await Spool.open(${JSON.stringify(dir)}); process.stdout.write('open\\n'); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => d.toString().includes('open') && resolve());
    child.once('exit', (c) => reject(new Error(`holder exited with ${c}`)));
  });
  return {
    pid: child.pid!,
    kill: () =>
      new Promise<void>((resolve) => {
        child.removeAllListeners('exit');
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

describe('Spool directory lock and ack file', () => {
  it('two Spools on one directory write their ack files at the same time without losing a rename (the spool.test.ts flake)', async () => {
    // A restart while the old Spool's ack write is in flight: both used to write `ack.tmp`,
    // and one rename found the other's already moved (ENOENT), rejecting its ack.
    const dir = tempDir('spool');
    const a = await Spool.open(dir);
    for (let i = 0; i < 40; i++) await a.append(lines(i, 1));
    const b = await Spool.open(dir);
    for (let i = 0; i < 40; i++) {
      const pa = await a.peek(1);
      const pb = await b.peek(1);
      await Promise.all([a.ack(pa!.end), b.ack(pb!.end)]);
    }
    expect(await a.peek(1)).toBeUndefined();
    expect(JSON.parse(readFileSync(join(dir, 'ack'), 'utf8'))).toMatchObject({ segment: expect.any(Number), offset: expect.any(Number) });
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    await b.close();
    await a.close();
    // Both acknowledged everything; a restart finds nothing to send again.
    const c = await Spool.open(dir);
    expect(c.stats().lines).toBe(0);
    await c.close();
  });

  it('refuses a spool directory that another live process has open, naming it; takes it over once that process is killed', async () => {
    const dir = tempDir('spool');
    const other = await holder(dir);
    try {
      const err = await Spool.open(dir).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SpoolLockedError);
      expect((err as Error).message).toContain(`in use by process ${other.pid}`);
      expect((err as Error).message).toContain('two collectors must not share a spool');
    } finally {
      await other.kill();
    }
    // SIGKILL left its lock file behind: stale, taken over at once.
    expect(readFileSync(join(dir, 'lock'), 'utf8')).toMatch(new RegExp(`^${other.pid}\\b`));
    const s = await Spool.open(dir);
    await s.append(lines(0, 1));
    expect(readFileSync(join(dir, 'lock'), 'utf8')).toMatch(new RegExp(`^${process.pid}\\b`));
    await s.close();
    expect(existsSync(join(dir, 'lock'))).toBe(false);
  });

  it('takes over a lock whose pid now belongs to another process (a reused pid) or to this process (a restarted container)', async () => {
    const dir = tempDir('spool');
    // The parent process is alive, but its start time is not the one in the file.
    writeFileSync(join(dir, 'lock'), `${process.ppid} 1`);
    let s = await Spool.open(dir);
    await s.close();
    writeFileSync(join(dir, 'lock'), `${process.pid} 1`);
    s = await Spool.open(dir);
    await s.close();
    expect(existsSync(join(dir, 'lock'))).toBe(false);
  });

  it('removes ack tmp files left by a process killed mid-write, keeps the ack', async () => {
    const dir = tempDir('spool');
    let s = await Spool.open(dir);
    await s.append(lines(0, 3));
    await s.append(lines(3, 3));
    const first = await s.peek(3);
    await s.ack(first!.end);
    await s.close();
    writeFileSync(join(dir, 'ack.tmp'), '{"segment":1,"off');
    writeFileSync(join(dir, `ack.999999999.1.tmp`), '{"segment":9');
    s = await Spool.open(dir);
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    expect(s.stats().lines).toBe(3);
    await s.close();
  });
});
