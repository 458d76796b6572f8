import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { daysToResettle, describeChanges, diffSites, parseSiteYaml } from '../index.ts';

/** billing.md section 11, rule 9: what a site-file change re-settles. */

const example = readFileSync(new URL('../../examples/site.example.yaml', import.meta.url), 'utf8');
const moveOut = readFileSync(new URL('../../testcases/move-out-mid-month/site.yaml', import.meta.url), 'utf8');
const days = (from: string, n: number) => Array.from({ length: n }, (_, i) => new Date(Date.parse(`${from}T00:00:00Z`) + i * 86_400_000).toISOString().slice(0, 10));

describe('diffSites', () => {
  it('the same file changes nothing', () => {
    expect(diffSites(parseSiteYaml(example), parseSiteYaml(example))).toEqual({ changes: [] });
  });

  it('a back-dated price correction touches the days of that version only', () => {
    // A second version from 2026-10-02 whose peak price is corrected afterwards.
    const twoVersions = (peak: string) =>
      moveOut.replace(
        '      - effective_from: 2026-01-01\n',
        `      - effective_from: 2026-10-02\n        prices: { peak: "${peak}", valley: "0.500000" }\n        schedule:\n          - periods:\n              - { from: "00:00", to: "24:00", period: valley }\n      - effective_from: 2026-01-01\n`,
      );
    const old = parseSiteYaml(twoVersions('1.000000'));
    const next = parseSiteYaml(twoVersions('1.100000'));
    const diff = diffSites(old, next);
    expect(describeChanges(diff)).toEqual(['tariff t from 2026-10-02: peak 1.000000 -> 1.100000: settled days from 2026-10-02 on']);
    expect([...daysToResettle(diff, days('2026-09-30', 5)).keys()]).toEqual(['2026-10-02', '2026-10-03', '2026-10-04']);
  });

  it('a back-dated move-out touches the days between the old and the new instant', () => {
    const old = parseSiteYaml(moveOut);
    const next = parseSiteYaml(moveOut.replace('move_out: "2026-10-02T14:00:00+08:00"', 'move_out: "2026-09-29T10:00:00+08:00"'));
    const diff = diffSites(old, next);
    expect(describeChanges(diff)).toEqual(['account A1 move_out 2026-10-02T14:00:00+08:00 -> 2026-09-29T10:00:00+08:00: 2026-09-29 .. 2026-10-02']);
    expect(daysToResettle(diff, days('2026-09-28', 6)).get('2026-09-30')).toBe('site file changed: account A1 move_out 2026-10-02T14:00:00+08:00 -> 2026-09-29T10:00:00+08:00');
  });

  it('a meter change entered late touches the day before to the day after; its multiplier from then on', () => {
    const old = parseSiteYaml(moveOut);
    const next = parseSiteYaml(moveOut.replace('{ id: T102, role: tenant, account: B, max_gap: 72h }', '{ id: T102, role: tenant, account: B, max_gap: 72h, meter_changes: [{ at: "2026-10-02T09:00:00+08:00", final_kwh: 33, initial_kwh: 0, multiplier: 2 }] }'));
    expect(describeChanges(diffSites(old, next))).toEqual([
      'meter T102 change at 2026-10-02T09:00:00+08:00 added (final 33.000, initial 0.000 kWh): 2026-10-01 .. 2026-10-03',
      'meter T102 multiplier 1 -> 2: settled days from 2026-10-02 on',
    ]);
  });

  it('an undated change touches every settled day; a new time zone is refused', () => {
    const old = parseSiteYaml(moveOut);
    expect(describeChanges(diffSites(old, parseSiteYaml(moveOut.replace('area_m2: 300', 'area_m2: 310'))))).toEqual(['account B area_m2 300 -> 310: every settled day']);
    expect(diffSites(old, parseSiteYaml(moveOut.replace('Asia/Shanghai', 'Asia/Tokyo'))).refused).toMatch(/^time zone Asia\/Shanghai -> Asia\/Tokyo/);
    expect(describeChanges(diffSites(old, parseSiteYaml(moveOut.replace('landlord_account: L }', 'landlord_account: L, holidays: [2026-10-01] }'))))).toEqual(['holiday 2026-10-01 added: 2026-10-01']);
  });
});
