import { expect } from 'vitest';
import { sortedFlags } from '../core/settle/bucket-proof.ts';
import type { DayProof } from '../core/settle/bucket-proof.ts';

/** The day settled from buckets (where allowed) equals the day settled from raw readings: lines, cells, shares, occupancy, flags, statement facts. */
export function expectSameDay(p: DayProof): void {
  const what = `${p.day} (${p.when}; from buckets: ${p.bucketMeters.join(', ') || 'none'})`;
  expect(p.mixed.settlement.lines, what).toEqual(p.raw.settlement.lines);
  expect(p.mixed.settlement.cells, what).toEqual(p.raw.settlement.cells);
  expect(p.mixed.settlement.shares, what).toEqual(p.raw.settlement.shares);
  expect(p.mixed.settlement.occupancy, what).toEqual(p.raw.settlement.occupancy);
  expect(sortedFlags(p.mixed.flags), what).toEqual(sortedFlags(p.raw.flags));
  expect(p.mixed.facts, what).toEqual(p.raw.facts);
}
