import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Point } from '@influxdata/influxdb-client';
import { sampleLine } from './lines.ts';
import { parseReadingLines } from './reading-lines.ts';

/** The readings log (lib/readings-log.ts) reads back what the collector wrote: every billing field, nothing else. */
describe('parseReadingLines', () => {
  it('reads back wh and the tariff registers of any sample line, with the other fields and lines around them', () => {
    const sample = fc.record({
      meter: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,11}$/),
      time: fc.integer({ min: 1, max: 4_102_444_800_000 }),
      wh: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      w: fc.option(fc.double({ noNaN: true, noDefaultInfinity: true }), { nil: undefined }),
      v: fc.option(fc.double({ min: 0, max: 500, noNaN: true }), { nil: undefined }),
      tariff: fc.option(fc.tuple(fc.option(fc.nat(), { nil: undefined }), fc.option(fc.nat(), { nil: undefined }), fc.option(fc.nat(), { nil: undefined }), fc.option(fc.nat(), { nil: undefined })), { nil: undefined }),
      multiplier: fc.constantFrom(1, 40, 200),
      frozen: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(sample, { maxLength: 20 }), (rows) => {
        const lines: string[] = [];
        for (const r of rows) {
          const tariffWh = r.tariff ? Object.fromEntries(r.tariff.map((v, i) => [i + 1, v]).filter(([, v]) => v !== undefined)) : undefined;
          lines.push(sampleLine('plaza 1,a=b', { meter: r.meter, time: r.time, wh: r.wh, ...(r.w !== undefined ? { w: r.w } : {}), ...(r.v !== undefined ? { v: r.v } : {}), ...(tariffWh ? { tariffWh } : {}), ...(r.frozen ? { source: 'frozen' as const } : {}) }, r.multiplier));
          // Another measurement with a quoted string holding spaces, commas and quotes: skipped.
          lines.push(new Point('event').tag('site', 'plaza 1,a=b').stringField('detail', 'a "b", c=d e').timestamp(r.time).toLineProtocol()!);
        }
        const parsed = parseReadingLines(lines.join('\n'));
        expect(parsed).toEqual(
          rows.map((r) => ({
            site: 'plaza 1,a=b',
            meter: r.meter,
            time: r.time,
            wh: r.wh,
            reg: [0, 1, 2, 3].map((i) => r.tariff?.[i]),
          })),
        );
      }),
      { numRuns: 200 },
    );
  });

  it('a reading line it cannot read for certain makes the whole body unknown', () => {
    const good = sampleLine('plaza', { meter: 'T1', time: 1000, wh: 5 });
    expect(parseReadingLines(good)).toHaveLength(1);
    for (const bad of ['reading,site=plaza wh=5i 1000', 'reading,meter=T1 wh=5i 1000', 'reading,site=plaza,meter=T1 wh=5i', 'reading,site=plaza,meter=T1 source="open wh=5i 1000', 'reading,site=plaza,meter=T1 wh=5i 1.5e3']) {
      expect(parseReadingLines(`${good}\n${bad}`), bad).toBeUndefined();
    }
  });

  it('a wh that is not an integer field is not a billing reading (as InfluxDB would answer the rollup)', () => {
    expect(parseReadingLines('reading,meter=T1,site=plaza wh=5.5,v=230 1000')).toEqual([{ site: 'plaza', meter: 'T1', time: 1000, reg: [undefined, undefined, undefined, undefined] }]);
  });
});
