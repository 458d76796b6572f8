import type { RawSeries, TariffRows } from '../types.ts';

/**
 * Readings of many meters in any order, held compactly until billing (issue 3: a month of
 * 1-minute readings for 1,000 meters is ~45M rows; an object per row would not fit in
 * 1 GiB). Rows go into fixed-size chunks per meter as two Int32 offsets (8 bytes a row)
 * from the chunk's first row; a row too far from that base for 32 bits starts a new chunk.
 * Rows that do not fit go to a per-meter wide (2 x Float64) overflow; a run of 64 such
 * rows starts a new chunk instead.
 */

const CHUNK = 4096;
const I32_MIN = -2147483648;
const I32_MAX = 2147483647;
const MISSES_FOR_NEW_CHUNK = 64;

class Chunk {
  n = 0;
  constructor(
    readonly baseT: number,
    readonly baseW: number,
    readonly dt: Int32Array = new Int32Array(CHUNK),
    readonly dw: Int32Array = new Int32Array(CHUNK),
  ) {}
}

/**
 * One meter's rows as plain data, to move a store between threads (the typed arrays are
 * transferable) and merge it into another store: the CLI parses halves of a large file
 * in parallel.
 */
export interface MeterRowsData {
  readonly chunks: readonly { readonly baseT: number; readonly baseW: number; readonly n: number; readonly dt: Int32Array; readonly dw: Int32Array }[];
  readonly wideT: Float64Array | undefined;
  readonly wideW: Float64Array | undefined;
  readonly wideN: number;
  readonly count: number;
  /** Tariff rows (6 numbers each: time, wh, registers 1..4 with NaN for not read) and their count. */
  readonly tar: Float64Array | undefined;
  readonly tarN: number;
}

class MeterRows {
  chunks: Chunk[] = [];
  cur: Chunk | undefined;
  wideT: Float64Array | undefined;
  wideW: Float64Array | undefined;
  wideN = 0;
  count = 0;
  /** Consecutive rows that did not fit the current chunk. */
  misses = 0;
  /**
   * Readings that carry tariff registers (billing.md section 2 rule 5), 6 numbers a row:
   * time, wh, registers 1..4 (NaN: not read). Apart from the chunks, so a file without
   * register columns costs nothing here.
   */
  tar: Float64Array | undefined;
  tarN = 0;
}

/** Numbers per tariff row in MeterRows.tar. */
const TAR = 6;

export class ReadingStore {
  private readonly meters: MeterRows[];
  /** Earliest and latest instant added (epoch ms); +-Infinity while empty. */
  minTime = Infinity;
  maxTime = -Infinity;

  constructor(readonly meterCount: number) {
    this.meters = Array.from({ length: meterCount }, () => new MeterRows());
  }

  /** Adds one reading of meter index `meter` (epoch ms, Wh; both safe integers). */
  add(meter: number, time: number, wh: number): void {
    const m = this.meters[meter];
    m.count++;
    if (time < this.minTime) this.minTime = time;
    if (time > this.maxTime) this.maxTime = time;
    const c = m.cur;
    if (c !== undefined && c.n < CHUNK) {
      const dt = time - c.baseT;
      const dw = wh - c.baseW;
      if (dt >= I32_MIN && dt <= I32_MAX && dw >= I32_MIN && dw <= I32_MAX) {
        c.dt[c.n] = dt;
        c.dw[c.n] = dw;
        c.n++;
        m.misses = 0;
        return;
      }
      // Too far from this chunk's base: the row goes wide (16 bytes). Only a long run of
      // such rows (sorted data that has moved on, e.g. hourly readings past 24.8 days)
      // starts a new chunk; in shuffled input the misses are scattered and the chunk
      // keeps filling (a shuffled 45M-row month stays near 9 bytes a row).
      if (++m.misses < MISSES_FOR_NEW_CHUNK) {
        this.addWide(m, time, wh);
        return;
      }
    }
    const fresh = new Chunk(time, wh);
    fresh.n = 1;
    m.chunks.push(fresh);
    m.cur = fresh;
    m.misses = 0;
  }

  /**
   * Records the tariff registers read with a reading (add() records the reading itself):
   * r1..r4 in Wh, NaN where a register was not read.
   */
  addTariff(meter: number, time: number, wh: number, r1: number, r2: number, r3: number, r4: number): void {
    const m = this.meters[meter];
    if (m.tar === undefined || (m.tarN + 1) * TAR > m.tar.length) {
      const next = new Float64Array(m.tar ? m.tar.length * 2 : TAR * 64);
      if (m.tar) next.set(m.tar);
      m.tar = next;
    }
    const o = m.tarN * TAR;
    m.tar[o] = time;
    m.tar[o + 1] = wh;
    m.tar[o + 2] = r1;
    m.tar[o + 3] = r2;
    m.tar[o + 4] = r3;
    m.tar[o + 5] = r4;
    m.tarN++;
  }

  private addWide(m: MeterRows, time: number, wh: number): void {
    if (m.wideT === undefined || m.wideN === m.wideT.length) {
      const size = m.wideT ? m.wideT.length * 2 : 64;
      const t = new Float64Array(size);
      const w = new Float64Array(size);
      if (m.wideT && m.wideW) {
        t.set(m.wideT);
        w.set(m.wideW);
      }
      m.wideT = t;
      m.wideW = w;
    }
    m.wideT[m.wideN] = time;
    m.wideW![m.wideN] = wh;
    m.wideN++;
  }

  count(meter: number): number {
    return this.meters[meter].count;
  }

  /** The meter's rows sorted by time (rows of equal time adjacent, in no set order). */
  series(meter: number): RawSeries {
    const m = this.meters[meter];
    const n = m.count;
    const time = new Float64Array(n);
    const wh = new Float64Array(n);
    let k = 0;
    for (const c of m.chunks) {
      for (let i = 0; i < c.n; i++, k++) {
        time[k] = c.baseT + c.dt[i];
        wh[k] = c.baseW + c.dw[i];
      }
    }
    for (let i = 0; i < m.wideN; i++, k++) {
      time[k] = m.wideT![i];
      wh[k] = m.wideW![i];
    }
    const sorted = sortSeries(time, wh);
    return m.tarN === 0 ? sorted : { ...sorted, tariff: tariffRows(m.tar!, m.tarN) };
  }

  /** Hands over a meter's rows (and forgets them here). */
  exportMeter(meter: number): MeterRowsData {
    const m = this.meters[meter];
    this.meters[meter] = new MeterRows();
    return { chunks: m.chunks.map((c) => ({ baseT: c.baseT, baseW: c.baseW, n: c.n, dt: c.dt, dw: c.dw })), wideT: m.wideT, wideW: m.wideW, wideN: m.wideN, count: m.count, tar: m.tar, tarN: m.tarN };
  }

  /** Adds rows exported from another store (any order is fine: series() sorts). */
  importMeter(meter: number, data: MeterRowsData, minTime: number, maxTime: number): void {
    const m = this.meters[meter];
    for (const c of data.chunks) {
      const chunk = new Chunk(c.baseT, c.baseW, c.dt, c.dw);
      chunk.n = c.n;
      // Imported chunks go before the current one, which stays open for add().
      if (m.cur) m.chunks.splice(m.chunks.length - 1, 0, chunk);
      else m.chunks.push(chunk);
    }
    for (let i = 0; i < data.wideN; i++) this.addWide(m, data.wideT![i], data.wideW![i]);
    for (let i = 0; i < data.tarN; i++) {
      const o = i * TAR;
      const t = data.tar!;
      this.addTariff(meter, t[o], t[o + 1], t[o + 2], t[o + 3], t[o + 4], t[o + 5]);
    }
    m.count += data.count;
    if (minTime < this.minTime) this.minTime = minTime;
    if (maxTime > this.maxTime) this.maxTime = maxTime;
  }

  /** Frees a meter's rows once its series has been taken. */
  release(meter: number): void {
    this.meters[meter] = new MeterRows();
  }
}

/** A meter's tariff rows (MeterRows.tar) as TariffRows sorted by time. */
function tariffRows(tar: Float64Array, n: number): TariffRows {
  const order = Array.from({ length: n }, (_, i) => i);
  let sorted = true;
  for (let i = 1; i < n && sorted; i++) if (tar[i * TAR] < tar[(i - 1) * TAR]) sorted = false;
  if (!sorted) order.sort((a, b) => tar[a * TAR] - tar[b * TAR] || a - b);
  const time = new Float64Array(n);
  const wh = new Float64Array(n);
  const reg = new Float64Array(n * 4);
  order.forEach((src, i) => {
    const o = src * TAR;
    time[i] = tar[o];
    wh[i] = tar[o + 1];
    reg.set(tar.subarray(o + 2, o + 6), i * 4);
  });
  return { time, wh, reg };
}

/**
 * Sorts (time, wh) pairs by time. Already-sorted input (the common case) is returned as
 * is. Otherwise a Float64 key (time - min) * 2^bits + index is sorted natively when it
 * stays exact, which is much faster than a comparator sort.
 */
export function sortSeries(time: Float64Array, wh: Float64Array): RawSeries {
  const n = time.length;
  let sorted = true;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const t = time[i];
    if (i > 0 && t < time[i - 1]) sorted = false;
    if (t < min) min = t;
    if (t > max) max = t;
  }
  if (sorted) return { time, wh };
  const bits = Math.max(1, Math.ceil(Math.log2(n + 1)));
  const scale = 2 ** bits;
  let order: ArrayLike<number>;
  if ((max - min + 1) * scale <= Number.MAX_SAFE_INTEGER) {
    const keys = new Float64Array(n);
    for (let i = 0; i < n; i++) keys[i] = (time[i] - min) * scale + i;
    keys.sort();
    const idx = new Uint32Array(n);
    for (let i = 0; i < n; i++) idx[i] = keys[i] % scale;
    order = idx;
  } else {
    const idx = new Uint32Array(n);
    for (let i = 0; i < n; i++) idx[i] = i;
    idx.sort((a, b) => time[a] - time[b] || a - b);
    order = idx;
  }
  const t2 = new Float64Array(n);
  const w2 = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    t2[i] = time[order[i]];
    w2[i] = wh[order[i]];
  }
  return { time: t2, wh: w2 };
}
