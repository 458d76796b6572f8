import { loadavg } from 'node:os';
import { parseSiteYaml, ReadingStore, settleRange } from '../core/index.ts';
import type { Site } from '../core/index.ts';

/**
 * What billing.md section 11 costs the settlement: settleRange over one month of 1-minute
 * readings, the same readings three ways in one run: (a) the site as before (no tenancy
 * keys: the baseline, what the old code did), (b) half the units changing occupant
 * mid-month with a two-day vacancy the landlord bears (calendar cuts, occupant per piece,
 * occupancy-prorated pool shares), (c) (b) plus a third of the meters replaced mid-month
 * and every meter behind a multiplier. Medians of 3 runs each; the ratio to (a) is the
 * figure (absolute times move with the machine).
 *
 * Run: npx tsx bench/tenancy.bench.ts [meters]   (default 100 tenant meters)
 */

const N = Number(process.argv[2] ?? 100);
const MIN = 60_000;
const A = Date.parse('2026-10-01T00:00:00+08:00');
const MINUTES = 31 * 1440;

function siteYaml(variant: 'a' | 'b' | 'c'): string {
  const lines = [`site: { id: bench10, timezone: Asia/Shanghai${variant !== 'a' ? ', landlord_account: L' : ''} }`, 'meters:', '  - { id: M, role: master }', '  - { id: CE, role: common, pool: E }'];
  const accounts = ['  - { id: L, tariff: t }'];
  for (let i = 0; i < N; i++) {
    const moves = variant !== 'a' && i % 2 === 0;
    const change = variant === 'c' && i % 3 === 0 ? `, multiplier: 40, meter_changes: [{ at: "2026-10-15T14:37:00+08:00", final_kwh: FINAL${i}, initial_kwh: 0, multiplier: 40 }]` : variant === 'c' ? ', multiplier: 40' : '';
    lines.push(`  - { id: T${i}, role: tenant, ${moves ? `accounts: [U${i}a, U${i}b]` : `account: U${i}a`}${change} }`);
    accounts.push(`  - { id: U${i}a, tariff: t, area_m2: ${50 + i}${moves ? ', move_out: "2026-10-10T18:30:00+08:00"' : ''} }`);
    if (moves) accounts.push(`  - { id: U${i}b, tariff: t, area_m2: ${60 + i}, move_in: 2026-10-13 }`);
  }
  lines.push(
    'accounts:',
    ...accounts,
    'pools:',
    '  - { id: E, method: area }',
    'loss: { normal_rate: 0.03, method: consumption }',
    'tariffs:',
    '  - id: t',
    '    versions:',
    '      - effective_from: 2026-01-01',
    '        prices: { peak: 1.05, flat: 0.7, valley: 0.35 }',
    '        schedule:',
    '          - periods:',
    '              - { from: "00:00", to: "08:00", period: valley }',
    '              - { from: "08:00", to: "11:00", period: peak }',
    '              - { from: "11:00", to: "18:00", period: flat }',
    '              - { from: "18:00", to: "23:00", period: peak }',
    '              - { from: "23:00", to: "24:00", period: valley }',
  );
  return `${lines.join('\n')}\n`;
}

/** Registers per meter and minute (deterministic); a replaced meter restarts at 0 at its change. */
function readings(): { regs: Float64Array[]; finals: number[] } {
  const change = Date.parse('2026-10-15T14:37:00+08:00');
  const regs: Float64Array[] = [];
  const finals: number[] = [];
  let seed = 1;
  const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  for (let m = 0; m < N + 2; m++) {
    const r = new Float64Array(MINUTES + 1);
    let w = 1_000_000;
    for (let k = 1; k <= MINUTES; k++) {
      w += Math.floor(rnd() * 90);
      r[k] = w;
    }
    r[0] = 1_000_000;
    regs.push(r);
    // Replaced meters (variant c): the old register at the change, then a new one from 0.
    const i = m - 2;
    const kc = Math.floor((change - A) / MIN);
    finals.push(i >= 0 && i % 3 === 0 ? r[kc] : 0);
  }
  return { regs, finals };
}

function store(site: Site, regs: Float64Array[], replaced: boolean): ReadingStore {
  const s = new ReadingStore(site.meters.length);
  const change = Date.parse('2026-10-15T14:37:00+08:00');
  site.meters.forEach((m, mi) => {
    const r = regs[mi];
    const i = mi - 2;
    const sw = replaced && i >= 0 && i % 3 === 0;
    for (let k = 0; k <= MINUTES; k++) {
      const t = A + k * MIN;
      // After the swap the new register counts from 0 what the old one would have added.
      const kc = Math.floor((change - A) / MIN);
      s.add(mi, t, sw && t >= change ? r[k] - r[kc] : r[k]);
    }
  });
  return s;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const load0 = loadavg()[0];
const { regs, finals } = readings();
const sites = {
  a: parseSiteYaml(siteYaml('a')),
  b: parseSiteYaml(siteYaml('b')),
  c: parseSiteYaml(siteYaml('c').replace(/FINAL(\d+)/g, (_, i: string) => (finals[Number(i) + 2] / 1000).toFixed(3))),
};
const times: Record<'a' | 'b' | 'c', number[]> = { a: [], b: [], c: [] };
for (let rep = 0; rep < 3; rep++) {
  for (const v of ['a', 'b', 'c'] as const) {
    const st = store(sites[v], regs, v === 'c');
    const t0 = performance.now();
    const r = settleRange(sites[v], st, '2026-10-01', '2026-11-01');
    times[v].push(performance.now() - t0);
    if (r.days.length !== 31) throw new Error('bad range');
  }
}
const rows = (N + 2) * (MINUTES + 1);
const a = median(times.a);
const b = median(times.b);
const c = median(times.c);
const load1 = loadavg()[0];
const f = (x: number) => x.toFixed(0);
process.stdout.write(`## Tenancy and meter changes: what billing.md section 11 costs the settlement

settleRange over October 2026, 1-minute readings of ${N} tenant meters, a master and a common meter (${(rows / 1e6).toFixed(2)} M readings), the same readings three ways, medians of 3 runs in one process. Load average ${load0.toFixed(1)} -> ${load1.toFixed(1)} on the shared machine during the run.
Reproduce: \`npx tsx bench/tenancy.bench.ts [meters]\`

| variant | ms | ratio to (a) |
|---|---|---|
| (a) no tenancy keys (the baseline: billed as before) | ${f(a)} | 1.00 |
| (b) half the units change occupant mid-month, 2-day vacancy, landlord | ${f(b)} | ${(b / a).toFixed(2)} |
| (c) (b) + a third of the meters replaced mid-month, all behind a multiplier | ${f(c)} | ${(c / a).toFixed(2)} |
`);
