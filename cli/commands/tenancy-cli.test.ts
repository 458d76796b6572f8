import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

/** `submeter check-site --against` and `submeter final-statement` as a user runs them (billing.md section 11). */

const run = promisify(execFile);
const repo = join(import.meta.dirname, '../..');
const bin = join(repo, 'bin/submeter.js');
mkdirSync(join(repo, '.run/tmp'), { recursive: true });
const tmp = mkdtempSync(join(repo, '.run/tmp/tenancy-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const c = join(repo, 'testcases/move-out-mid-month');

async function submeter(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [bin, ...args], { cwd: repo });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('submeter check-site --against', () => {
  it('prints each change and the settled days it will re-settle', async () => {
    const next = join(tmp, 'corrected.yaml');
    writeFileSync(next, readFileSync(join(c, 'site.yaml'), 'utf8').replace('move_out: "2026-10-02T14:00:00+08:00"', 'move_out: "2026-10-01T10:00:00+08:00"').replace('peak: "1.000000"', 'peak: "1.100000"'));
    const r = await submeter(['check-site', '--site', next, '--against', join(c, 'site.yaml')]);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').slice(1)).toEqual([
      `against ${join(c, 'site.yaml')}: the workers will settle again (revision lines with these reasons):`,
      '  account A1 move_out 2026-10-02T14:00:00+08:00 -> 2026-10-01T10:00:00+08:00: 2026-10-01 .. 2026-10-02',
      '  tariff t from 2026-01-01: peak 1.000000 -> 1.100000: settled days from 2026-01-01 on',
      '',
    ]);
  });

  it('the example file against itself re-settles nothing; a new time zone is refused (exit 2)', async () => {
    const ex = join(repo, 'examples/site.example.yaml');
    expect((await submeter(['check-site', '--site', ex, '--against', ex])).stdout).toMatch(/no change touches a settled day\n$/);
    const tz = join(tmp, 'tz.yaml');
    writeFileSync(tz, readFileSync(join(c, 'site.yaml'), 'utf8').replace('Asia/Shanghai', 'Asia/Tokyo'));
    const r = await submeter(['check-site', '--site', tz, '--against', join(c, 'site.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot replace .* in a running pipeline: time zone Asia\/Shanghai -> Asia\/Tokyo/);
  });
});

describe('submeter final-statement', () => {
  it('prints the hand-worked final statement', async () => {
    const r = await submeter(['final-statement', '--site', join(c, 'site.yaml'), '--readings', join(c, 'readings.csv'), '--payments', join(c, 'payments.csv'), '--account', 'A1']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(readFileSync(join(c, 'expected-final.json'), 'utf8'));
  });

  it('an account without move_out has none (exit 2)', async () => {
    const r = await submeter(['final-statement', '--site', join(c, 'site.yaml'), '--readings', join(c, 'readings.csv'), '--account', 'B']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/B has no move_out/);
  });
});
