import { describe, expect, it } from 'vitest';
import { acceptMeterSeries, computeBillRun, parseFixed, parseSiteYaml, settleRange, sortSeries, zoneOf } from '../index.ts';
import type { ReadingRow } from '../index.ts';

/**
 * billing.md section 11: a month (October 2026) of 15-minute readings with move-ins,
 * move-outs, a vacancy the landlord bears, a replacement in place and a CT swap. Every day
 * and period: master = tenants (occupied) + common + vacant + loss, and every tenant meter's
 * energy reaches exactly one account (nothing lost at a move or a swap).
 */

const SITE = `
site: { id: month10, timezone: Asia/Shanghai, landlord_account: L }
meters:
  - { id: M, role: master, multiplier: 100 }
  - { id: T1, role: tenant, accounts: [A1, A2] }
  - id: T2
    role: tenant
    accounts: [B1, B2]
    meter_changes:
      - { at: "2026-10-12T14:37:00+08:00", final_kwh: FINAL_T2, initial_kwh: 0.500, serial: NEW-1 }
  - id: T3
    role: tenant
    account: C
    multiplier: 40
    meter_changes:
      - { at: "2026-10-20T10:00:00+08:00", final_kwh: FINAL_T3, initial_kwh: FINAL_T3, multiplier: 60 }
  - { id: CE, role: common, pool: E }
  - { id: CL, role: common, pool: Q }
accounts:
  - { id: L, tariff: t, area_m2: 20 }
  - { id: A1, tariff: t, area_m2: 100, move_out: "2026-10-09T18:30:00+08:00" }
  - { id: A2, tariff: t, area_m2: 100, move_in: "2026-10-16T09:00:00+08:00" }
  - { id: B1, tariff: t, area_m2: 80, move_out: 2026-10-25 }
  - { id: B2, tariff: t, area_m2: 80, move_in: 2026-10-25 }
  - { id: C, tariff: t, area_m2: 300 }
pools:
  - { id: E, method: area }
  - { id: Q, method: equal, accounts: [A1, A2, B1, B2] }
loss: { normal_rate: 0.02, method: consumption }
tariffs:
  - id: t
    versions:
      - effective_from: 2026-01-01
        prices: { sharp: "1.300000", peak: "1.050000", flat: "0.700000", valley: "0.350000" }
        schedule:
          - periods:
              - { from: "00:00", to: "07:00", period: valley }
              - { from: "07:00", to: "10:00", period: flat }
              - { from: "10:00", to: "12:00", period: peak }
              - { from: "12:00", to: "13:00", period: sharp }
              - { from: "13:00", to: "19:00", period: flat }
              - { from: "19:00", to: "23:00", period: peak }
              - { from: "23:00", to: "24:00", period: valley }
`;

const zone = zoneOf('Asia/Shanghai');
const A = zone.midnight('2026-10-01');
const B = zone.midnight('2026-11-01');
const STEP = 15 * 60_000;

/** Readings every 15 minutes (jittered), raw registers: primary Wh / multiplier, new register after a swap. */
function month() {
  let seed = 7;
  const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const rows: ReadingRow[] = [];
  const swapT2 = Date.parse('2026-10-12T14:37:00+08:00');
  const swapT3 = Date.parse('2026-10-20T10:00:00+08:00');
  const reg: Record<string, number> = { T1: 10_000_000, T2: 20_000_000, T3: 30_000, CE: 0, CL: 0, M: 0 };
  let finalT2 = 0;
  let finalT3 = 0;
  let primaryTenant = 0;
  let masterPrimary = 0;
  let prevAt = A;
  for (let t = A; t <= B; t += STEP) {
    const jitter = t === A || t === B ? 0 : Math.floor(rnd() * 60_000);
    const at = t + jitter;
    let sum = 0;
    for (const m of ['T1', 'T2', 'T3', 'CE', 'CL']) {
      const wh = t === A ? 0 : Math.floor(rnd() * 800) * (m === 'T3' ? 60 : 1);
      sum += wh;
      if (m.startsWith('T')) primaryTenant += m === 'T3' ? 0 : wh;
      if (m === 'T2' && t > A && at - STEP < swapT2 && at >= swapT2 && finalT2 === 0) {
        // The swap falls in this interval: what the old register showed at it, then the new one.
        const before = Math.floor((wh * (swapT2 - (at - STEP))) / STEP);
        finalT2 = reg.T2 + before;
        reg.T2 = 500 + (wh - before);
        continue;
      }
      if (m === 'T3') {
        if (finalT3 === 0 && at >= swapT3 && t > A) {
          // The CT swap inside this interval: the register read then (the same meter goes on).
          const before = Math.floor((wh * (swapT3 - prevAt)) / (at - prevAt) / 40);
          const after = Math.floor((wh * (at - swapT3)) / (at - prevAt) / 60);
          finalT3 = reg.T3 + before;
          reg.T3 = finalT3 + after;
          primaryTenant += before * 40 + after * 60;
          continue;
        }
        const mult = at >= swapT3 ? 60 : 40;
        reg.T3 += Math.floor(wh / mult);
        primaryTenant += Math.floor(wh / mult) * mult;
        continue;
      }
      reg[m] += wh;
    }
    masterPrimary += Math.ceil((sum * 1.05) / 100) * 100;
    reg.M = masterPrimary / 100;
    for (const m of ['M', 'T1', 'T2', 'T3', 'CE', 'CL']) rows.push({ time: at, meter: m, wh: reg[m] });
    prevAt = at;
  }
  const text = SITE.replace('FINAL_T2', (finalT2 / 1000).toFixed(3)).replaceAll('FINAL_T3', (finalT3 / 1000).toFixed(3));
  return { site: parseSiteYaml(text), rows, primaryTenant };
}

describe('a month with move-ins, move-outs, a vacancy, a replacement and a CT swap', () => {
  const { site, rows, primaryTenant } = month();

  it('every day and period: master = tenants + common + vacant + loss; shares add up', () => {
    const range = settleRange(site, rows, '2026-10-01', '2026-11-01');
    expect(range.days).toHaveLength(31);
    let vacantDays = 0;
    for (const day of range.days) {
      for (const c of day.cells) {
        const vacant = c.vacantWh!;
        const occupied = c.tenantWh - vacant;
        expect(c.masterWh, `${day.date} ${c.period}`).toBe(occupied + c.commonWh + vacant + c.lossWh);
        expect(c.lossAllocatedWh + c.lossAbnormalWh).toBe(Math.max(c.lossWh, 0));
        const shares = day.lines.filter((l) => l.kind === 'common' && l.period === c.period).reduce((s, l) => s + l.wh, 0);
        expect(shares).toBe(c.commonWh);
        if (vacant > 0) vacantDays++;
      }
      // Nobody is charged for a day it did not occupy at all.
      const accounts = new Set(day.lines.map((l) => l.account));
      if (day.date < '2026-10-09') expect(accounts.has('A2')).toBe(false);
      if (day.date > '2026-10-09' && day.date < '2026-10-16') expect([...accounts].filter((a) => a === 'A1' || a === 'A2')).toEqual([]);
      if (day.date >= '2026-10-25') expect(accounts.has('B1')).toBe(false);
    }
    expect(vacantDays).toBeGreaterThan(6 * 3); // 2026-10-09 18:30 to 2026-10-16 09:00
  });

  it("every tenant meter's energy reaches exactly one account; the swaps lose nothing", () => {
    const run = computeBillRun(site, rows, [], '2026-10-01', '2026-11-01');
    const wh = (s: string) => parseFixed(s, 3)!;
    const own = run.accounts.reduce((s, a) => s + wh(a.kwh.own), 0);
    let measured = 0;
    for (const m of site.meters.filter((x) => x.role === 'tenant')) {
      const mine = rows.filter((r) => r.meter === m.id);
      const acc = acceptMeterSeries(m, sortSeries(Float64Array.from(mine, (r) => r.time), Float64Array.from(mine, (r) => r.wh)));
      expect(acc.flags.filter((f) => f.kind === 'reset' || f.kind === 'spike')).toEqual([]);
      measured += acc.delta.reduce((s, d) => s + d, 0);
    }
    expect(own).toBe(measured);
    expect(measured).toBe(primaryTenant);
    expect(wh(run.master.vacant_kwh!)).toBeGreaterThan(0);
    expect(run.quality.filter((q) => q.kind === 'meter_change').map((q) => q.meter)).toEqual(['T2', 'T3']);
    const lines = run.accounts.find((a) => a.account === 'L')!.lines;
    expect(lines.some((l) => l.kind === 'own')).toBe(true);
  });
});
