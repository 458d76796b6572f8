import { acceptReadings, addDays, buildCalendar, PERIODS, siteIndex, splitSeries } from '../core/index.ts';
import type { CellEnergy, LocalDate, QualityFlag, RawSeries, Site } from '../core/index.ts';
import { EMPTY_SERIES } from './context.ts';

/**
 * TEMPORARY ADAPTER (until the core exports the equivalent; computeBillRun does the same
 * inside): the day-period cells of one local day from raw readings, i.e. the input of the
 * core's settleDay. Only plumbing: counter rules (acceptReadings), the cut calendar
 * (buildCalendar) and the linear split (splitSeries) are the core's; this sums the
 * per-meter segments by role into M, T_i and C_k (billing.md section 4, first bullet).
 */
export function dayCells(site: Site, date: LocalDate, raw: ReadonlyMap<string, RawSeries>): { cells: CellEnergy[]; flags: QualityFlag[] } {
  const idx = siteIndex(site);
  const cal = buildCalendar(site, date, addDays(date, 1));
  const np = PERIODS.length;
  const master = new Float64Array(np);
  const tenant = idx.accountIds.map(() => new Float64Array(np));
  const poolPos = new Map(idx.pools.map((p, k) => [p.id, k]));
  const pool = idx.pools.map(() => new Float64Array(np));
  const seg = new Float64Array(cal.segments);
  const flags: QualityFlag[] = [];
  const a = cal.start[0];
  const b = cal.start[cal.segments];
  for (const meter of site.meters) {
    const acc = acceptReadings(meter, raw.get(meter.id) ?? EMPTY_SERIES);
    for (const f of acc.flags) if (f.time >= a && f.time < b) flags.push(f);
    seg.fill(0);
    splitSeries(acc, cal, seg);
    const target = meter.role === 'master' ? master : meter.role === 'tenant' ? tenant[idx.accountPos.get(meter.account!)!] : pool[poolPos.get(meter.pool!)!];
    for (let k = 0; k < cal.segments; k++) target[cal.period[k]] += seg[k];
  }
  const first = new Float64Array(np).fill(NaN);
  for (let k = 0; k < cal.segments; k++) if (Number.isNaN(first[cal.period[k]])) first[cal.period[k]] = cal.start[k];
  const cells: CellEnergy[] = [];
  for (let p = 0; p < np; p++) {
    if (Number.isNaN(first[p])) continue;
    cells.push({
      date,
      period: PERIODS[p],
      firstInstant: first[p],
      masterWh: master[p],
      tenantWh: new Map(idx.accountIds.map((id, i) => [id, tenant[i][p]])),
      poolWh: new Map(idx.pools.map((q, k) => [q.id, pool[k][p]])),
    });
  }
  return { cells, flags };
}
