import { describe, expect, it } from 'vitest';
import { addDays, dateProblem, dateRangeProblem, END_INSTANT_MS, epochDay, FIRST_INSTANT_MS, fromEpochDay, instantProblem, monthProblem, parseRfc3339 } from './index.ts';

describe('the supported date range (core/date-range.ts)', () => {
  it('accepts 2000-01-01 to 2199-12-31 and refuses the days just outside, naming the range', () => {
    expect(dateProblem('2000-01-01')).toBeUndefined();
    expect(dateProblem('2199-12-31')).toBeUndefined();
    expect(dateProblem('1999-12-31')).toBe('1999-12-31 is outside the supported dates 2000-01-01 to 2199-12-31');
    expect(dateProblem('2200-01-01')).toMatch(/outside the supported dates/);
    expect(dateProblem('0001-01-01')).toMatch(/outside the supported dates/);
    expect(dateProblem('10000-01-01')).toMatch(/must be a local date YYYY-MM-DD/);
    expect(dateProblem('2026-02-29')).toMatch(/no such day/);
    expect(dateProblem('2028-02-29')).toBeUndefined();
    expect(monthProblem('2000-01')).toBeUndefined();
    expect(monthProblem('2199-12')).toBeUndefined();
    expect(monthProblem('0099-12')).toMatch(/outside/);
    expect(monthProblem('2026-13')).toMatch(/no such month/);
  });

  it('ranges: from before to, both inside', () => {
    expect(dateRangeProblem('2000-01-01', '2199-12-31')).toBeUndefined();
    expect(dateRangeProblem('0001-01-01', '0001-01-02')).toEqual({ field: 'from', message: expect.stringMatching(/outside/) });
    expect(dateRangeProblem('2026-01-02', '2026-01-01')).toEqual({ field: 'to', message: 'must be after from (2026-01-02), got 2026-01-01' });
  });

  it('RFC 3339 times outside the range are refused with a reason, at the edges of the range too', () => {
    expect(parseRfc3339('2000-01-01T00:00:00+08:00')).toBe(Date.parse('1999-12-31T16:00:00Z'));
    expect(parseRfc3339('2199-12-31T23:59:59-12:00')).toBe(Date.parse('2200-01-01T11:59:59Z'));
    expect(parseRfc3339('1999-12-31T23:59:59Z')).toMatch(/outside the supported dates/);
    expect(parseRfc3339('2200-01-01T00:00:00Z')).toMatch(/outside the supported dates/);
    expect(parseRfc3339('0100-01-01T00:00:00Z')).toMatch(/outside the supported dates/);
    expect(parseRfc3339('9999-01-01T00:00:00Z')).toMatch(/outside the supported dates/);
    expect(instantProblem(Date.parse('2026-01-01T00:00:00Z'))).toBeUndefined();
    expect(instantProblem(FIRST_INSTANT_MS - 1)).toMatch(/outside/);
    expect(instantProblem(END_INSTANT_MS)).toMatch(/outside/);
    expect(instantProblem(0)).toMatch(/outside/);
  });
});

describe('local dates without the Date.UTC year trap', () => {
  it('years 0-99 are not 1900-1999, and dates always print with four digits', () => {
    expect(epochDay('0001-01-01')).toBe(-719162);
    expect(epochDay('0099-12-31')).not.toBe(epochDay('1999-12-31'));
    expect(fromEpochDay(epochDay('0099-12-31')!)).toBe('0099-12-31');
    expect(addDays('0001-01-31', 1)).toBe('0001-02-01');
    expect(addDays('2199-12-31', 1)).toBe('2200-01-01');
    expect(fromEpochDay(0)).toBe('1970-01-01');
    expect(fromEpochDay(epochDay('2024-02-29')!)).toBe('2024-02-29');
    expect(() => fromEpochDay(epochDay('9999-12-31')! + 1)).toThrow(RangeError);
    // Every day of two 400-year cycles round-trips (the civil algorithms' whole period).
    const bad: number[] = [];
    for (let d = epochDay('1800-01-01')!; d < epochDay('2600-01-01')!; d++) if (epochDay(fromEpochDay(d)) !== d) bad.push(d);
    expect(bad).toEqual([]);
  });
});
