import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { acceptMeterSeries, billRunJson, computeBillRun, multiplierAt, parseSiteYaml, sortSeries } from '../index.ts';
import type { ReadingRow } from '../index.ts';

/** billing.md section 11, rules 5 and 6: replacement in place and multipliers. */

const caseDir = new URL('../../testcases/meter-replaced-1437/', import.meta.url);
const replacedSite = parseSiteYaml(readFileSync(new URL('site.yaml', caseDir), 'utf8'));
const T = (hhmm: string, day = '01') => Date.parse(`2026-10-${day}T${hhmm}:00+08:00`);

function rows(meter: string, list: [number, number][]): ReadingRow[] {
  return list.map(([time, wh]) => ({ time, meter, wh }));
}

describe('a meter replaced at 14:37', () => {
  const master = rows('M', [
    [T('00:00'), 0],
    [T('00:00', '02'), 24_000],
  ]);
  const twoMeters = rows('T1', [
    [T('00:00'), 500_000],
    [T('14:00'), 507_000],
    [T('15:30'), 900],
    [T('00:00', '02'), 8_450],
  ]);
  // The same consumption on one meter that was never replaced (read at 14:37 as the old one was).
  const oneMeter = rows('T1', [
    [T('00:00'), 1_000_000],
    [T('14:00'), 1_007_000],
    [T('14:37'), 1_007_370],
    [T('15:30'), 1_008_150],
    [T('00:00', '02'), 1_015_700],
  ]);
  const plain = parseSiteYaml(readFileSync(new URL('site.yaml', caseDir), 'utf8').replace(/\s+meter_changes:\n.*\n/, '\n'));

  it('bills to the fen what one meter with the same consumption bills', () => {
    const replaced = computeBillRun(replacedSite, [...master, ...twoMeters], [], '2026-10-01', '2026-10-02');
    const one = computeBillRun(plain, [...master, ...oneMeter], [], '2026-10-01', '2026-10-02');
    expect(plain.meters[1].changes).toEqual([]);
    expect(billRunJson({ ...replaced, quality: [] })).toBe(billRunJson({ ...one, quality: [] }));
    expect(replaced.quality.map((q) => q.kind)).toEqual(['meter_change']);
  });

  it('on the old rules the same readings lose the energy around the swap (a reset)', () => {
    const old = computeBillRun(plain, [...master, ...twoMeters], [], '2026-10-01', '2026-10-02');
    expect(old.quality.map((q) => q.kind)).toEqual(['reset']);
    expect(old.master.tenant_kwh).not.toBe('15.700');
  });

  it('conserves energy: the pieces add up to both registers deltas', () => {
    const meter = replacedSite.meters[1];
    const raw = sortSeries(Float64Array.from(twoMeters, (r) => r.time), Float64Array.from(twoMeters, (r) => r.wh));
    const acc = acceptMeterSeries(meter, raw);
    expect(acc.delta.reduce((s, d) => s + d, 0)).toBe(507_370 - 500_000 + (8_450 - 120));
    expect(Array.from(acc.time)).toEqual([T('00:00'), T('14:00'), T('14:37'), T('14:37'), T('15:30'), T('00:00', '02')]);
  });

  it('a reading at exactly the change instant is the new register, merged with initial_kwh by rule 1', () => {
    const meter = replacedSite.meters[1];
    const same = [...twoMeters, { time: T('14:37'), meter: 'T1', wh: 120 }].sort((a, b) => a.time - b.time);
    const acc = acceptMeterSeries(meter, sortSeries(Float64Array.from(same, (r) => r.time), Float64Array.from(same, (r) => r.wh)));
    expect(acc.flags.map((f) => f.kind)).toEqual(['meter_change']);
    const differs = [...twoMeters, { time: T('14:37'), meter: 'T1', wh: 150 }].sort((a, b) => a.time - b.time);
    const acc2 = acceptMeterSeries(meter, sortSeries(Float64Array.from(differs, (r) => r.time), Float64Array.from(differs, (r) => r.wh)));
    expect(acc2.flags.map((f) => f.kind).sort()).toEqual(['conflict', 'meter_change']);
  });

  it('a window that starts after the change applies the new piece only (the workers lookback)', () => {
    const meter = replacedSite.meters[1];
    const late = twoMeters.filter((r) => r.time >= T('15:30'));
    const acc = acceptMeterSeries(meter, sortSeries(Float64Array.from(late, (r) => r.time), Float64Array.from(late, (r) => r.wh)), T('15:00'));
    expect(Array.from(acc.delta)).toEqual([0, 7_550]);
    expect(acc.flags).toEqual([]);
  });
});

describe('multipliers', () => {
  const site = parseSiteYaml(readFileSync(new URL('../../testcases/ct-change-multiplier/site.yaml', import.meta.url), 'utf8'));
  const t1 = site.meters[1];

  it('is effective-dated through meter_changes', () => {
    expect(multiplierAt(t1, T('00:00'))).toBe(40);
    expect(multiplierAt(t1, T('09:59', '02'))).toBe(40);
    expect(multiplierAt(t1, T('10:00', '02'))).toBe(60);
    expect(multiplierAt(site.meters[0], T('00:00'))).toBe(200);
  });

  it('multiplies raw register deltas exactly, in whole Wh, and judges max_kw on primary power', () => {
    const meter = { ...t1, changes: [], multiplier: 40, maxW: 100_000, maxKw: '100' };
    // 2.501 kWh raw in one hour x 40 = 100.04 kW primary: above max_kw 100, a spike.
    const raw = { time: Float64Array.of(T('00:00'), T('01:00'), T('02:00')), wh: Float64Array.of(1_000, 3_500, 6_001) };
    const acc = acceptMeterSeries(meter, raw);
    expect(Array.from(acc.delta)).toEqual([0, 100_000]);
    expect(acc.flags.map((f) => f.kind)).toEqual(['spike']);
  });

  it('a rollover is judged on the raw register, its energy is primary', () => {
    const meter = { ...t1, changes: [], multiplier: 40, registerModulusWh: 1_000_000 };
    const raw = { time: Float64Array.of(T('00:00'), T('12:00')), wh: Float64Array.of(999_900, 100) };
    const acc = acceptMeterSeries(meter, raw);
    expect(Array.from(acc.delta)).toEqual([0, 200 * 40]);
    expect(acc.flags[0].detail).toBe('register 999.900 -> 0.100 kWh past modulus 1000.000 kWh: 8.000 kWh (register x 40)');
  });
});

describe('site file', () => {
  it('reads final_kwh and initial_kwh exactly from the YAML text', () => {
    const base = readFileSync(new URL('site.yaml', caseDir), 'utf8').replace('max_kw: 10', 'max_kw: 10\n    register_modulus_kwh: 9000000000');
    const ok = parseSiteYaml(base.replace('final_kwh: 507.370', 'final_kwh: 8999999999.990'));
    expect(ok.meters[1].changes![0].finalWh).toBe(8_999_999_999_990);
    // The text as written, not the number YAML makes of it: 5e2 is no register reading.
    expect(() => parseSiteYaml(base.replace('final_kwh: 507.370', 'final_kwh: 5e2'))).toThrow(/final_kwh: must be a non-negative kWh register value with at most 3 decimals \(whole Wh\), got "5e2"/);
    expect(() => parseSiteYaml(base.replace('final_kwh: 507.370', 'final_kwh: 9000000000'))).toThrow(/final_kwh: must be below the register modulus 9000000000 kWh/);
  });

  it('refuses changes out of order, more than 3 decimals and an address the protocol cannot use', () => {
    const base = readFileSync(new URL('site.yaml', caseDir), 'utf8');
    expect(() => parseSiteYaml(base.replace('final_kwh: 507.370', 'final_kwh: 507.3705'))).toThrow(/meter_changes\[0\]\.final_kwh: must be a non-negative kWh register value with at most 3 decimals/);
    const two = base.replace(
      '      - { at: "2026-10-01T14:37:00+08:00"',
      '      - { at: "2026-10-01T15:00:00+08:00", final_kwh: 1, initial_kwh: 0 }\n      - { at: "2026-10-01T14:37:00+08:00"',
    );
    expect(() => parseSiteYaml(two)).toThrow(/meter_changes\[1\]\.at: must be after the previous change/);
    expect(() => parseSiteYaml(base.replace('serial: NEW-0042', 'address: 7'))).toThrow(/address: the meter has no connection/);
  });
});
