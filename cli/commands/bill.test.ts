import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { frozenTouSiteYaml } from '../../collector/test-support/frozen-tou-site.ts';

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

  it('after an outage, a readings CSV with the daily freezes (kwh_t1..kwh_t4) bills as the uninterrupted run, to the fen (issue 16, amendment 12)', async () => {
    // Three DL/T 645 meters on a TOU tariff, one programmed with another register order.
    // `submeter sim --backfill-csv` writes what the simulated meters show hourly: the total
    // and the tariff registers, in whole 0.01 kWh (the total their sum, as the simulated
    // meter answers on the wire). The outage file is what the collector stores when it was
    // down 03-03 10:00 -> 03-06 10:00: the live reads before and after, and the meters'
    // daily freezes at each local midnight in between (the registers at that instant:
    // collector/inputs/dlt645/frozen-fill-tou.test.ts proves the freezes read back equal them).
    const yaml = frozenTouSiteYaml('/dev/ttyUSB0');
    const siteFile = join(tmp, 'frozen-tou.yaml');
    writeFileSync(siteFile, yaml);
    const full = join(tmp, 'uninterrupted.csv');
    const sim = await run(process.execPath, [bin, 'sim', '--site', siteFile, '--backfill-csv', full, '--from', '2026-03-02T00:00:00+08:00', '--to', '2026-03-07T02:00:00+08:00', '--step', '1h'], { cwd: repo });
    expect(sim.stdout).toContain('366 readings of 3 meters');
    const [header, ...rows] = readFileSync(full, 'utf8').trim().split('\n');
    expect(header).toBe('time,meter,kwh,kw,kwh_t1,kwh_t2,kwh_t3,kwh_t4');
    const STOP = Date.parse('2026-03-03T10:00:00+08:00');
    const BACK = Date.parse('2026-03-06T10:00:00+08:00');
    const at = (row: string) => Date.parse(row.slice(0, row.indexOf(',')));
    const midnight = (t: number) => (t + 8 * 3_600_000) % 86_400_000 === 0;
    const kept = rows.filter((r) => !(at(r) > STOP && at(r) < BACK) || midnight(at(r)));
    expect(kept.filter((r) => at(r) > STOP && at(r) < BACK)).toHaveLength(3 * 3); // 3 freezes x 3 meters
    const outage = join(tmp, 'outage.csv');
    writeFileSync(outage, `${[header, ...kept].join('\n')}\n`);
    // The same freezes without their tariff registers: what billing had before amendment 12.
    const blindFile = join(tmp, 'outage-without-registers.csv');
    writeFileSync(blindFile, `${[header, ...kept.map((r) => (at(r) > STOP && at(r) < BACK ? r.replace(/(,[^,]*){4}$/, ',,,,') : r))].join('\n')}\n`);

    const range = ['--site', siteFile, '--from', '2026-03-02', '--to', '2026-03-07'];
    const [ref, gap, blind] = await Promise.all([bill([...range, '--readings', full]), bill([...range, '--readings', outage]), bill([...range, '--readings', blindFile])]);
    expect([ref.code, gap.code, blind.code]).toEqual([0, 0, 0]);
    type Bill = { accounts: { account: string; total_amount: string; lines: { period: string; kwh: string; amount: string }[] }[]; quality: { kind: string }[] };
    const refBill = JSON.parse(ref.stdout) as Bill;
    const gapBill = JSON.parse(gap.stdout) as Bill;
    // Every line to the Wh and the fen, every total, nothing flagged: the same bytes.
    expect(gapBill.accounts.map((a) => [a.account, a.total_amount, a.lines])).toEqual(refBill.accounts.map((a) => [a.account, a.total_amount, a.lines]));
    expect(gapBill.quality).toEqual([]);
    expect(gap.stdout).toBe(ref.stdout);
    // A real TOU bill: all four periods on each account.
    for (const a of gapBill.accounts) expect(new Set(a.lines.map((l) => l.period))).toEqual(new Set(['sharp', 'peak', 'flat', 'valley']));
    // Without the registers the outage days are split linearly: other figures, flagged.
    const blindBill = JSON.parse(blind.stdout) as Bill;
    expect(blindBill.quality.filter((q) => q.kind === 'gap').length).toBe(3 * 4);
    expect(blindBill.accounts.map((a) => a.lines)).not.toEqual(refBill.accounts.map((a) => a.lines));
  }, 60_000);

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
