import { BillingInputError } from '../errors.ts';
import type { Site } from '../site/model.ts';
import { parseReadingLine, parseReadingsHeader, READING_TARIFF_COLUMNS } from './csv.ts';
import type { CsvHeader } from './csv.ts';
import { FIRST_YEAR, LAST_YEAR } from '../date-range.ts';
import { daysFromCivil, daysInMonth } from './rfc3339.ts';
import { ReadingStore } from './store.ts';

/**
 * Streams a readings CSV (billing.md section 1) from byte chunks into a ReadingStore
 * without a string or object per row: the issue-3 month is ~45M rows. The byte fast path
 * handles the canonical form (`2026-10-01T00:00:00+08:00,T101,123.456`); any line it does
 * not recognise is decoded and handed to parseReadingLine, which either reads it the same
 * way or names the bad field. So both paths accept exactly the same lines.
 * Pure: the caller reads the file and pushes chunks.
 */

const COMMA = 44;
const LF = 10;
const CR = 13;
const QUOTE = 34;
const ZERO = 48;

export class ReadingsScanner {
  readonly store: ReadingStore;
  /** Lines seen so far, header included. */
  line = 0;
  rows = 0;
  private header: CsvHeader | undefined;
  private carry: Uint8Array | undefined;
  // Strict: a line that is not UTF-8 is an error naming its line, never repaired with U+FFFD
  // (a meter id differing in one byte would silently become another text).
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });
  private readonly meterIndex: Map<string, number>;
  private readonly table: Int32Array;
  private readonly mask: number;
  private readonly idBytes: Uint8Array[];
  // Column positions of the fast path.
  private ti = 0;
  private mi = 0;
  private ki = 0;
  /** Columns of the tariff registers 1..4 (billing.md section 1), -1 when absent; any: some is there. */
  private readonly tc = new Int32Array([-1, -1, -1, -1]);
  private anyTariff = false;
  private readonly regs = new Float64Array(4);
  private need = 0;
  private readonly starts = new Int32Array(64);
  private readonly ends = new Int32Array(64);
  private skipped = false;
  private lastDateKey = -1;
  private lastDays = 0;

  constructor(
    site: Site,
    readonly source: string,
    store?: ReadingStore,
  ) {
    this.store = store ?? new ReadingStore(site.meters.length);
    this.meterIndex = new Map(site.meters.map((m, i) => [m.id, i]));
    this.idBytes = site.meters.map((m) => new TextEncoder().encode(m.id));
    let size = 16;
    while (size < site.meters.length * 4) size *= 2;
    this.table = new Int32Array(size).fill(-1);
    this.mask = size - 1;
    this.idBytes.forEach((b, i) => {
      let h = hashBytes(b, 0, b.length) & this.mask;
      while (this.table[h] !== -1) h = (h + 1) & this.mask;
      this.table[h] = i;
    });
  }

  /**
   * Reads the header line. Called for the file's first line, or directly when this scanner
   * reads a later part of the file (the CLI parses halves of a large file in parallel).
   */
  useHeader(text: string): void {
    const r = parseReadingsHeader(text.replace(/\r$/, ''));
    if (!r.ok) throw new BillingInputError(r.error.message, { file: this.source, line: this.line || 1, field: r.error.field });
    this.header = r.value;
    this.ti = r.value.index.time;
    this.mi = r.value.index.meter;
    this.ki = r.value.index.kwh;
    let read = 3;
    this.need = Math.max(this.ti, this.mi, this.ki) + 1;
    READING_TARIFF_COLUMNS.forEach((c, k) => {
      const at = r.value.index[c];
      this.tc[k] = at ?? -1;
      if (at === undefined) return;
      this.anyTariff = true;
      read++;
      this.need = Math.max(this.need, at + 1);
    });
    if (this.need > this.starts.length) this.need = -1; // unusual layout: slow path only
    // Columns the fast path skips before the last one it reads (e.g. meter,note,time,kwh):
    // their bytes are checked for UTF-8 validity (any non-ASCII line goes the slow way).
    this.skipped = this.need > read;
  }

  /** Feeds the next chunk of the file. */
  push(chunk: Uint8Array): void {
    let s = 0;
    const n = chunk.length;
    if (this.carry) {
      // Only the line cut at the chunk boundary is copied, never the chunk: copying 8 MiB
      // per chunk was 1.7 GB of memcpy and large garbage for the 45M-row month.
      const lf = indexOfLf(chunk, 0, n);
      const head = lf < 0 ? chunk : chunk.subarray(0, lf);
      const joined = new Uint8Array(this.carry.length + head.length);
      joined.set(this.carry);
      joined.set(head, this.carry.length);
      this.carry = undefined;
      if (lf < 0) {
        this.carry = joined;
        return;
      }
      this.lineAt(joined, 0, joined.length);
      s = lf + 1;
    }
    for (;;) {
      const e = indexOfLf(chunk, s, n);
      if (e < 0) break;
      this.lineAt(chunk, s, e);
      s = e + 1;
    }
    if (s < n) this.carry = chunk.slice(s);
  }

  /** Ends the file (a last line without a newline). */
  end(): ReadingStore {
    if (this.carry) {
      const c = this.carry;
      this.carry = undefined;
      this.lineAt(c, 0, c.length);
    }
    if (!this.header) throw new BillingInputError('empty file: expected a header line time,meter,kwh', { file: this.source, line: 1 });
    return this.store;
  }

  private lineAt(buf: Uint8Array, s: number, e: number): void {
    this.line++;
    if (e > s && buf[e - 1] === CR) e--;
    if (e === s) return; // blank lines carry nothing
    if (!this.header) {
      this.useHeader(this.text(buf, s, e));
      return;
    }
    if (this.need < 0 || !this.fast(buf, s, e)) this.slow(buf, s, e);
    this.rows++;
  }

  private text(buf: Uint8Array, s: number, e: number): string {
    try {
      return this.decoder.decode(buf.subarray(s, e));
    } catch {
      throw new BillingInputError('line is not valid UTF-8 text (save the file as UTF-8)', { file: this.source, line: this.line });
    }
  }

  private slow(buf: Uint8Array, s: number, e: number): void {
    const r = parseReadingLine(this.text(buf, s, e), this.header!);
    if (!r.ok) throw new BillingInputError(r.error.message, { file: this.source, line: this.line, field: r.error.field });
    const m = this.meterIndex.get(r.value.meter);
    if (m === undefined) throw new BillingInputError(`unknown meter '${r.value.meter}' (not in the site file)`, { file: this.source, line: this.line, field: 'meter' });
    this.store.add(m, r.value.time, r.value.wh);
    const tw = r.value.tariffWh;
    if (tw) this.store.addTariff(m, r.value.time, r.value.wh, tw[1] ?? NaN, tw[2] ?? NaN, tw[3] ?? NaN, tw[4] ?? NaN);
  }

  /** The canonical line; false sends it to the slow path (which also reports errors). */
  private fast(buf: Uint8Array, s: number, e: number): boolean {
    const starts = this.starts;
    const ends = this.ends;
    const need = this.need;
    if (this.skipped) for (let k = s; k < e; k++) if (buf[k] >= 0x80) return false;
    let col = 0;
    starts[0] = s;
    for (let i = s; i < e; i++) {
      const c = buf[i];
      if (c === COMMA) {
        ends[col] = i;
        col++;
        if (col === need) {
          // Columns billing ignores: only their UTF-8 validity matters (the slow path names
          // the line). The canonical three-column line has none, so costs nothing here.
          for (let k = i + 1; k < e; k++) if (buf[k] >= 0x80) return false;
          break;
        }
        starts[col] = i + 1;
      } else if (c === QUOTE) return false;
    }
    if (col < need) {
      if (col !== need - 1) return false;
      ends[col] = e;
    }
    const time = this.time(buf, starts[this.ti], ends[this.ti]);
    if (time === undefined) return false;
    const wh = kwhBytes(buf, starts[this.ki], ends[this.ki]);
    if (wh < 0) return false;
    const ms = starts[this.mi];
    const me = ends[this.mi];
    let h = hashBytes(buf, ms, me) & this.mask;
    for (;;) {
      const m = this.table[h];
      if (m === -1) return false;
      const id = this.idBytes[m];
      if (id.length === me - ms) {
        let same = true;
        for (let k = 0; k < id.length; k++) {
          if (id[k] !== buf[ms + k]) {
            same = false;
            break;
          }
        }
        if (same) {
          if (this.anyTariff && !this.tariffs(buf, m, time, wh)) return false;
          this.store.add(m, time, wh);
          return true;
        }
      }
      h = (h + 1) & this.mask;
    }
  }

  /**
   * The line's tariff registers (kWh like `kwh`; an empty field is a register not read) into
   * the store; false when one is not canonical (the slow path reads it or names the field).
   */
  private tariffs(buf: Uint8Array, m: number, time: number, wh: number): boolean {
    const r = this.regs.fill(NaN);
    let any = false;
    for (let k = 0; k < 4; k++) {
      const c = this.tc[k];
      if (c < 0 || this.starts[c] === this.ends[c]) continue;
      const v = kwhBytes(buf, this.starts[c], this.ends[c]);
      if (v < 0) return false;
      r[k] = v;
      any = true;
    }
    if (any) this.store.addTariff(m, time, wh, r[0], r[1], r[2], r[3]);
    return true;
  }

  private time(b: Uint8Array, s: number, e: number): number | undefined {
    if (e - s < 20) return undefined;
    if (b[s + 4] !== 45 || b[s + 7] !== 45 || b[s + 13] !== 58 || b[s + 16] !== 58) return undefined;
    const sep = b[s + 10];
    if (sep !== 84 && sep !== 116 && sep !== 32) return undefined;
    const y = d4(b, s);
    const mo = d2(b, s + 5);
    const d = d2(b, s + 8);
    const hh = d2(b, s + 11);
    const mi = d2(b, s + 14);
    const ss = d2(b, s + 17);
    // Years outside the supported range go to the slow path, which names the problem.
    if (y < FIRST_YEAR || y > LAST_YEAR || mo < 1 || mo > 12 || d < 1 || hh < 0 || hh > 23 || mi < 0 || mi > 59 || ss < 0 || ss > 59) return undefined;
    let p = s + 19;
    let ms = 0;
    if (b[p] === 46) {
      p++;
      const f0 = p;
      while (p < e && b[p] >= ZERO && b[p] <= ZERO + 9) {
        if (p - f0 < 3) ms = ms * 10 + (b[p] - ZERO);
        p++;
      }
      if (p === f0) return undefined;
      for (let k = p - f0; k < 3; k++) ms *= 10;
    }
    let off = 0;
    const z = b[p];
    if (z === 90 || z === 122) {
      if (p + 1 !== e) return undefined;
    } else if (z === 43 || z === 45) {
      if (p + 6 !== e || b[p + 3] !== 58) return undefined;
      const oh = d2(b, p + 1);
      const om = d2(b, p + 4);
      if (oh < 0 || oh > 23 || om < 0 || om > 59) return undefined;
      off = (oh * 60 + om) * (z === 45 ? -1 : 1);
    } else return undefined;
    const key = y * 10000 + mo * 100 + d;
    if (key !== this.lastDateKey) {
      if (d > daysInMonth(y, mo)) return undefined;
      this.lastDateKey = key;
      this.lastDays = daysFromCivil(y, mo, d);
    }
    return this.lastDays * 86_400_000 + ((hh * 60 + mi - off) * 60 + ss) * 1000 + ms;
  }
}

function d2(b: Uint8Array, i: number): number {
  const x = b[i] - ZERO;
  const y = b[i + 1] - ZERO;
  if (x < 0 || x > 9 || y < 0 || y > 9) return -1;
  return x * 10 + y;
}

function d4(b: Uint8Array, i: number): number {
  const x = d2(b, i);
  const y = d2(b, i + 2);
  return x < 0 || y < 0 ? -1 : x * 100 + y;
}

/** kWh text to whole Wh as in kwhToWh (half-up on the 4th decimal); -1 if not canonical. */
function kwhBytes(b: Uint8Array, s: number, e: number): number {
  let int = 0;
  let p = s;
  while (p < e && b[p] >= ZERO && b[p] <= ZERO + 9) {
    int = int * 10 + (b[p] - ZERO);
    p++;
  }
  if (p === s || p - s > 10) return -1;
  let frac = 0;
  let digits = 0;
  let up = 0;
  if (p < e) {
    if (b[p] !== 46) return -1;
    p++;
    const f0 = p;
    while (p < e) {
      const c = b[p] - ZERO;
      if (c < 0 || c > 9) return -1;
      if (digits < 3) {
        frac = frac * 10 + c;
        digits++;
      } else if (p - f0 === 3) up = c >= 5 ? 1 : 0;
      p++;
    }
    if (p === f0) return -1;
  }
  for (; digits < 3; digits++) frac *= 10;
  return int * 1000 + frac + up;
}

/**
 * The next LF in [s, n), or -1. A plain loop: Uint8Array.prototype.indexOf is a call
 * into the runtime per line, which cost more than the ~40 bytes it scans here.
 */
function indexOfLf(b: Uint8Array, s: number, n: number): number {
  for (let i = s; i < n; i++) if (b[i] === LF) return i;
  return -1;
}

/** FNV-1a over bytes [s, e). */
function hashBytes(b: Uint8Array, s: number, e: number): number {
  let h = 0x811c9dc5;
  for (let i = s; i < e; i++) h = Math.imul(h ^ b[i], 0x01000193);
  return h >>> 0;
}
