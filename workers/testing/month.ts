import { zoneOf } from '../../core/index.ts';
import type { ReadingRow, Site } from '../../core/index.ts';
import { sampleLine } from '../../influx/lines.ts';

/**
 * Deterministic synthetic readings for the workers' tests and benchmarks: every meter of
 * the site read every `stepMs` (with a few seconds of jitter, so intervals cross period
 * boundaries), tenants with a day/night load shape, common meters steady, the master the
 * sum plus a loss that is sometimes above the normal rate.
 */
export function syntheticReadings(site: Site, fromDate: string, days: number, stepMs = 5 * 60_000, seed = 1): ReadingRow[] {
  let s = seed >>> 0;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const zone = zoneOf(site.timezone);
  const a = zone.midnight(fromDate);
  const b = a + days * 86_400_000;
  const reg = new Map(site.meters.map((m, i) => [m.id, 1_000_000 + i * 7_777]));
  const rows: ReadingRow[] = [];
  const others = site.meters.filter((m) => m.role !== 'master');
  const masters = site.meters.filter((m) => m.role === 'master');
  for (let t = a, first = true; t <= b; t += stepMs, first = false) {
    const hour = ((t - a) / 3_600_000) % 24;
    const busy = hour >= 8 && hour < 22 ? 1 : 0.25;
    let sum = 0;
    for (const m of others) {
      // Watts: tenants 2..12 kW by day, common 3 kW.
      const w = m.role === 'common' ? 3000 : (2000 + Math.floor(rnd() * 10_000)) * busy;
      const dWh = first ? 0 : Math.round((w * stepMs) / 3_600_000);
      reg.set(m.id, reg.get(m.id)! + dWh);
      sum += dWh;
    }
    for (const m of masters) {
      const lossPct = 0.01 + rnd() * 0.05; // 1..6 %: sometimes above a 3 % cap
      reg.set(m.id, reg.get(m.id)! + (first ? 0 : Math.round(sum * (1 + lossPct))));
    }
    const jitter = t === a || t === b ? 0 : Math.floor(rnd() * 20_000);
    for (const m of site.meters) rows.push({ time: t + jitter, meter: m.id, wh: reg.get(m.id)! });
  }
  return rows;
}

export function readingLines(site: string, rows: readonly ReadingRow[]): string[] {
  return rows.map((r) => sampleLine(site, { meter: r.meter, time: r.time, wh: r.wh }));
}
