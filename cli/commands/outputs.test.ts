import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

/** Issue 11, manager outputs on the command line: --format table, the empty-range warning, --version. */
const run = promisify(execFile);
const repo = join(import.meta.dirname, '../..');
const c = join(repo, 'testcases/reconcile-cap-own-mix');

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [join(repo, 'bin/submeter.js'), ...args], { cwd: repo });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
const inputs = (from = '2026-10-01', to = '2026-10-02') => ['--site', join(c, 'site.yaml'), '--readings', join(c, 'readings.csv'), '--from', from, '--to', to];

describe('submeter outputs for people', () => {
  it('bill --format table: lines, totals and balances aligned; JSON stays the default', async () => {
    const [t, j] = await Promise.all([cli(['bill', ...inputs(), '--format', 'table']), cli(['bill', ...inputs()])]);
    expect(t.code).toBe(0);
    expect(t.stdout).toContain('Bill recon-mix  2026-10-01 .. 2026-10-02 (to is exclusive), CNY');
    expect(t.stdout).toContain('\nA2\n  kind   pool  period     kWh     price  amount\n  own          peak    24.000  1.050000   25.20\n  own          valley  24.000  0.525000   12.60\n  total                48.000             37.80\n  opening 0.00   payments 0.00   charges 37.80   closing -37.80\n');
    expect(JSON.parse(j.stdout).accounts).toHaveLength(3);
  });

  it('reconcile and advise --format table', async () => {
    const r = await cli(['reconcile', ...inputs(), '--format', 'table']);
    expect(r.code).toBe(3); // A3 is over the cap, as in JSON
    expect(r.stdout).toContain('  account     kWh  amount   average  utility    cap  over cap\n  A1       24.000   18.00  0.750000    18.00  18.90  ok\n  A2       48.000   37.80  0.787500    36.00  37.80  ok\n  A3       24.000   21.60  0.900000    12.00  12.60  OVER\n');
    const a = await cli(['advise', ...inputs(), '--format', 'table']);
    expect(a.code).toBe(0);
    expect(a.stdout).toContain('  sharp+peak 12.000 kWh; moving 2.400 kWh to valley saves 1.20; night base load 1.000 kW\n');
    expect((await cli(['advise', ...inputs(), '--format', 'yaml'])).code).toBe(2);
  });

  it('a range without readings warns on stderr and names the span of the file', async () => {
    const r = await cli(['bill', ...inputs('2026-12-01', '2027-01-01')]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`submeter: warning: no readings in 2026-12-01 .. 2027-01-01 (to is exclusive): ${join(c, 'readings.csv')} runs from 2026-10-01T00:00:00+08:00 to 2026-10-02T00:00:00+08:00; nothing is billed`);
    expect((await cli(['bill', ...inputs()])).stderr).not.toContain('warning');
  });

  it('--version prints the package version', async () => {
    const r = await cli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });
});
