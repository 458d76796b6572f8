import { describe, expect, it } from 'vitest';
import { parseSiteYaml } from '../site/index.ts';
import { splitSeries } from '../split/split.ts';
import { PERIODS } from './schedule.ts';
import { buildCalendar } from './calendar.ts';
import { zoneOf } from './zone.ts';

/** billing.md section 3: a skipped hour has no energy; a period starts at the first instant that exists. */
const site = (timezone: string, layout: string) =>
  parseSiteYaml(
    `
site: { id: cal, timezone: ${timezone} }
meters:
  - { id: M, role: master }
  - { id: T1, role: tenant, account: A1 }
accounts:
  - { id: A1, tariff: t }
tariffs:
  - id: t
    versions:
      - effective_from: 2026-01-01
        prices: { flat: "1.000000", valley: "0.500000" }
        schedule:
          - periods:
${layout}
`,
    'cal.yaml',
  );

const BERLIN = site(
  'Europe/Berlin',
  `              - { from: "00:00", to: "02:30", period: valley }
              - { from: "02:30", to: "24:00", period: flat }`,
);

const iso = (t: number) => new Date(t).toISOString();

describe('cut calendar on a spring-forward night', () => {
  it('a period boundary inside the skipped hour starts at the first instant after the gap, not a millisecond later', () => {
    // 2026-03-29 Europe/Berlin: 02:00 CET jumps to 03:00 CEST at 01:00:00Z; 02:30 does not exist.
    for (const grid of [0, 15]) {
      const cal = buildCalendar(BERLIN, '2026-03-29', '2026-03-30', grid);
      const firstFlat = [...cal.period].findIndex((p) => PERIODS[p] === 'flat');
      expect(iso(cal.start[firstFlat]), `grid ${grid}`).toBe('2026-03-29T01:00:00.000Z');
      // No segment of zero or one millisecond anywhere.
      for (let k = 0; k < cal.segments; k++) expect(cal.start[k + 1] - cal.start[k]).toBeGreaterThanOrEqual(60_000);
    }
  });

  it('energy of an interval across the gap: valley gets exactly the two hours that exist before it', () => {
    const cal = buildCalendar(BERLIN, '2026-03-29', '2026-03-30');
    const t0 = Date.parse('2026-03-29T00:00:00+01:00');
    const t1 = Date.parse('2026-03-29T04:00:00+02:00'); // 3 real hours later
    const out = new Float64Array(cal.segments);
    // 1 Wh per millisecond: any millisecond booked to the wrong period shows.
    splitSeries({ time: Float64Array.from([t0, t1]), delta: Float64Array.from([0, t1 - t0]) }, cal, out);
    const by = (p: string) => out.reduce((s, wh, k) => s + (PERIODS[cal.period[k]] === p ? wh : 0), 0);
    expect(by('valley')).toBe(2 * 3_600_000);
    expect(by('flat')).toBe(3_600_000);
  });

  it('zone transitions are whole instants whatever the search bounds', () => {
    const z = zoneOf('Europe/Berlin');
    const a = Date.parse('2026-03-29T00:00:00+01:00');
    for (const from of [a, a + 1, a + 999, a + 1001]) expect(z.transitions(from, a + 86_400_000).map(iso)).toEqual(['2026-03-29T01:00:00.000Z']);
  });
});

describe('a zone whose DST change falls at midnight (America/Santiago)', () => {
  const SANTIAGO = site(
    'America/Santiago',
    `              - { from: "00:00", to: "00:30", period: valley }
              - { from: "00:30", to: "07:00", period: valley }
              - { from: "07:00", to: "24:00", period: flat }`,
  );

  it('spring-forward: the day starts at 01:00 (midnight does not exist) and has 23 hours', () => {
    // 2026-09-06: 00:00 -04:00 jumps to 01:00 -03:00 (04:00Z).
    const z = zoneOf('America/Santiago');
    expect(iso(z.midnight('2026-09-06'))).toBe('2026-09-06T04:00:00.000Z');
    expect(z.format(z.midnight('2026-09-06'))).toBe('2026-09-06T01:00:00-03:00');
    const cal = buildCalendar(SANTIAGO, '2026-09-05', '2026-09-07');
    const len = (d: number) => {
      let ms = 0;
      for (let k = 0; k < cal.segments; k++) if (cal.day[k] === d) ms += cal.start[k + 1] - cal.start[k];
      return ms / 3_600_000;
    };
    expect([len(0), len(1)]).toEqual([24, 23]);
    // The 00:30 boundary of 2026-09-06 never happens; valley runs 01:00-07:00 there.
    const segs = [];
    for (let k = 0; k < cal.segments; k++) if (cal.day[k] === 1) segs.push(`${z.format(cal.start[k])} ${PERIODS[cal.period[k]]}`);
    expect(segs).toEqual(['2026-09-06T01:00:00-03:00 valley', '2026-09-06T07:00:00-03:00 flat']);
  });

  it('fall-back: 2026-04-04 has 25 hours, the repeated 23:00-24:00 is flat both times', () => {
    const z = zoneOf('America/Santiago');
    const cal = buildCalendar(SANTIAGO, '2026-04-04', '2026-04-05');
    expect((cal.start[cal.segments] - cal.start[0]) / 3_600_000).toBe(25);
    expect(z.format(cal.start[cal.segments])).toBe('2026-04-05T00:00:00-04:00');
    const last = cal.segments - 1;
    expect(PERIODS[cal.period[last]]).toBe('flat');
  });
});
