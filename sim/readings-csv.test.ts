import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseSiteYaml } from '../core/index.ts';
import { simulateReadings } from './load-model.ts';
import { READINGS_CSV_HEADER, whToKwhText, writeReadingsCsv } from './readings-csv.ts';

const site = parseSiteYaml(readFileSync(new URL('../examples/site.example.yaml', import.meta.url), 'utf8'), 'examples/site.example.yaml');
const dir = join(fileURLToPath(new URL('../.run/tmp/', import.meta.url)), `readings-csv-${randomBytes(6).toString('hex')}`);
mkdirSync(dir, { recursive: true });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('readings CSV backfill', () => {
  it('prints integer Wh as kWh with exactly 3 decimals, without float formatting', () => {
    expect(whToKwhText(0)).toBe('0.000');
    expect(whToKwhText(7)).toBe('0.007');
    expect(whToKwhText(1_234_567)).toBe('1234.567');
    expect(whToKwhText(100_000_000_000 - 1)).toBe('99999999.999');
    expect(() => whToKwhText(1.5)).toThrow(/not a non-negative integer/);
  });

  it('writes the same rows simulateReadings yields, in billing.md format', async () => {
    const opts = { from: Date.UTC(2026, 6, 1), to: Date.UTC(2026, 6, 1, 6), stepMs: 15 * 60_000, seed: 2, epoch: Date.UTC(2026, 5, 1) };
    const path = join(dir, 'r.csv');
    const n = await writeReadingsCsv(site, opts, path);
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    expect(lines[0]).toBe(READINGS_CSV_HEADER);
    expect(n).toBe(24 * site.meters.length);
    expect(lines).toHaveLength(n + 1);
    const rows = [...simulateReadings(site, opts)];
    lines.slice(1).forEach((line, i) => {
      const [time, meter, kwh] = line.split(',');
      expect(time).toBe(new Date(rows[i].time).toISOString());
      expect(meter).toBe(rows[i].meter);
      expect(kwh).toMatch(/^\d+\.\d{3}$/);
      expect(Number(kwh.replace('.', ''))).toBe(rows[i].wh);
    });
  });

  it('names the file it cannot write', async () => {
    await expect(writeReadingsCsv(site, { from: 0, to: 0 }, join(dir, 'no/such/dir/r.csv'))).rejects.toThrow(/cannot write readings CSV .*no\/such\/dir/);
  });
});
