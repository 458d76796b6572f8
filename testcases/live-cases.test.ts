import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hoursText, liveFigures, liveInputsFromReadings, moneyText, parseRfc3339, parseSiteYaml, ReadingsScanner, zoneOf } from '../core/index.ts';
import type { ReadingRow } from '../core/index.ts';
import { readPaymentsFile } from '../cli/commands/bill.ts';

/**
 * Hand-worked live figures (billing.md section 5): each testcases/<name>/ with a `live` file
 * (`--now <RFC 3339> [--settled-through <date>]`) holds a site, readings, optional payments
 * and expected-live.json, worked out by hand in its README.md.
 */
const root = import.meta.dirname;
const cases = readdirSync(root, { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(root, d.name, 'live')))
  .map((d) => d.name)
  .sort();

export async function liveCase(dir: string): Promise<string> {
  const site = parseSiteYaml(readFileSync(join(dir, 'site.yaml'), 'utf8'), 'site.yaml');
  const scanner = new ReadingsScanner(site, 'readings.csv');
  scanner.push(readFileSync(join(dir, 'readings.csv')));
  const store = scanner.end();
  const rows: ReadingRow[] = [];
  site.meters.forEach((m, i) => {
    const s = store.series(i);
    for (let k = 0; k < s.time.length; k++) rows.push({ meter: m.id, time: s.time[k], wh: s.wh[k] });
  });
  const payments = existsSync(join(dir, 'payments.csv')) ? await readPaymentsFile(join(dir, 'payments.csv')) : [];
  const words = readFileSync(join(dir, 'live'), 'utf8').trim().split(/\s+/);
  const arg = (k: string) => (words.includes(k) ? words[words.indexOf(k) + 1] : undefined);
  const now = parseRfc3339(arg('--now') ?? '');
  if (typeof now !== 'number') throw new Error(`${dir}/live: --now: ${now}`);
  const live = liveFigures(site, liveInputsFromReadings(site, rows, payments, now, arg('--settled-through')));
  const out = {
    now: zoneOf(site.timezone).format(now),
    period_now: live.periodNow,
    accounts: live.accounts.map((a) => ({
      account: a.account,
      closing: moneyText(a.closingFen),
      provisional: moneyText(a.provisionalFen),
      today: moneyText(a.todayFen),
      balance: moneyText(a.balanceFen),
      spent_24h: moneyText(a.spent24Fen),
      hours_left: hoursText(a.hoursLeft),
      cost_per_hour: moneyText(a.costPerHourFen),
      status: a.status,
    })),
  };
  return `${JSON.stringify(out, null, 2)}\n`;
}

describe('live-figure testcases', () => {
  it('has hand-worked live cases', () => expect(cases.length).toBeGreaterThanOrEqual(1));
  for (const name of cases) it(name, async () => expect(await liveCase(join(root, name))).toBe(readFileSync(join(root, name, 'expected-live.json'), 'utf8')));
});
