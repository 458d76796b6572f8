import { execFile, spawn } from 'node:child_process';
import { parseSiteYaml } from '../core/index.ts';
import type { Site } from '../core/index.ts';

/**
 * Helpers for the simulator's protocol tests (and anyone testing against it): socat PTY
 * pairs and the independent Debian Modbus peer mbpoll.
 */

export interface PtyPair {
  /** The client's end (like /dev/ttyUSB0). */
  readonly a: string;
  /** The simulator's end. */
  readonly b: string;
  close(): Promise<void>;
}

/** `socat -d -d pty,raw,echo=0 pty,raw,echo=0`, device paths parsed from its stderr ("PTY is /dev/pts/N"). */
export function openPtyPair(): Promise<PtyPair> {
  return new Promise((resolve, reject) => {
    const proc = spawn('socat', ['-d', '-d', 'pty,raw,echo=0', 'pty,raw,echo=0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    const paths: string[] = [];
    let err = '';
    const timer = setTimeout(() => {
      proc.kill();
      reject(new Error(`socat did not report two PTYs within 5 s (is Debian socat installed? scripts/test-deps.sh): ${err}`));
    }, 5_000);
    proc.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run socat: ${e.message} (scripts/test-deps.sh installs it)`));
    });
    proc.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString();
      for (const m of chunk.toString().matchAll(/PTY is (\S+)/g)) paths.push(m[1]);
      // "starting data transfer loop" follows the second PTY: both ends exist by then.
      if (paths.length >= 2 && /starting data transfer loop/.test(err)) {
        clearTimeout(timer);
        resolve({
          a: paths[0],
          b: paths[1],
          close: async () => {
            if (proc.exitCode === null) proc.kill();
            await exited;
          },
        });
      }
    });
  });
}

export interface MbpollResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Values printed as `[ref]: value`, by reference. */
  readonly values: Map<number, string>;
}

/** Runs mbpoll once (-1) with the given arguments; never throws on a Modbus error, the result tells. */
export function mbpoll(args: readonly string[], timeoutMs = 10_000): Promise<MbpollResult> {
  return new Promise((resolve, reject) => {
    execFile('mbpoll', ['-1', ...args], { timeout: timeoutMs }, (error, stdout, stderr) => {
      if (error && (error as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new Error('mbpoll not found (Debian package mbpoll; scripts/test-deps.sh installs it)'));
        return;
      }
      const values = new Map<number, string>();
      for (const m of stdout.matchAll(/^\[(\d+)\]:\s+(\S+)/gm)) values.set(Number(m[1]), m[2]);
      resolve({ code: error ? Number((error as { code?: unknown }).code ?? 1) : 0, stdout, stderr, values });
    });
  });
}

/** A site file for tests: a master meter without connection, one account A1, a flat tariff, and the given meters. */
export function testSite(metersYaml: string, extra = '', timezone = 'Asia/Shanghai'): Site {
  const text = `site: { id: sim-test, timezone: ${timezone} }
meters:
  - { id: M, role: master }
${metersYaml}
accounts:
  - { id: A1, name: Shop 1, area_m2: 100, tariff: t }
tariffs:
  - id: t
    versions:
      - effective_from: 2026-01-01
        prices: { flat: "1.000000" }
        schedule: [ { periods: [ { from: "00:00", to: "24:00", period: flat } ] } ]
${extra}`;
  return parseSiteYaml(text, 'sim-test.yaml');
}
