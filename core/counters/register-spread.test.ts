import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { storeReadings } from '../bill/run.ts';
import { ReadingsScanner } from '../readings/scan.ts';
import { parseSiteYaml } from '../site/index.ts';
import type { Site } from '../site/index.ts';
import type { ReadingRow } from '../readings/csv.ts';
import { acceptMeterSeries } from './meter-changes.ts';
import { spreadByRegisters } from './register-spread.ts';

/**
 * billing.md section 2 rule 5 (amendment 12) at the level of the series billing splits:
 * the registers a gap's tariff registers imply where the period changes, worked by hand in
 * testcases/gap-tariff-registers/README.md, and the corners the bill cases do not show.
 */
const caseDir = new URL('../../testcases/gap-tariff-registers/', import.meta.url);
const site = parseSiteYaml(readFileSync(new URL('site.yaml', caseDir), 'utf8'), 'site.yaml');
const at = (s: string) => Date.parse(s);

function spreadOf(s: Site, meter: string, rows: readonly ReadingRow[] | ReadingsScanner) {
  const store = rows instanceof ReadingsScanner ? rows.end() : storeReadings(s, rows);
  const mi = s.meters.findIndex((m) => m.id === meter);
  const raw = store.series(mi);
  return spreadByRegisters(s, s.meters[mi], acceptMeterSeries(s.meters[mi], raw), raw.tariff);
}

describe('spreadByRegisters', () => {
  it('adds the registers implied at each period change inside a gap (the README of gap-tariff-registers)', () => {
    const scanner = new ReadingsScanner(site, 'readings.csv');
    scanner.push(readFileSync(new URL('readings.csv', caseDir)));
    const s = spreadOf(site, 'T1', scanner);
    const day1 = [...s.time].map((t, i) => [new Date(t).toISOString(), s.wh[i], s.delta[i]]).filter(([t]) => (t as string) < '2026-10-01T16:00:00.000Z');
    expect(day1).toEqual([
      ['2026-09-30T16:00:00.000Z', 100_000, 0],
      ['2026-09-30T17:00:00.000Z', 100_500, 500],
      // 01:00 -> 24:00: valley 7 h of 11 -> round(10000 x 7 / 11) = 6364, then peak, flat, sharp.
      ['2026-10-01T00:00:00.000Z', 106_864, 6364],
      ['2026-10-01T04:00:00.000Z', 112_864, 6000],
      ['2026-10-01T10:00:00.000Z', 117_864, 5000],
      ['2026-10-01T12:00:00.000Z', 120_864, 3000],
    ]);
    // Nothing is an estimate, no gap flag.
    expect(s.estimated).toBeUndefined();
    expect(s.flags).toEqual([]);
    // T2 (multiplier 40): the implied raw registers, each part x 40.
    const t2 = (() => {
      const sc = new ReadingsScanner(site, 'readings.csv');
      sc.push(readFileSync(new URL('readings.csv', caseDir)));
      return spreadOf(site, 'T2', sc);
    })();
    expect([...t2.wh.subarray(0, 6)]).toEqual([50_000, 50_200, 50_350, 50_450, 50_500, 50_600]);
    expect([...t2.delta.subarray(0, 6)]).toEqual([0, 8000, 6000, 4000, 2000, 4000]);
  });

  const one = (tariffWh: ReadingRow['tariffWh'], time: string, wh: number): ReadingRow => ({ time: at(time), meter: 'T1', wh, ...(tariffWh ? { tariffWh } : {}) });

  it('several rows at one instant: the kept total, each register the largest read with it, whatever the order', () => {
    const rows = [
      one({ 1: 10_000, 2: 20_000, 3: 30_000, 4: 40_000 }, '2026-10-01T00:00:00+08:00', 100_000),
      // Two reads of the freeze (e.g. a retried walk): the same total, one register each later.
      one({ 1: 13_000, 2: 26_000, 3: 35_000, 4: 49_000 }, '2026-10-02T00:00:00+08:00', 124_000),
      one({ 1: 13_000, 2: 25_000, 3: 35_000, 4: 50_000 }, '2026-10-02T00:00:00+08:00', 124_000),
      // A smaller total at that instant is dropped by rule 1 (conflict), and so are its registers.
      one({ 1: 99_000, 2: 0, 3: 0, 4: 0 }, '2026-10-02T00:00:00+08:00', 123_000),
    ];
    for (const order of [rows, [...rows].reverse()]) {
      const s = spreadOf(site, 'T1', order);
      // r = 3000, 6000, 5000, 10000 (R = D = 24000): valley 8 h of 12 at 08:00.
      expect([...s.wh]).toEqual([100_000, 106_667, 112_667, 117_667, 120_667, 124_000]);
      expect(s.flags.map((f) => f.kind)).toEqual(['conflict']);
    }
  });

  it('leftover Wh to the largest remainder, ties by the larger register delta, then period order', () => {
    const perPeriod = (r: ReadingRow['tariffWh'], d: number) => {
      const s = spreadOf(site, 'T1', [one({ 1: 0, 2: 0, 3: 0, 4: 0 }, '2026-10-01T00:00:00+08:00', 0), one(r, '2026-10-02T00:00:00+08:00', d)]);
      const per: Record<string, number> = {};
      const period = (t: number) => ({ 0: 'valley', 8: 'peak', 12: 'flat', 18: 'sharp', 20: 'valley' })[(new Date(t).getUTCHours() + 8) % 24] as string;
      for (let i = 1; i < s.time.length; i++) per[period(s.time[i - 1])] = (per[period(s.time[i - 1])] ?? 0) + s.delta[i];
      return per;
    };
    // D = 5 Wh, r = 1 each (|D - R| = 1 <= 50): quotas 1.25, remainders and deltas equal: period order.
    expect(perPeriod({ 1: 1, 2: 1, 3: 1, 4: 1 }, 5)).toEqual({ sharp: 2, peak: 1, flat: 1, valley: 1 });
    // D = 6 Wh, r = sharp 1, peak 3: quotas 1.5 and 4.5, equal remainders: the larger delta.
    expect(perPeriod({ 1: 1, 2: 3, 3: 0, 4: 0 }, 6)).toEqual({ sharp: 1, peak: 5, flat: 0, valley: 0 });
  });

  it('keeps the linear spread where rule 5 does not apply: a rollover, a register missing at one end', () => {
    const small = parseSiteYaml(readFileSync(new URL('site.yaml', caseDir), 'utf8').replace('max_gap: 2h }', 'max_gap: 2h, register_modulus_kwh: 1000 }'), 'site.yaml');
    const regs = { 1: 10_000, 2: 20_000, 3: 30_000, 4: 40_000 };
    const later = { 1: 13_000, 2: 26_000, 3: 35_000, 4: 50_000 };
    // The total register rolled over 1000 kWh: rule 3, not rule 2.
    const rolled = spreadOf(small, 'T1', [one(regs, '2026-10-01T00:00:00+08:00', 990_000), one(later, '2026-10-02T00:00:00+08:00', 14_000)]);
    expect(rolled.time.length).toBe(2);
    expect(rolled.flags.map((f) => f.kind).sort()).toEqual(['gap', 'rollover']);
    // The later reading has no valley register.
    const missing = spreadOf(site, 'T1', [one(regs, '2026-10-01T00:00:00+08:00', 100_000), one({ 1: 13_000, 2: 26_000, 3: 35_000 }, '2026-10-02T00:00:00+08:00', 124_000)]);
    expect(missing.time.length).toBe(2);
    expect(missing.flags.map((f) => f.kind)).toEqual(['gap']);
    expect([...missing.estimated!]).toEqual([0, 1]);
  });
});
