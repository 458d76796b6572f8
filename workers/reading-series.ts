import { meterIndex, ReadingStore, sortSeries, TARIFF_REGISTERS } from '../core/index.ts';
import type { RawSeries, Site } from '../core/index.ts';
import { F } from '../influx/schema.ts';

/**
 * The `reading` fields billing reads: the total register and the tariff registers, which
 * spread a gap's energy over the TOU periods (billing.md section 2 rule 5). Every loader of
 * raw readings (the settlement's window, the rollup's new readings and its seed) selects
 * them, so the rollup's buckets, the provisional and the nightly settlement and the offline
 * bill see the same readings.
 */
export const READING_FIELDS = [F.wh, ...TARIFF_REGISTERS.map((n) => F.whTariff(n))].join(', ');

/**
 * Rows of one meter as InfluxDB returns them for `SELECT ${READING_FIELDS}` (columns by
 * name; a row without an integer `wh` is another field's only and is skipped), sorted by
 * time, equal instants kept (the counter rules decide about them).
 */
export function seriesOfRows(columns: readonly string[], values: readonly (readonly unknown[])[]): RawSeries {
  const ti = columns.indexOf('time');
  const wi = columns.indexOf(F.wh);
  const ri = TARIFF_REGISTERS.map((n) => columns.indexOf(F.whTariff(n)));
  const n = values.length;
  const time = new Float64Array(n);
  const wh = new Float64Array(n);
  const tt: number[] = [];
  const tw: number[] = [];
  const tr: number[] = [];
  let k = 0;
  for (const v of values) {
    const w = v[wi];
    if (typeof w !== 'number') continue;
    time[k] = v[ti] as number;
    wh[k] = w;
    k++;
    let any = false;
    const regs = ri.map((i) => {
      const r = i < 0 ? undefined : v[i];
      if (typeof r !== 'number') return NaN;
      any = true;
      return r;
    });
    if (any) {
      tt.push(v[ti] as number);
      tw.push(w);
      tr.push(...regs);
    }
  }
  const sorted = sortSeries(time.subarray(0, k), wh.subarray(0, k));
  if (tt.length === 0) return sorted;
  return { ...sorted, tariff: sortTariff(Float64Array.from(tt), Float64Array.from(tw), Float64Array.from(tr)) };
}

/** Two series of one meter as one (e.g. a window and the readings at its edges). */
export function joinSeries(a: RawSeries, b: RawSeries): RawSeries {
  const joined = sortSeries(Float64Array.from([...a.time, ...b.time]), Float64Array.from([...a.wh, ...b.wh]));
  if (!a.tariff && !b.tariff) return joined;
  const parts = [a.tariff, b.tariff].filter((t) => t !== undefined);
  const time = Float64Array.from(parts.flatMap((t) => [...t.time]));
  const wh = Float64Array.from(parts.flatMap((t) => [...t.wh]));
  const reg = Float64Array.from(parts.flatMap((t) => [...t.reg]));
  return { ...joined, tariff: sortTariff(time, wh, reg) };
}

function sortTariff(time: Float64Array, wh: Float64Array, reg: Float64Array): NonNullable<RawSeries['tariff']> {
  let sorted = true;
  for (let i = 1; i < time.length && sorted; i++) if (time[i] < time[i - 1]) sorted = false;
  if (sorted) return { time, wh, reg };
  const order = Array.from(time, (_, i) => i).sort((x, y) => time[x] - time[y] || x - y);
  const r = new Float64Array(reg.length);
  order.forEach((src, i) => r.set(reg.subarray(src * 4, src * 4 + 4), i * 4));
  return { time: Float64Array.from(order, (i) => time[i]), wh: Float64Array.from(order, (i) => wh[i]), reg: r };
}

/** Loaded series by meter id as the core's ReadingStore (unknown meters left out), tariff registers included. */
export function readingStoreOf(site: Site, raw: ReadonlyMap<string, RawSeries>): ReadingStore {
  const store = new ReadingStore(site.meters.length);
  for (const [meter, i] of meterIndex(site)) {
    const s = raw.get(meter);
    if (!s) continue;
    for (let k = 0; k < s.time.length; k++) store.add(i, s.time[k], s.wh[k]);
    const t = s.tariff;
    if (t) for (let k = 0; k < t.time.length; k++) store.addTariff(i, t.time[k], t.wh[k], t.reg[k * 4], t.reg[k * 4 + 1], t.reg[k * 4 + 2], t.reg[k * 4 + 3]);
  }
  return store;
}
