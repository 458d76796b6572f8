import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { settleRange } from '../bill/run.ts';
import { ReadingsScanner } from '../readings/scan.ts';
import { addDays } from '../tou/local-date.ts';
import { parseSiteYaml } from '../site/index.ts';
import type { Site } from '../site/index.ts';
import { meterTimeline } from '../tenancy/occupancy.ts';
import type { MeterDayFacts } from './meter-facts.ts';
import { meterDayFacts } from './meter-facts.ts';

/**
 * The statement's "estimated" marks follow billing.md section 2 rule 4 as amended by
 * issue 16 (amendment 11): an interval longer than max_gap whose energy lies inside one
 * cell is that cell's whole, so nothing of it is an estimate; one whose spread divides its
 * energy between cells is. Same readings as testcases/gap-within-one-cell (T1: max_gap
 * 3 h; readings at 00:00, 08:00, 12:00, 20:00 and 04:00 the next day; valley 20-08, peak
 * 08-20): every interval is longer than 3 h, only the last one crosses a cell boundary
 * (midnight), and 2 of its 4 kWh fall on 2026-10-01.
 */
const caseSite = (name: string) => {
  const dir = new URL(`../../testcases/${name}/`, import.meta.url);
  return { dir, site: parseSiteYaml(readFileSync(new URL('site.yaml', dir), 'utf8'), 'site.yaml') };
};
const { dir, site } = caseSite('gap-within-one-cell');

function factsOf(meter: string, day: string, c: { dir: URL; site: Site } = { dir, site }): MeterDayFacts {
  const { dir, site } = c;
  const scanner = new ReadingsScanner(site, 'readings.csv');
  scanner.push(readFileSync(new URL('readings.csv', dir)));
  let out: MeterDayFacts | undefined;
  settleRange(site, scanner.end(), day, addDays(day, 1), {
    onSegments: (mi, cal, seg, acc) => {
      const m = site.meters[mi];
      if (m.id !== meter) return;
      // As the settlement calls it: the tenant meter's occupant changes inside the day are marks.
      const a = cal.start[cal.day.indexOf(cal.days.indexOf(day))];
      const marks = m.role === 'tenant' ? meterTimeline(site, m).map((x) => x.from).filter((t) => t > a && t < a + 86_400_000) : [];
      out = meterDayFacts(m, acc, cal, seg, cal.days.indexOf(day), marks);
    },
  });
  return out!;
}

describe('meterDayFacts: estimated energy (billing.md amendment 11)', () => {
  it('long intervals inside one cell are not estimated; the part of one crossing midnight is', () => {
    const f = factsOf('T1', '2026-10-01');
    expect(f.wh).toBe(22_000);
    expect(f.cells).toEqual([
      { period: 'peak', wh: 12_000, gapWh: 0 },
      // 8 kWh of 00-08 (inside the valley cell) + 2 kWh of 20-04 on this day, of which only the 2 kWh are estimated.
      { period: 'valley', wh: 10_000, gapWh: 2_000 },
    ]);
    // The start is a reading; the end register at midnight is interpolated across the gap.
    expect(f.start).toEqual({ wh: 100_000, ms: Date.parse('2026-10-01T00:00:00+08:00'), estimated: false });
    expect(f.end).toEqual({ wh: 122_000, ms: Date.parse('2026-10-02T00:00:00+08:00'), estimated: true });
  });

  it('the master, read at every cell boundary, has nothing estimated', () => {
    const f = factsOf('M', '2026-10-01');
    expect(f.cells.every((c) => c.gapWh === 0)).toBe(true);
    expect(f.end?.estimated).toBe(false);
  });

  it('on a tenant meter, a long interval across a move of its occupant is an estimate though inside one cell (testcases/gap-across-move-out)', () => {
    const moved = caseSite('gap-across-move-out');
    // T1: 08:00-20:00 (12 kWh) spans A1's move-out at 14:00; 00-08 and 20-24 do not.
    expect(factsOf('T1', '2026-10-01', moved).cells).toEqual([{ period: 'flat', wh: 24_000, gapWh: 12_000 }]);
    // T2: the same long intervals, one occupant all day: nothing estimated.
    expect(factsOf('T2', '2026-10-01', moved).cells).toEqual([{ period: 'flat', wh: 12_000, gapWh: 0 }]);
  });
});

describe('meterDayFacts: gaps split by tariff registers (billing.md amendment 12)', () => {
  it('a day between two frozen readings with registers: nothing estimated, the registers at midnight are the freezes', () => {
    const c = caseSite('gap-tariff-registers');
    const f = factsOf('T1', '2026-10-02', c);
    expect(f.cells).toEqual([
      { period: 'sharp', wh: 3001, gapWh: 0 },
      { period: 'peak', wh: 6003, gapWh: 0 },
      { period: 'flat', wh: 5002, gapWh: 0 },
      { period: 'valley', wh: 10_004, gapWh: 0 },
    ]);
    expect(f.start).toEqual({ wh: 124_500, ms: Date.parse('2026-10-02T00:00:00+08:00'), estimated: false });
    expect(f.end).toEqual({ wh: 148_510, ms: Date.parse('2026-10-03T00:00:00+08:00'), estimated: false });
    // The first day: a live read at 01:00, the freeze at midnight: no estimate either.
    expect(factsOf('T1', '2026-10-01', c).cells.every((x) => x.gapWh === 0)).toBe(true);
  });

  it('a gap of several days: each period is spread over its days, an estimate; the register at midnight too', () => {
    const c = caseSite('gap-tariff-registers-several-days');
    const f = factsOf('T1', '2026-10-01', c);
    expect(f.cells).toEqual([
      { period: 'sharp', wh: 2000, gapWh: 2000 },
      { period: 'peak', wh: 4000, gapWh: 4000 },
      { period: 'flat', wh: 3000, gapWh: 3000 },
      { period: 'valley', wh: 6000, gapWh: 6000 },
    ]);
    // 100.000 kWh + the 15 kWh of 10-01 by the register split (not 24/60 of 38 kWh).
    expect(f.end).toEqual({ wh: 115_000, ms: Date.parse('2026-10-02T00:00:00+08:00'), estimated: true });
  });
});
