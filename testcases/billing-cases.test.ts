import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { billFromSettlement, billRunJson, computeBillRun, computeFinalStatement, finalStatementJson, parseSiteYaml, ReadingsScanner, reconcile, settleRange } from '../core/index.ts';
import { readPaymentsFile } from '../cli/commands/bill.ts';

/**
 * Table-driven billing cases (style.md practice 6): each testcases/<name>/ holds a site,
 * readings, optional payments, the bill's args and the bill worked out by hand
 * (expected.json, compared byte for byte) or the error it must stop with
 * (expected-error.txt: file, line and field).
 */
const root = import.meta.dirname;
// Bill cases have `args`; live-figure cases (`live`) run in live-cases.test.ts.
const cases = readdirSync(root, { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(root, d.name, 'args')))
  .map((d) => d.name)
  .sort();

function argsOf(dir: string): { from: string; to: string; final?: string } {
  const words = readFileSync(join(dir, 'args'), 'utf8').trim().split(/\s+/);
  const get = (k: string) => (words.includes(k) ? words[words.indexOf(k) + 1] : undefined);
  return { from: get('--from')!, to: get('--to')!, final: get('--final') };
}

/** The reconciliation of a case (billing.md section 8) as `submeter reconcile` prints it. */
export async function reconcileCase(dir: string): Promise<string> {
  const site = parseSiteYaml(readFileSync(join(dir, 'site.yaml'), 'utf8'), 'site.yaml');
  const scanner = new ReadingsScanner(site, 'readings.csv');
  scanner.push(readFileSync(join(dir, 'readings.csv')));
  const { from, to } = argsOf(dir);
  const settled = settleRange(site, scanner.end(), from, to);
  return `${JSON.stringify(reconcile(settled, billFromSettlement(settled, [])), null, 2)}\n`;
}

export async function billCase(dir: string): Promise<string> {
  const site = parseSiteYaml(readFileSync(join(dir, 'site.yaml'), 'utf8'), 'site.yaml');
  const scanner = new ReadingsScanner(site, 'readings.csv');
  scanner.push(readFileSync(join(dir, 'readings.csv')));
  const store = scanner.end();
  const payments = existsSync(join(dir, 'payments.csv')) ? await readPaymentsFile(join(dir, 'payments.csv')) : [];
  const { from, to } = argsOf(dir);
  return billRunJson(computeBillRun(site, store, payments, from, to));
}

/** `--final ACCOUNT` in args: that account's final statement (billing.md section 11), expected-final.json. */
async function finalCase(dir: string, account: string): Promise<string> {
  const site = parseSiteYaml(readFileSync(join(dir, 'site.yaml'), 'utf8'), 'site.yaml');
  const scanner = new ReadingsScanner(site, 'readings.csv');
  scanner.push(readFileSync(join(dir, 'readings.csv')));
  const payments = existsSync(join(dir, 'payments.csv')) ? await readPaymentsFile(join(dir, 'payments.csv')) : [];
  return finalStatementJson(computeFinalStatement(site, scanner.end(), payments, account));
}

describe('billing testcases', () => {
  it('has the cases the issue lists', () => {
    expect(cases.length).toBeGreaterThanOrEqual(18);
  });
  for (const name of cases) {
    const dir = join(root, name);
    it(name, async () => {
      const errorFile = join(dir, 'expected-error.txt');
      if (existsSync(errorFile)) {
        await expect(billCase(dir)).rejects.toThrow(readFileSync(errorFile, 'utf8').trim());
        return;
      }
      expect(await billCase(dir)).toBe(readFileSync(join(dir, 'expected.json'), 'utf8'));
      const final = argsOf(dir).final;
      if (final !== undefined) expect(await finalCase(dir, final)).toBe(readFileSync(join(dir, 'expected-final.json'), 'utf8'));
      if (existsSync(join(dir, 'expected-reconcile.json'))) expect(await reconcileCase(dir)).toBe(readFileSync(join(dir, 'expected-reconcile.json'), 'utf8'));
    });
  }
});
