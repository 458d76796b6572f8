import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseSiteYaml } from '../site/index.ts';
import { kwhToWh, parsePaymentLine, parsePaymentsHeader, parseReadingLine, parseReadingsHeader } from './csv.ts';
import { parseRfc3339 } from './rfc3339.ts';
import { ReadingsScanner } from './scan.ts';
import { ReadingStore } from './store.ts';
import { registersAt } from './tariff-rows.ts';

const header = (line: string) => {
  const h = parseReadingsHeader(line);
  if (!h.ok) throw new Error(h.error.message);
  return h.value;
};

describe('readings CSV (billing.md section 1)', () => {
  it('rounds kWh with more than 3 decimals half-up to whole Wh', () => {
    expect(kwhToWh('1.2344')).toBe(1234);
    expect(kwhToWh('1.2345')).toBe(1235);
    expect(kwhToWh('1.23449999')).toBe(1234);
    expect(kwhToWh('0.0005')).toBe(1);
    expect(kwhToWh('42')).toBe(42000);
    expect(kwhToWh('-1')).toMatch(/non-negative/);
  });

  it('parses RFC 3339 with offsets, truncating to whole ms, and refuses local times', () => {
    expect(parseRfc3339('2026-10-01T00:00:00+08:00')).toBe(Date.parse('2026-09-30T16:00:00Z'));
    expect(parseRfc3339('2026-10-01T00:00:00.123987Z')).toBe(Date.parse('2026-10-01T00:00:00.123Z'));
    expect(parseRfc3339('2026-10-01 00:00:00-05:30')).toBe(Date.parse('2026-10-01T05:30:00Z'));
    expect(parseRfc3339('2026-10-01T00:00:00')).toMatch(/offset/);
    expect(parseRfc3339('2026-02-29T00:00:00Z')).toMatch(/no such date/);
    expect(parseRfc3339('2026-10-01T24:00:00Z')).toMatch(/no such time/);
  });

  it('names the field of a bad line and ignores extra columns', () => {
    const h = header('time,meter,kwh,kw');
    expect(parseReadingLine('2026-10-01T00:00:00Z,T1,1.5,3.2', h)).toEqual({ ok: true, value: { time: Date.parse('2026-10-01T00:00:00Z'), meter: 'T1', wh: 1500 } });
    expect(parseReadingLine('2026-10-01,T1,1.5', h)).toMatchObject({ ok: false, error: { field: 'time' } });
    expect(parseReadingLine('2026-10-01T00:00:00Z,,1', h)).toMatchObject({ ok: false, error: { field: 'meter' } });
    expect(parseReadingLine('2026-10-01T00:00:00Z,T1', h)).toMatchObject({ ok: false, error: { field: 'kwh' } });
    expect(parseReadingsHeader('time,meter')).toMatchObject({ ok: false, error: { field: 'kwh' } });
  });

  it('parses payments with at most 2 decimals', () => {
    const h = parsePaymentsHeader('time,account,amount,reference');
    if (!h.ok) throw new Error('header');
    expect(parsePaymentLine('2026-10-01T00:00:00Z,A1,12.5,R1', h.value)).toMatchObject({ ok: true, value: { fen: 1250, reference: 'R1' } });
    expect(parsePaymentLine('2026-10-01T00:00:00Z,A1,12.505,R1', h.value)).toMatchObject({ ok: false, error: { field: 'amount' } });
    expect(parsePaymentLine('2026-10-01T00:00:00Z,A1,1,', h.value)).toMatchObject({ ok: false, error: { field: 'reference' } });
  });
});

describe('ReadingsScanner', () => {
  const site = parseSiteYaml(`site: { id: s, timezone: Asia/Shanghai }
meters:
  - { id: M, role: master }
  - { id: T-1, role: tenant, account: A }
  - { id: T.2, role: tenant, account: A }
accounts:
  - { id: A, tariff: t }
tariffs:
  - id: t
    versions:
      - effective_from: 2026-01-01
        prices: { flat: 1 }
        schedule: [{ periods: [{ from: "00:00", to: "24:00", period: flat }] }]
`);
  const ids = ['M', 'T-1', 'T.2'];

  // Lines the byte fast path takes and lines it hands to parseReadingLine: both must agree.
  const timeText = fc.tuple(fc.integer({ min: Date.parse('2000-01-01T12:00:00Z'), max: Date.parse('2199-12-31T00:00:00Z') }), fc.constantFrom('Z', 'z', '+08:00', '-03:30', '+00:00'), fc.constantFrom('', '.5', '.123', '.123456'), fc.constantFrom('T', ' ', 't')).map(([ms, off, frac, sep]) => {
    const sign = off.startsWith('-') ? -1 : 1;
    const offMin = off.length > 1 ? sign * (Number(off.slice(1, 3)) * 60 + Number(off.slice(4, 6))) : 0;
    const wall = new Date(Math.floor(ms / 1000) * 1000 + offMin * 60_000).toISOString();
    return `${wall.slice(0, 10)}${sep}${wall.slice(11, 19)}${frac}${off}`;
  });
  const kwh = fc.oneof(fc.integer({ min: 0, max: 9_999_999_999 }).map(String), fc.tuple(fc.integer({ min: 0, max: 99_999_999 }), fc.stringMatching(/^[0-9]{1,7}$/)).map(([i, f]) => `${i}.${f}`));
  const line = fc.tuple(timeText, fc.constantFrom(...ids), kwh, fc.constantFrom('', ',1.5', ',"x,y"'), fc.boolean()).map(([t, m, k, extra, quote]) => (quote ? `"${t}",${m},${k}${extra}` : `${t},${m},${k}${extra}`));

  it('reads exactly what parseReadingLine reads, in any chunking', () => {
    fc.assert(
      fc.property(fc.array(line, { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 64 }), fc.boolean(), (lines, chunk, crlf) => {
        const h = header('time,meter,kwh,kw');
        const expected = new ReadingStore(3);
        for (const l of lines) {
          const r = parseReadingLine(l, h);
          if (!r.ok) throw new Error(`${l}: ${r.error.field} ${r.error.message}`);
          expected.add(ids.indexOf(r.value.meter), r.value.time, r.value.wh);
        }
        const eol = crlf ? '\r\n' : '\n';
        const bytes = new TextEncoder().encode(`time,meter,kwh,kw${eol}${lines.join(eol)}`);
        const scanner = new ReadingsScanner(site, 'r.csv');
        for (let i = 0; i < bytes.length; i += chunk) scanner.push(bytes.subarray(i, i + chunk));
        const got = scanner.end();
        for (let m = 0; m < 3; m++) expect(got.series(m)).toEqual(expected.series(m));
      }),
      { numRuns: 200, seed: 11 },
    );
  });

  // Issue 16 follow-up: the tariff registers (billing.md section 1, `kwh_t1`..`kwh_t4`), in
  // any column order, some empty (a register not read): fast and slow path agree.
  const reg = fc.oneof(fc.constant(''), kwh);
  const tariffLine = fc.tuple(timeText, fc.constantFrom(...ids), kwh, reg, reg, reg, reg, fc.boolean()).map(([t, m, k, a, b, c, d, quote]) => `${quote ? `"${t}"` : t},${a},${m},${b},${k},${c},${d}`);
  it('reads the tariff register columns exactly as parseReadingLine, in any chunking', () => {
    const cols = 'time,kwh_t2,meter,kwh_t1,kwh,kwh_t4,kwh_t3';
    fc.assert(
      fc.property(fc.array(tariffLine, { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 64 }), (lines, chunk) => {
        const h = header(cols);
        const expected = new ReadingStore(3);
        for (const l of lines) {
          const r = parseReadingLine(l, h);
          if (!r.ok) throw new Error(`${l}: ${r.error.field} ${r.error.message}`);
          const m = ids.indexOf(r.value.meter);
          expected.add(m, r.value.time, r.value.wh);
          const tw = r.value.tariffWh;
          if (tw) expected.addTariff(m, r.value.time, r.value.wh, tw[1] ?? NaN, tw[2] ?? NaN, tw[3] ?? NaN, tw[4] ?? NaN);
        }
        const bytes = new TextEncoder().encode(`${cols}\n${lines.join('\n')}`);
        const scanner = new ReadingsScanner(site, 'r.csv');
        for (let i = 0; i < bytes.length; i += chunk) scanner.push(bytes.subarray(i, i + chunk));
        const got = scanner.end();
        for (let m = 0; m < 3; m++) expect(got.series(m)).toEqual(expected.series(m));
      }),
      { numRuns: 200, seed: 13 },
    );
    // Columns kwh_t2 and kwh_t1 swapped in the header: each value goes to its register.
    const r = parseReadingLine('2026-10-01T00:00:00Z,2.5,T-1,1.25,10,,4', header(cols));
    expect(r).toEqual({ ok: true, value: { time: Date.parse('2026-10-01T00:00:00Z'), meter: 'T-1', wh: 10_000, tariffWh: { 1: 1250, 2: 2500, 3: 4000 } } });
    expect(parseReadingLine('2026-10-01T00:00:00Z,x,T-1,1,10,,', header(cols))).toMatchObject({ ok: false, error: { field: 'kwh_t2' } });
    // Without register columns (or with all empty) a row carries none.
    expect(parseReadingLine('2026-10-01T00:00:00Z,,T-1,,10,,', header(cols))).toEqual({ ok: true, value: { time: Date.parse('2026-10-01T00:00:00Z'), meter: 'T-1', wh: 10_000 } });
  });

  it('names file, line and field of a bad line', () => {
    const scan = (text: string) => {
      const s = new ReadingsScanner(site, 'r.csv');
      s.push(new TextEncoder().encode(text));
      return s.end();
    };
    expect(() => scan('time,meter,kwh\n2026-10-01T00:00:00Z,M,1\n\n2026-10-01T00:00:00Z,X,1\n')).toThrow("r.csv:4: meter: unknown meter 'X'");
    expect(() => scan('time,meter,kwh\n2026-13-01T00:00:00Z,M,1\n')).toThrow('r.csv:2: time:');
    expect(() => scan('meter,kwh\n')).toThrow('r.csv:1: time:');
    expect(() => scan('')).toThrow('r.csv:1: empty file');
    expect(() => scan('time,meter,kwh,kwh_t3\n2026-10-01T00:00:00Z,M,1,0.5\n2026-10-01T01:00:00Z,M,2,-1\n')).toThrow('r.csv:3: kwh_t3: must be a non-negative decimal');
  });
});

describe('ReadingStore', () => {
  it('returns every row sorted by time whatever the order and spread of the input', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 2 ** 42 }), fc.integer({ min: 0, max: 2 ** 40 })), { maxLength: 300 }), (rows) => {
        const store = new ReadingStore(1);
        for (const [t, w] of rows) store.add(0, t, w);
        const s = store.series(0);
        const got = [...s.time].map((t, i) => [t, s.wh[i]]);
        const want = [...rows].sort((a, b) => a[0] - b[0]);
        expect(got.map((r) => r[0])).toEqual(want.map((r) => r[0]));
        expect([...got].sort((a, b) => a[0] - b[0] || a[1] - b[1])).toEqual([...want].sort((a, b) => a[0] - b[0] || a[1] - b[1]));
      }),
      { numRuns: 200, seed: 12 },
    );
  });

  it('keeps every row across chunk boundaries, wide rows and shuffled months', () => {
    const store = new ReadingStore(2);
    const want: number[][] = [];
    let x = 1;
    for (let i = 0; i < 30_000; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      // Times spread over ~60 days (beyond 32-bit ms offsets), values with rollover-size jumps.
      const t = 1_790_000_000_000 + (x % 5_184_000) * 1000;
      const w = (x % 7) * 3_000_000_000 + i;
      store.add(i % 2, t, w);
      if (i % 2 === 0) want.push([t, w]);
    }
    const s = store.series(0);
    expect(s.time.length).toBe(want.length);
    const got = [...s.time].map((t, i) => [t, s.wh[i]]);
    expect(got.every((r, i) => i === 0 || r[0] >= got[i - 1][0])).toBe(true);
    expect(got.sort((a, b) => a[0] - b[0] || a[1] - b[1])).toEqual(want.sort((a, b) => a[0] - b[0] || a[1] - b[1]));
  });

  it('starts new chunks for sorted data that moves past the 32-bit offset range (hourly for a year)', () => {
    const store = new ReadingStore(1);
    const t0 = 1_790_000_000_000;
    for (let i = 0; i < 8760; i++) store.add(0, t0 + i * 3_600_000, i * 1000);
    const s = store.series(0);
    expect(s.time.length).toBe(8760);
    expect(s.time[8759]).toBe(t0 + 8759 * 3_600_000);
    expect(s.wh[8759]).toBe(8_759_000);
    expect([...s.time].every((t, i) => t === t0 + i * 3_600_000)).toBe(true);
  });
});

describe('tariff registers beside the readings (billing.md section 2 rule 5)', () => {
  it('keeps them sorted apart from the rows; at one instant each register is the largest read with the kept total', () => {
    const store = new ReadingStore(1);
    const rows: [number, number, number, number, number, number][] = [
      [3000, 120, 10, 20, NaN, 40],
      [1000, 100, 5, 15, 25, 35],
      [3000, 120, 11, NaN, 30, 39],
      [3000, 119, 99, 99, 99, 99],
    ];
    for (const [t, w, ...r] of rows) {
      store.add(0, t, w);
      store.addTariff(0, t, w, r[0], r[1], r[2], r[3]);
    }
    store.add(0, 2000, 110); // a reading without registers
    const s = store.series(0);
    expect([...s.time]).toEqual([1000, 2000, 3000, 3000, 3000]);
    expect([...s.tariff!.time]).toEqual([1000, 3000, 3000, 3000]);
    // Rule 1 keeps 120 at 3000: registers of the rows with 120, per register the largest.
    expect([...registersAt(s.tariff, 3000, 120)!]).toEqual([11, 20, 30, 40]);
    expect(registersAt(s.tariff, 2000, 110)).toBeUndefined();
    expect([...registersAt(s.tariff, 1000, 100)!]).toEqual([5, 15, 25, 35]);
    // Exported and imported (the CLI's second thread): the same rows.
    const other = new ReadingStore(1);
    other.importMeter(0, store.exportMeter(0), 1000, 3000);
    expect(other.series(0).tariff).toEqual(s.tariff);
  });
});
