/** Grafana's macro and variable expansion for InfluxQL, case by case. */
import { describe, expect, it } from 'vitest';
import { expandInfluxQL, formatDuration, panelInterval, panelRange, regexEscape, roundInterval } from './expand.ts';

const ctx = { fromMs: 1_000, toMs: 2_000, interval: '1m' };

describe('expandInfluxQL', () => {
  it.each([
    ['time filter', 'SELECT x FROM m WHERE $timeFilter', {}, 'SELECT x FROM m WHERE time >= 1000ms and time <= 2000ms'],
    ['interval', 'GROUP BY time($__interval)', {}, 'GROUP BY time(1m)'],
    ['single value, as is', `"a" =~ /^$account$/`, { account: 'A101' }, `"a" =~ /^A101$/`],
    ['braces and brackets', '${site} [[site]]', { site: 's1' }, 's1 s1'],
    ['several values: escaped regex group', `=~ /^$account$/`, { account: ['A.1', 'B|2'] }, '=~ /^(A\\.1|B\\|2)$/'],
    ['one of a multi: escaped, no group', `=~ /^$account$/`, { account: ['A.1'] }, '=~ /^A\\.1$/'],
    ['All as allValue', `=~ /^$account$/`, { account: '.*' }, '=~ /^.*$/'],
    ['longer name first', '$acc $account', { acc: 'x', account: 'y' }, 'x y'],
  ])('%s', (_name, query, variables, want) => {
    expect(expandInfluxQL(query, { ...ctx, variables })).toBe(want);
  });

  it('refuses a variable left unexpanded, naming it', () => {
    expect(() => expandInfluxQL('WHERE "site" =~ /^$site$/', ctx)).toThrow(/\$site/);
  });
});

describe('intervals and ranges', () => {
  it.each([
    [86_400_000 / 1_000, 60_000],
    [600_000 / 1_000, 500],
    [2_592_000_000 / 1_000, 1_800_000],
  ])('roundInterval(%d) = %d', (ms, want) => expect(roundInterval(ms)).toBe(want));

  it('never goes below the panel minimum', () => {
    expect(panelInterval(0, 3_600_000, 1_000, '15m')).toBe('15m');
    expect(panelInterval(0, 86_400_000, 1_000, '10s')).toBe('1m');
  });

  it('formats InfluxQL durations', () => {
    expect([formatDuration(900_000), formatDuration(3_600_000), formatDuration(500)]).toEqual(['15m', '1h', '500ms']);
  });

  it('cuts now/d and now/M and reads relative overrides', () => {
    const now = Date.UTC(2026, 9, 15, 12, 34, 56);
    expect(panelRange(now, 0, 'now/d')).toEqual({ fromMs: Date.UTC(2026, 9, 15), toMs: now });
    expect(panelRange(now, 0, 'now/M')).toEqual({ fromMs: Date.UTC(2026, 9, 1), toMs: now });
    expect(panelRange(now, 0, '30d')).toEqual({ fromMs: now - 30 * 86_400_000, toMs: now });
    expect(panelRange(now, 7, undefined)).toEqual({ fromMs: 7, toMs: now });
  });

  it('escapes regex metacharacters like Grafana', () => {
    expect(regexEscape('a/b.c(d)')).toBe('a\\/b\\.c\\(d\\)');
  });
});
