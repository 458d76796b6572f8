import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const repo = join(import.meta.dirname, '../..');
const bin = join(repo, 'bin/submeter.js');
mkdirSync(join(repo, '.run/tmp'), { recursive: true });
const tmp = mkdtempSync(join(repo, '.run/tmp/bill-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function bill(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [bin, 'bill', ...args], { cwd: repo, maxBuffer: 64 << 20, env: { ...process.env, ...env } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('submeter bill', () => {
  const c = join(repo, 'testcases/pools-area-consumption-zero-fallback');
  const args = (readings: string) => ['--site', join(c, 'site.yaml'), '--readings', readings, '--from', '2026-10-01', '--to', '2026-10-03'];

  it('prints the section-6 JSON on stdout only, byte-identical across runs and row orders', async () => {
    const lines = readFileSync(join(c, 'readings.csv'), 'utf8').trim().split('\n');
    const shuffled = [lines[0], ...lines.slice(1).reverse(), ...lines.slice(1)].join('\r\n');
    writeFileSync(join(tmp, 'shuffled.csv'), shuffled);
    const [a, b] = await Promise.all([bill(args(join(c, 'readings.csv'))), bill(args(join(tmp, 'shuffled.csv')))]);
    expect(a.code).toBe(0);
    expect(a.stdout).toBe(readFileSync(join(c, 'expected.json'), 'utf8'));
    expect(b.stdout).toBe(a.stdout);
  });

  it('gives one CSV row per line item with --format csv', async () => {
    const r = await bill([...args(join(c, 'readings.csv')), '--format', 'csv']);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').slice(0, 3)).toEqual(['account,kind,pool,period,kwh,price,amount', 'A1,own,,flat,20.000,1.000000,20.00', 'A1,common,hall,flat,0.666,1.000000,0.66']);
  });

  it('exits non-zero naming file, line and field; nothing on stdout', async () => {
    writeFileSync(join(tmp, 'bad.csv'), 'time,meter,kwh\n2026-10-01T00:00:00+08:00,M,0\n2026-10-01T00:00:00+08:00,NOPE,1\n');
    const [bad, date] = await Promise.all([bill(args(join(tmp, 'bad.csv'))), bill(['--site', join(c, 'site.yaml'), '--readings', join(tmp, 'bad.csv'), '--from', '2026-10-32', '--to', '2026-11-01'])]);
    expect(bad.code).not.toBe(0);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toContain(`${join(tmp, 'bad.csv')}:3: meter: unknown meter 'NOPE'`);
    expect(date.code).not.toBe(0);
    expect(date.stderr).toContain('--from: must be a local date');
  });

  it('parses a file in two halves on two threads with the same result and absolute line numbers', async () => {
    const lines = readFileSync(join(c, 'readings.csv'), 'utf8').trim().split('\n');
    writeFileSync(join(tmp, 'halves.csv'), `${lines.join('\n')}\n`);
    writeFileSync(join(tmp, 'halves-bad.csv'), `${[...lines, lines[1], '2026-10-01T00:00:00+08:00,T1,x'].join('\n')}\n`);
    const split = { SUBMETER_BILL_THREADS: '2', SUBMETER_BILL_SPLIT_BYTES: '1' };
    const [ok, bad] = await Promise.all([bill(args(join(tmp, 'halves.csv')), split), bill(args(join(tmp, 'halves-bad.csv')), split)]);
    expect(ok.stdout).toBe(readFileSync(join(c, 'expected.json'), 'utf8'));
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain(`halves-bad.csv:${lines.length + 2}: kwh:`);
  });

  it('tariff registers (kwh_t1..kwh_t4) reach the bill, in one pass and in two halves on two threads (billing.md amendment 12)', async () => {
    const g = join(repo, 'testcases/gap-tariff-registers');
    const gargs = ['--site', join(g, 'site.yaml'), '--readings', join(g, 'readings.csv'), '--from', '2026-10-01', '--to', '2026-10-04'];
    const split = { SUBMETER_BILL_THREADS: '2', SUBMETER_BILL_SPLIT_BYTES: '1' };
    const [one, two] = await Promise.all([bill(gargs), bill(gargs, split)]);
    expect(one.stdout).toBe(readFileSync(join(g, 'expected.json'), 'utf8'));
    expect(two.stdout).toBe(one.stdout);
  });

  it('dates: the supported range at its edges (issue 11), exit 2 outside it', async () => {
    const site = ['--site', join(c, 'site.yaml'), '--readings', join(c, 'readings.csv')];
    const [before, first, after] = await Promise.all([
      bill([...site, '--from', '1999-12-31', '--to', '2000-01-02']),
      bill([...site, '--from', '2000-01-01', '--to', '2000-01-02']),
      bill([...site, '--from', '2199-12-30', '--to', '2200-01-01']),
    ]);
    expect(before.code).toBe(2);
    expect(before.stderr).toContain('--from: 1999-12-31 is outside the supported dates 2000-01-01 to 2199-12-31');
    expect(first.code, first.stderr).toBe(0); // nothing to bill there: a warning, not an error
    expect(first.stderr).toContain('warning: no readings in 2000-01-01 .. 2000-01-02');
    expect(after.code).toBe(2);
    expect(after.stderr).toContain('--to: 2200-01-01 is outside the supported dates');
  });
});
