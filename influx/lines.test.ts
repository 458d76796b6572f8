import { randomBytes } from 'node:crypto';
import { Point } from '@influxdata/influxdb-client';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InfluxV1 } from './client.ts';
import { LineBatcher, collectorLine, healthLine, sampleLine, sampleProblem } from './lines.ts';
import { F, M, T } from './schema.ts';
import type { Sample } from './sample.ts';

describe('line protocol of samples and collector state', () => {
  it('writes energy as integer Wh with the sample time in ms, escaping tags', () => {
    expect(sampleLine('tj plaza', { meter: 'T,101', time: 1_700_000_000_123, wh: 12_345_670, w: 1234.5, v: 230.2, a: 7.5, pf: 0.95, hz: 50 })).toBe(
      'reading,meter=T\\,101,site=tj\\ plaza a=7.5,hz=50,pf=0.95,v=230.2,w=1234.5,wh=12345670i 1700000000123',
    );
    expect(sampleLine('s', { meter: 'T102', time: 1, wh: 5, tariffWh: { 1: 2, 3: 3 } })).toBe('reading,meter=T102,site=s wh=5i,wh_t1=2i,wh_t3=3i 1');
    expect(healthLine('s', { meter: 'm', time: 2, ok: false, errors: 3, consecutiveErrors: 2, lastError: 'm: timeout "x"' })).toBe(
      'meter_health,meter=m,site=s consecutive_errors=2i,errors=3i,last_error="m: timeout \\"x\\"",ok=F 2',
    );
    expect(collectorLine('s', { host: 'h', time: 3, spoolBytes: 10, spoolSamples: 1, spoolFull: true, written: 7, refused: 0 })).toBe(
      'collector,host=h,site=s spool_bytes=10i,spool_full=T,spool_refused=0i,spool_samples=1i,written=7i 3',
    );
  });

  it('names what is wrong with a bad sample', () => {
    expect(sampleProblem({ meter: 'm', time: 1, wh: 1.5 })).toMatch(/wh 1.5/);
    expect(sampleProblem({ meter: 'm', time: 1, wh: -1 })).toMatch(/wh -1/);
    expect(sampleProblem({ meter: 'm', time: 1, wh: 1, w: Number.NaN })).toMatch(/w NaN/);
    expect(sampleProblem({ meter: '', time: 1, wh: 1 })).toMatch(/meter/);
    expect(sampleProblem({ meter: 'm', time: 1, wh: 1 })).toBeUndefined();
  });
});

describe('LineBatcher against the real InfluxDB', () => {
  const influx = new InfluxV1({ url: process.env.SUBMETER_INFLUX_URL ?? 'http://127.0.0.1:8096', db: `t_lines_${randomBytes(4).toString('hex')}` });
  beforeAll(() => influx.createDatabase());
  afterAll(() => influx.dropDatabase());

  it('writes in batches and a re-sent line overwrites instead of duplicating', async () => {
    const b = new LineBatcher(influx, { batchLines: 7 });
    const lines = Array.from({ length: 20 }, (_, i) => sampleLine('s', { meter: 'm', time: 1_700_000_000_000 + i * 1000, wh: i }));
    await b.push(...lines);
    expect(b.written).toBe(14);
    await b.flush();
    await b.push(...lines.slice(0, 5));
    await b.flush();
    expect(b.written).toBe(25);
    const rows = await influx.query(`SELECT count(wh) AS n, sum(wh) AS s FROM ${M.reading}`);
    expect(rows[0]).toMatchObject({ n: 20, s: 190 });
  });
});

/**
 * sampleLine builds reading lines without a Point (the collector's hot path): it must
 * write exactly what Point writes for the same tags and fields, on random samples with
 * every optional field, escaped site and meter names, multipliers and sources.
 */
describe('sampleLine matches Point', () => {
  const text = fc.string({ unit: fc.constantFrom('a', 'T', '1', '_', ',', ' ', '=', '"', '\\', '\n', 'é', '电'), maxLength: 6 });
  const num = fc.option(fc.double({ noNaN: true, noDefaultInfinity: true }), { nil: undefined });
  const int = fc.integer({ min: 0, max: 2 ** 53 - 1 });
  const phase = fc.record({ v: num, a: num, w: num }, { requiredKeys: [] });
  const sample = fc.record(
    {
      meter: text,
      time: fc.integer({ min: 1, max: 2 ** 53 - 1 }),
      wh: int,
      w: num,
      v: num,
      a: num,
      pf: num,
      hz: num,
      tariffWh: fc.record({ 1: int, 2: int, 3: int, 4: int }, { requiredKeys: [] }),
      phases: fc.array(phase, { maxLength: 4 }),
      source: fc.constant('frozen' as const),
    },
    { requiredKeys: ['meter', 'time', 'wh'] },
  );

  function viaPoint(site: string, s: Sample, multiplier: number): string {
    const p = new Point(M.reading).tag(T.site, site).tag(T.meter, s.meter).intField(F.wh, s.wh);
    if (multiplier !== 1) p.intField(F.multiplier, multiplier);
    if (s.w !== undefined) p.floatField(F.w, s.w);
    if (s.v !== undefined) p.floatField(F.v, s.v);
    if (s.a !== undefined) p.floatField(F.a, s.a);
    if (s.pf !== undefined) p.floatField(F.pf, s.pf);
    if (s.hz !== undefined) p.floatField(F.hz, s.hz);
    for (const n of [1, 2, 3, 4] as const) if (s.tariffWh?.[n] !== undefined) p.intField(F.whTariff(n), s.tariffWh[n]!);
    s.phases?.slice(0, 3).forEach((ph, i) => {
      const n = (i + 1) as 1 | 2 | 3;
      if (ph.v !== undefined) p.floatField(F.vPhase(n), ph.v);
      if (ph.a !== undefined) p.floatField(F.aPhase(n), ph.a);
      if (ph.w !== undefined) p.floatField(F.wPhase(n), ph.w);
    });
    if (s.source) p.stringField(F.source, s.source);
    return p.timestamp(s.time).toLineProtocol()!;
  }

  it('writes the same line as Point for random samples', () => {
    fc.assert(
      fc.property(text, sample, fc.constantFrom(1, 1, 40, 120), (site, s, multiplier) => {
        expect(sampleLine(site, s, multiplier)).toBe(viaPoint(site, s, multiplier));
        // Twice: the second line comes from the cached prefix.
        expect(sampleLine(site, s, multiplier)).toBe(viaPoint(site, s, multiplier));
      }),
      { numRuns: 2000 },
    );
  });
});
