import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseSiteYaml } from '../core/index.ts';
import { SiteLoadModel, simulateReadings, SLOT_MS } from './load-model.ts';
import type { ReadingRow } from './load-model.ts';
import { startSimulator } from './simulator.ts';
import { SimDlt645Meter } from './dlt645/meter.ts';
import { testSite } from './test-support.ts';

const site = parseSiteYaml(readFileSync(new URL('../examples/site.example.yaml', import.meta.url), 'utf8'), 'examples/site.example.yaml');
const HOUR = 3_600_000;
// Local midnight (Asia/Shanghai, UTC+8) of Wed 2026-07-01 and Mon 2026-04-06.
const JUL1 = Date.UTC(2026, 5, 30, 16);
const APR6 = Date.UTC(2026, 3, 5, 16);

function rows(meters: string[], from: number, to: number, stepMs: number, seed = 1, epoch = from): ReadingRow[] {
  return [...simulateReadings(site, { from, to, stepMs, seed, epoch, meters })];
}

/** Mean power over local hours [h0, h1) of the day starting at `midnight`, from per-minute rows. */
function meanW(r: ReadingRow[], meter: string, midnight: number, h0: number, h1: number): number {
  const sel = r.filter((x) => x.meter === meter && x.time >= midnight + h0 * HOUR && x.time < midnight + h1 * HOUR);
  return sel.reduce((s, x) => s + x.w, 0) / sel.length;
}

describe('load model', () => {
  it('is deterministic per seed and independent of evaluation order', () => {
    const a = rows(['T101', 'M0'], JUL1, JUL1 + 6 * HOUR, 15 * 60_000, 7);
    const b = rows(['T101', 'M0'], JUL1, JUL1 + 6 * HOUR, 15 * 60_000, 7);
    expect(b).toEqual(a);
    expect(rows(['T101', 'M0'], JUL1, JUL1 + 6 * HOUR, 15 * 60_000, 8)).not.toEqual(a);
    // One model jumping straight to the end agrees with stepping there.
    const model = new SiteLoadModel(site, { seed: 7, epoch: JUL1 });
    const last = a[a.length - 1];
    expect(model.snapshot(last.meter, last.time).wh).toBe(last.wh);
    // Going back restarts from the epoch and still agrees.
    expect(model.snapshot('T101', a[2].time).wh).toBe(a.find((x) => x.meter === 'T101' && x.time === a[2].time)!.wh);
    // Going back days replays from a daily checkpoint, and agrees with a fresh model.
    const far = JUL1 + 3 * 24 * HOUR + 7 * HOUR;
    const back = JUL1 + 24 * HOUR + 5 * HOUR + 123_456;
    const fresh = new SiteLoadModel(site, { seed: 7, epoch: JUL1 }).snapshot('M0', back);
    model.snapshot('M0', far);
    expect(model.snapshot('M0', back)).toEqual(fresh);
    expect(model.snapshot('M0', far)).toEqual(new SiteLoadModel(site, { seed: 7, epoch: JUL1 }).snapshot('M0', far));
  });

  it('keeps registers integer, monotonic and equal to the integrated power', () => {
    const r = rows(['T101', 'T103', 'C-ELEV', 'M0'], JUL1, JUL1 + 24 * HOUR + 1, SLOT_MS);
    for (const meter of ['T101', 'T103', 'C-ELEV', 'M0']) {
      const own = r.filter((x) => x.meter === meter);
      let joules = 0;
      for (let i = 1; i < own.length; i++) {
        expect(Number.isInteger(own[i].wh)).toBe(true);
        expect(own[i].wh).toBeGreaterThanOrEqual(own[i - 1].wh);
        joules += own[i - 1].w * 60; // power is constant over each 60 s slot
        expect(own[i].wh - own[0].wh).toBe(Math.floor(joules / 3600));
      }
    }
  });

  it('interpolates linearly inside a slot and never decreases between polls', () => {
    const model = new SiteLoadModel(site, { seed: 3, epoch: JUL1 });
    let prev = -1;
    for (let t = JUL1 + 12 * HOUR; t < JUL1 + 12 * HOUR + 5 * SLOT_MS; t += 1_337) {
      const s = model.snapshot('T103', t);
      expect(s.wh).toBeGreaterThanOrEqual(prev);
      prev = s.wh;
    }
  });

  it('looks like a mall: open hours, night base, weekends, summer HVAC, master = sum + loss', () => {
    const day = rows(['T101', 'T102', 'T103', 'C-ELEV', 'C-LOBBY', 'M0'], JUL1, JUL1 + 7 * 24 * HOUR, SLOT_MS);
    for (const t of ['T101', 'T102', 'T103']) {
      // Night (02:00-05:00) well below afternoon (14:00-18:00) on a weekday.
      expect(meanW(day, t, JUL1, 2, 5)).toBeLessThan(0.3 * meanW(day, t, JUL1, 14, 18));
    }
    // Sat 2026-07-04 busier than Wed 2026-07-01 in opening hours (shop).
    expect(meanW(day, 'T101', JUL1 + 3 * 24 * HOUR, 11, 21)).toBeGreaterThan(meanW(day, 'T101', JUL1, 11, 21));
    // July (cooling) uses more than early April on a weekday.
    const april = rows(['T101'], APR6, APR6 + 24 * HOUR, SLOT_MS);
    expect(meanW(day, 'T101', JUL1, 0, 24)).toBeGreaterThan(1.1 * meanW(april, 'T101', APR6, 0, 24));
    // Master energy over the week = sub-meters + 2-4 % line loss.
    const energy = (m: string) => {
      const own = day.filter((x) => x.meter === m);
      return own[own.length - 1].wh - own[0].wh;
    };
    const subs = ['T101', 'T102', 'T103', 'C-ELEV', 'C-LOBBY'].reduce((s, m) => s + energy(m), 0);
    const ratio = energy('M0') / subs;
    expect(ratio).toBeGreaterThan(1.015);
    expect(ratio).toBeLessThan(1.045);
    // Never above max_kw (T103 has max_kw 300): the spike rule stays for injected spikes.
    expect(Math.max(...day.filter((x) => x.meter === 'T103').map((x) => x.w))).toBeLessThan(300_000);
  });

  it('wraps the register at register_modulus_kwh as the meter does', () => {
    // M0 has register_modulus_kwh 100000000 (1e11 Wh): start 2 kWh below it.
    const model = new SiteLoadModel(site, { seed: 1, epoch: JUL1, initialWh: { M0: 100_000_000_000 - 2_000 } });
    const s0 = model.snapshot('M0', JUL1);
    expect(s0.wh).toBe(100_000_000_000 - 2_000);
    const s1 = model.snapshot('M0', JUL1 + 12 * HOUR);
    expect(s1.totalWh).toBeGreaterThan(100_000_000_000);
    expect(s1.wh).toBe(s1.totalWh - 100_000_000_000);
  });

  it('opens shops by local wall-clock time across a DST change (Europe/Berlin, 2026-03-29)', () => {
    const berlin = testSite('  - { id: S1, role: tenant, account: A1 }', '', 'Europe/Berlin');
    /** Minutes after local midnight when the shop first draws 3x its night load. */
    const wakeUp = (localMidnightUtc: number) => {
      const r = [...simulateReadings(berlin, { from: localMidnightUtc, to: localMidnightUtc + 24 * HOUR, stepMs: SLOT_MS, epoch: Date.UTC(2026, 2, 25), meters: ['S1'] })];
      const night = r.slice(120, 300).reduce((s, x) => s + x.w, 0) / 180; // 02:00-05:00 local
      const first = r.find((x, i) => i > 300 && x.w > 3 * night)!;
      return (first.time - localMidnightUtc) / 60_000;
    };
    // Fri 27 March (CET, UTC+1) and Mon 30 March (CEST, UTC+2): local midnights in UTC.
    const before = wakeUp(Date.UTC(2026, 2, 26, 23));
    const after = wakeUp(Date.UTC(2026, 2, 29, 22));
    expect(Math.abs(before - after)).toBeLessThanOrEqual(10);
    expect(before).toBeGreaterThan(8 * 60);
    expect(before).toBeLessThan(11 * 60);
  });

  it('scales a meter\'s load by the scale option', () => {
    const plain = rows(['T101'], JUL1 + 12 * HOUR, JUL1 + 13 * HOUR, SLOT_MS);
    const tripled = [...simulateReadings(site, { from: JUL1 + 12 * HOUR, to: JUL1 + 13 * HOUR, stepMs: SLOT_MS, seed: 1, epoch: JUL1 + 12 * HOUR, meters: ['T101'], scale: { T101: 3 } })];
    const sum = (r: ReadingRow[]) => r.reduce((s, x) => s + x.w, 0);
    expect(sum(tripled) / sum(plain)).toBeCloseTo(3, 2);
  });

  it('is what the live simulator serves: a backfill and the wire agree at every instant', async () => {
    const backfill = rows(['T101', 'M0'], JUL1, JUL1 + 2 * HOUR, 10 * 60_000, 5, APR6);
    let t = JUL1;
    const sim = await startSimulator({ site, tcp: false, seed: 5, epoch: APR6, now: () => t });
    try {
      for (const r of backfill) {
        t = r.time;
        expect(sim.read(r.meter)).toMatchObject({ wh: r.wh, w: r.w });
      }
    } finally {
      await sim.stop();
    }
  });

  it('a DL/T 645 meter\'s history carries the tariff registers the simulated meter shows (counted from the epoch)', () => {
    // T102 of the example is a DL/T 645 meter (default mapping); July has sharp hours.
    const backfill = rows(['T102', 'T101'], JUL1, JUL1 + 30 * HOUR, HOUR, 5, APR6);
    const model = new SiteLoadModel(site, { seed: 5, epoch: APR6 });
    let t = JUL1;
    const meter = new SimDlt645Meter({ address: '000000001102', site, source: (ms) => ({ totalWh: model.snapshot('T102', ms).wh }), now: () => t, epoch: APR6 });
    for (const r of backfill) {
      if (r.meter !== 'T102') {
        expect(r.tariffWh).toBeUndefined(); // a Modbus meter has none
        continue;
      }
      t = r.time;
      const regs = meter.readRegisters().tariffWh;
      expect(r.tariffWh).toEqual({ 1: regs[0], 2: regs[1], 3: regs[2], 4: regs[3] });
      // Whole 0.01 kWh that add up to the total register, which the history shows as the
      // meter does (the model's Wh truncated to 0.01 kWh), not the model's Wh.
      const sum = regs.reduce((a, b) => a + b, 0);
      expect(r.wh).toBe(sum);
      expect(r.wh).toBe(Math.floor(model.snapshot('T102', r.time).wh / 10) * 10);
    }
  });

  it('rejects bad options with clear errors', () => {
    expect(() => rows(['T101'], JUL1, JUL1 + HOUR, 0)).toThrow(/stepMs must be a positive integer/);
    expect(() => rows(['NOPE'], JUL1, JUL1 + HOUR, SLOT_MS)).toThrow(/no meter 'NOPE'/);
    expect(() => rows(['T101'], JUL1 - HOUR, JUL1, SLOT_MS, 1, JUL1)).toThrow(/before the model epoch/);
  });

  it('integrates a quarter of a year quickly enough for start-up', () => {
    const model = new SiteLoadModel(site, { seed: 1 });
    const t0 = performance.now();
    model.advanceTo(Date.UTC(2026, 3, 1));
    // 6 meters x 129,600 slots, ~0.1 s; generous bound for a loaded CI machine.
    expect(performance.now() - t0).toBeLessThan(5_000);
  });
});
