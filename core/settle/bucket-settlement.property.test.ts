import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addDays, parseSiteYaml, settleRange, storeReadings, zoneOf } from '../index.ts';
import type { ReadingRow } from '../index.ts';
import { expectSameDay } from '../../test/bucket-proof.ts';
import { proveBucketSettlement } from './bucket-proof.ts';

/**
 * Issue 15, on random sites (fast-check, fixed seeds): settlement from the rollup's buckets
 * where bucketSettlementProblem allows, from raw readings elsewhere, equals the raw-reading
 * settlement of every day to the Wh and the fen, with tenancy (move-ins, move-outs, a
 * landlord bearing vacancies), meter replacements and CT swaps, multipliers, spikes (lone and
 * persistent jumps), unannounced resets, silences short and longer than the settlement's
 * lookback, readings every 1 to 90 minutes, and both DST days of Europe/Berlin.
 */

const ZONE = 'Europe/Berlin';
const STARTS = [Date.parse('2026-03-27T00:00:00+01:00'), Date.parse('2026-10-23T00:00:00+02:00')];
const DAYS = 4;
const MIN = 60_000;
const SPAN = DAYS * 1440;

interface Anomalies {
  /** Reading indices 500 kWh too high (dropped as spikes). */
  spikes: number[];
  /** From this index on every reading 300 kWh higher (a run of 3: a new baseline). */
  jump: number | null;
  /** From this index on the register restarts lower (an unannounced replacement: reset). */
  reset: number | null;
  /** Readings in [from, from + minutes) removed (a silence). */
  silence: { from: number; minutes: number } | null;
}

interface Unit {
  moveOut: number | null;
  moveIn: number | null;
  change: { minute: number; initial: number; multiplier: number } | null;
  multiplier: number;
  dt: number[];
  wh: number[];
  anomalies: Anomalies;
}

const anomalies: fc.Arbitrary<Anomalies> = fc.record({
  spikes: fc.array(fc.integer({ min: 1, max: 400 }), { maxLength: 3 }),
  jump: fc.option(fc.integer({ min: 1, max: 400 }), { nil: null, freq: 4 }),
  reset: fc.option(fc.integer({ min: 1, max: 400 }), { nil: null, freq: 4 }),
  silence: fc.option(fc.record({ from: fc.integer({ min: 0, max: SPAN }), minutes: fc.constantFrom(90, 400, 1500, 1800, 2400) }), { nil: null, freq: 2 }),
});

const unit: fc.Arbitrary<Unit> = fc
  .record({
    out: fc.option(fc.integer({ min: 1, max: SPAN - 1 }), { nil: null, freq: 3 }),
    gap: fc.option(fc.integer({ min: 0, max: 1500 }), { nil: null }),
    change: fc.option(fc.record({ minute: fc.integer({ min: 1, max: SPAN - 1 }), initial: fc.integer({ min: 0, max: 5_000 }), multiplier: fc.constantFrom(1, 2, 40) }), { nil: null, freq: 3 }),
    multiplier: fc.constantFrom(1, 1, 5, 40),
    step: fc.constantFrom(1, 5, 15, 30, 60, 90),
    seed: fc.integer({ min: 1, max: 2 ** 30 }),
    anomalies,
  })
  .map(({ out, gap, change, multiplier, step, seed, anomalies: an }) => {
    let s = seed;
    const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    const dt: number[] = [];
    const wh: number[] = [];
    for (let m = 0; m < SPAN + 600; ) {
      const d = Math.max(1, Math.round(step * (0.5 + rnd())));
      dt.push(d);
      wh.push(Math.floor(rnd() * 40 * d)); // up to 2.4 kW mean
      m += d;
    }
    return { moveOut: out, moveIn: out !== null && gap !== null ? Math.min(out + gap, SPAN + 60) : null, change, multiplier, dt, wh, anomalies: an };
  });

interface Scenario {
  units: Unit[];
  pools: ('area' | 'consumption' | 'equal')[];
  start: number;
  normalRate: number;
  masterStep: number;
}

const scenario: fc.Arbitrary<Scenario> = fc.record({
  units: fc.array(unit, { minLength: 1, maxLength: 3 }),
  pools: fc.array(fc.constantFrom('area', 'consumption', 'equal'), { maxLength: 2 }),
  start: fc.constantFrom(...STARTS),
  normalRate: fc.integer({ min: 0, max: 80_000 }),
  masterStep: fc.constantFrom(1, 15, 60),
});

function build(sc: Scenario) {
  const at = (minute: number) => zoneOf(ZONE).format(sc.start + minute * MIN);
  const lines = [`site: { id: bprop, timezone: ${ZONE}, landlord_account: L }`, 'meters:', '  - { id: M, role: master, max_kw: 100000 }'];
  const accounts = ['  - { id: L, tariff: t, area_m2: 10 }'];
  const rows: ReadingRow[] = [];
  let masterWh = 0;
  let yamlTail = '';
  sc.units.forEach((u, i) => {
    const occupants = [`U${i}a`, ...(u.moveIn !== null ? [`U${i}b`] : [])];
    // max_kw 100: a 500 kWh spike is far above it; every real step is below it.
    lines.push(`  - id: T${i}`, '    role: tenant', `    accounts: [${occupants.join(', ')}]`, `    multiplier: ${u.multiplier}`, '    max_kw: 100', '    register_modulus_kwh: 100000000');
    if (u.change) lines.push('    meter_changes:', `      - { at: "${at(u.change.minute)}", final_kwh: FINAL${i}, initial_kwh: ${(u.change.initial / 1000).toFixed(3)}, multiplier: ${u.change.multiplier} }`);
    accounts.push(`  - { id: U${i}a, tariff: t, area_m2: ${10 + i * 30}${u.moveOut !== null ? `, move_out: "${at(u.moveOut)}"` : ''} }`);
    if (u.moveIn !== null) accounts.push(`  - { id: U${i}b, tariff: t, area_m2: 55, move_in: "${at(u.moveIn)}" }`);
    // Readings: the register (raw units) at each step; the old one's final at the change.
    let t = sc.start;
    let reg = 1_000_000;
    let mult = u.multiplier;
    let changed = false;
    const mine: ReadingRow[] = [{ time: t, meter: `T${i}`, wh: reg }];
    for (let k = 0; k < u.dt.length; k++) {
      const next = t + u.dt[k] * MIN;
      const changeAt = u.change ? sc.start + u.change.minute * MIN : Infinity;
      if (!changed && u.change && changeAt > t && changeAt <= next) {
        const before = Math.floor((u.wh[k] * (changeAt - t)) / (next - t) / mult);
        yamlTail += `FINAL${i}=${((reg + before) / 1000).toFixed(3)}\n`;
        reg = u.change.initial;
        mult = u.change.multiplier;
        changed = true;
        reg += Math.floor((u.wh[k] * (next - changeAt)) / (next - t) / mult);
      } else reg += Math.floor(u.wh[k] / mult);
      masterWh += u.wh[k];
      t = next;
      mine.push({ time: t, meter: `T${i}`, wh: reg });
    }
    if (!changed && u.change) yamlTail += `FINAL${i}=${(reg / 1000).toFixed(3)}\n`;
    // Anomalies on the raw register (none across the declared change: a typo there is another test's).
    const an = u.anomalies;
    const n = mine.length;
    let out = mine.map((r) => ({ ...r }));
    for (const k of an.spikes) if (k < n) out[k].wh += 500_000;
    if (an.jump !== null && an.jump < n) for (let k = an.jump; k < n; k++) out[k].wh += 300_000;
    if (an.reset !== null && an.reset < n) {
      const drop = out[an.reset].wh - 7_000;
      for (let k = an.reset; k < n; k++) out[k].wh = Math.max(0, out[k].wh - drop);
    }
    if (an.silence) {
      const a = sc.start + an.silence.from * MIN;
      const b = a + an.silence.minutes * MIN;
      out = out.filter((r) => r.time < a || r.time >= b);
    }
    rows.push(...out);
  });
  sc.pools.forEach((_, k) => {
    lines.push(`  - { id: C${k}, role: common, pool: P${k}, max_kw: 100000 }`);
    for (let m = 0; m <= SPAN + 600; m += 20) rows.push({ time: sc.start + m * MIN, meter: `C${k}`, wh: 5_000 + m * 9 });
    masterWh += (SPAN + 600) * 9;
  });
  for (let m = 0; m <= SPAN + 600; m += sc.masterStep) rows.push({ time: sc.start + m * MIN, meter: 'M', wh: 2_000_000 + Math.floor((masterWh * 1.04 * m) / (SPAN + 600)) });
  lines.push('accounts:', ...accounts);
  if (sc.pools.length) lines.push('pools:', ...sc.pools.map((m, k) => `  - { id: P${k}, method: ${m} }`));
  lines.push(
    `loss: { normal_rate: ${(sc.normalRate / 1_000_000).toFixed(6)}, method: consumption }`,
    'tariffs:',
    '  - id: t',
    '    versions:',
    '      - effective_from: 2026-01-01',
    '        prices: { peak: "1.053200", flat: "0.702100", valley: "0.351100" }',
    '        schedule:',
    '          - periods:',
    '              - { from: "00:00", to: "02:30", period: valley }',
    '              - { from: "02:30", to: "03:15", period: peak }',
    '              - { from: "03:15", to: "07:00", period: valley }',
    '              - { from: "07:00", to: "11:10", period: peak }',
    '              - { from: "11:10", to: "24:00", period: flat }',
  );
  let yaml = `${lines.join('\n')}\n`;
  for (const l of yamlTail.trim().split('\n').filter(Boolean)) {
    const [k, v] = l.split('=');
    yaml = yaml.replace(k, v);
  }
  return { site: parseSiteYaml(yaml), rows, start: sc.start };
}

describe('settlement from buckets = settlement from raw readings on random sites', () => {
  it('every day, at its grace and with all readings: lines, cells, shares, occupancy, flags and facts equal', () => {
    const seen = { bucket: 0, raw: 0 };
    fc.assert(
      fc.property(scenario, fc.array(fc.constantFrom(1, 2, 5, 13, 31, 61), { minLength: 1, maxLength: 4 }), (sc, deliveries) => {
        const { site, rows, start } = build(sc);
        const zone = zoneOf(ZONE);
        const first = zone.dateOf(start);
        const days = Array.from({ length: DAYS + 1 }, (_, d) => addDays(first, d));
        for (const p of proveBucketSettlement(site, rows, { days, deliveryMinutes: deliveries })) {
          expectSameDay(p);
          seen.bucket += p.bucketMeters.length;
          seen.raw += p.rawMeters.length;
        }
      }),
      { numRuns: 60, seed: 15 },
    );
    // Both paths were exercised (not a proof of nothing).
    expect(seen.bucket).toBeGreaterThan(seen.raw / 4);
    expect(seen.raw).toBeGreaterThan(0);
  });
});

describe('where the buckets are not taken (documented in docs/workers.md)', () => {
  it('a spike right before a silence longer than the lookback: the window starts at the spike; the meter is settled from raw readings, and from buckets it would differ', () => {
    const sc: Scenario = {
      units: [{ moveOut: null, moveIn: null, change: null, multiplier: 1, dt: Array(SPAN / 10 + 60).fill(10), wh: Array(SPAN / 10 + 60).fill(300), anomalies: { spikes: [60], jump: null, reset: null, silence: { from: 601, minutes: 2400 } } }],
      pools: [],
      start: STARTS[0],
      normalRate: 0,
      masterStep: 15,
    };
    const { site, rows, start } = build(sc);
    const zone = zoneOf(ZONE);
    // T0's reading at minute 600 is a spike; T0 is silent from minute 601 to 3001 (40 h, past
    // the third day's midnight at 2880): that day's window (24 h back) starts at the spike.
    const day = addDays(zone.dateOf(start), 2);
    const proofs = proveBucketSettlement(site, rows, { days: [day] }).filter((p) => p.when === 'end');
    expect(proofs[0].rawMeters.map((m) => m.meter)).toContain('T0');
    expectSameDay(proofs[0]);
    const forced = proveBucketSettlement(site, rows, { days: [day], forceBuckets: true }).filter((p) => p.when === 'end')[0];
    expect(forced.mixed.settlement.lines).not.toEqual(forced.raw.settlement.lines);
    // The buckets are the whole history's (the offline bill of all readings); the raw window is not.
    const offline = settleRange(site, storeReadings(site, rows), day, addDays(day, 1));
    expect(forced.mixed.settlement.lines).toEqual(offline.days[offline.fromDay].lines);
  });
});
