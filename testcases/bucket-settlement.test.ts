import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { addDays, parseSiteYaml, ReadingsScanner, zoneOf } from '../core/index.ts';
import type { LocalDate, ReadingRow, TariffRegisterWh } from '../core/index.ts';
import { proveBucketSettlement } from '../core/settle/bucket-proof.ts';
import { expectSameDay } from '../test/bucket-proof.ts';

/**
 * Issue 15: the nightly settlement reads the rollup's 15-minute buckets where they are exact
 * (core/settle/bucket-day.ts). Proof on every testcase: its readings replayed through the
 * rollup (deliveries of 1 to 31 minutes), each day settled once its grace has passed and
 * again with every reading, from buckets where bucketSettlementProblem allows and from raw
 * readings elsewhere, equals the raw-reading settlement of the same day to the Wh and the
 * fen: charge lines, cells, shares, partial occupancy, flags and the statement's meter facts.
 * The error cases are refused before any settlement (billing-cases.test.ts pins how).
 */

const root = import.meta.dirname;
const cases = readdirSync(root, { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(root, d.name, 'site.yaml')) && existsSync(join(root, d.name, 'readings.csv')))
  .map((d) => d.name)
  .sort();

function load(dir: string): { site: ReturnType<typeof parseSiteYaml>; rows: ReadingRow[] } {
  const site = parseSiteYaml(readFileSync(join(dir, 'site.yaml'), 'utf8'), 'site.yaml');
  const scanner = new ReadingsScanner(site, 'readings.csv');
  scanner.push(readFileSync(join(dir, 'readings.csv')));
  const store = scanner.end();
  const rows: ReadingRow[] = [];
  site.meters.forEach((m, i) => {
    const s = store.series(i);
    // The tariff registers read with a reading (billing.md section 2 rule 5), by instant and total.
    const regs = new Map<string, TariffRegisterWh>();
    const t = s.tariff;
    if (t) {
      for (let k = 0; k < t.time.length; k++) {
        const r: Partial<Record<1 | 2 | 3 | 4, number>> = {};
        for (const n of [1, 2, 3, 4] as const) if (!Number.isNaN(t.reg[k * 4 + n - 1])) r[n] = t.reg[k * 4 + n - 1];
        regs.set(`${t.time[k]}|${t.wh[k]}`, r);
      }
    }
    for (let k = 0; k < s.time.length; k++) {
      const tw = regs.get(`${s.time[k]}|${s.wh[k]}`);
      rows.push({ time: s.time[k], meter: m.id, wh: s.wh[k], ...(tw ? { tariffWh: tw } : {}) });
    }
  });
  return { site, rows };
}

const totals = { bucketMeterDays: 0, rawMeterDays: 0, days: 0, errorCases: 0 };

describe('settlement from buckets = settlement from raw readings, every testcase', () => {
  for (const name of cases) {
    const dir = join(root, name);
    it(name, () => {
      if (existsSync(join(dir, 'expected-error.txt'))) {
        // Refused while reading its input: nothing is ever settled from it.
        let refused = false;
        try {
          load(dir);
        } catch {
          refused = true;
        }
        const payments = existsSync(join(dir, 'payments.csv'));
        expect(refused || payments, `${name} must be refused by its site or readings, or be a payments error`).toBe(true);
        totals.errorCases++;
        return;
      }
      const { site, rows } = load(dir);
      const zone = zoneOf(site.timezone);
      const first = zone.dateOf(Math.min(...rows.map((r) => r.time)));
      const last = zone.dateOf(Math.max(...rows.map((r) => r.time)));
      const days: LocalDate[] = [];
      for (let d = first; d <= last; d = addDays(d, 1)) days.push(d);
      const proofs = proveBucketSettlement(site, rows, { days });
      expect(proofs.length).toBeGreaterThanOrEqual(days.length);
      for (const p of proofs) {
        expectSameDay(p);
        totals.bucketMeterDays += p.bucketMeters.length;
        totals.rawMeterDays += p.rawMeters.length;
        totals.days++;
      }
    });
  }

  it('the proof is not vacuous: most meter-days above were settled from buckets, the rest from raw readings for a stated reason', () => {
    expect(totals.days).toBeGreaterThan(90);
    expect(totals.bucketMeterDays).toBeGreaterThan(totals.rawMeterDays);
    expect(totals.rawMeterDays).toBeGreaterThan(0);
    expect(totals.errorCases).toBeGreaterThan(0);
  });
});
