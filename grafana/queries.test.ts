/**
 * Every dashboard panel query and template-variable query, expanded the way Grafana
 * expands them, runs against the real InfluxDB filled with the fixture and returns the
 * shape the panel expects (non-empty; the promised columns and group-by tags).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InfluxV1, type Series } from '../influx/client.ts';
import { dashboards } from './build.ts';
import { expandInfluxQL, panelInterval, panelRange, type VariableValue } from './expand.ts';
import { queryShapes } from './influxql.ts';
import { SITE, driveBelowThreshold, writeFixture } from './fixture.ts';

const url = process.env.SUBMETER_INFLUX_URL ?? 'http://127.0.0.1:8096';
const influx = new InfluxV1({ url, db: `t_grafana_q_${randomBytes(4).toString('hex')}` });

/** A fixed "now" (mid-month, mid-day UTC) keeps now/d and now/M windows deterministic. */
const NOW = Date.UTC(2026, 9, 15, 12, 0, 0);
const DASH_FROM = NOW - 24 * 3_600_000;
/** Grafana asks for about one point per pixel of a panel's width. */
const MAX_DATA_POINTS = 1_000;

interface Target { query: string; resultFormat: string; refId?: string }
interface Panel { title?: string; type: string; targets?: Target[]; panels?: Panel[]; timeFrom?: string; interval?: string }
interface Variable { name: string; query: string }
interface Dashboard { uid: string; panels: Panel[]; templating: { list: Variable[] } }

function panelsOf(d: Dashboard): Panel[] {
  return d.panels.flatMap((p) => (p.type === 'row' ? (p.panels ?? []) : [p]));
}

async function run(query: string): Promise<Series[]> {
  const [series = []] = await influx.queryRaw(query);
  return series;
}

function expectShape(query: string, series: Series[]): void {
  const shape = queryShapes().get(query);
  expect(shape, `no shape registered for ${query}`).toBeDefined();
  expect(series.length, `no data for ${query}`).toBeGreaterThan(0);
  for (const s of series) {
    expect(s.columns).toEqual(shape!.columns);
    expect(Object.keys(s.tags ?? {}).sort()).toEqual([...shape!.groupBy].sort());
    expect(s.values.length).toBeGreaterThan(0);
  }
}

const boards = dashboards() as unknown as Record<string, Dashboard>;
const variableSets: Record<string, Record<string, VariableValue>[]> = {
  // A single-value variable is inserted as is.
  tenant: [{ site: SITE, account: 'A101' }],
  // A multi-value variable: several values become a regex group, All its allValue (.*).
  balances: [
    { site: SITE, account: ['A101', 'A102'] },
    { site: SITE, account: '.*' },
  ],
};

describe('dashboard queries against the real InfluxDB', () => {
  beforeAll(async () => {
    expect(await influx.ping()).toBe(true);
    await influx.createDatabase();
    await writeFixture(influx, NOW);
    // One account low, so "accounts below their threshold" has something to count.
    await driveBelowThreshold(influx, 'A102', NOW);
  });
  afterAll(async () => influx.dropDatabase());

  for (const [name, board] of Object.entries(boards)) {
    const sets = variableSets[name] ?? [{ site: SITE }];
    for (const vars of sets) {
      it(`${name} (${JSON.stringify(vars)}): every panel query returns data of its shape`, async () => {
        const panels = panelsOf(board).filter((p) => p.targets?.length);
        expect(panels.length).toBeGreaterThan(0);
        for (const p of panels) {
          const { fromMs, toMs } = panelRange(NOW, DASH_FROM, p.timeFrom);
          const interval = panelInterval(fromMs, toMs, MAX_DATA_POINTS, p.interval ?? '10s');
          for (const t of p.targets!) {
            const q = expandInfluxQL(t.query, { fromMs, toMs, interval, variables: vars });
            try {
              expectShape(t.query, await run(q));
            } catch (err) {
              throw new Error(`panel "${p.title}" query ${t.refId}: ${(err as Error).message}\n  ran: ${q}`);
            }
          }
        }
      });
    }

    it(`${name}: template variables list the fixture's values`, async () => {
      for (const v of board.templating.list) {
        const q = expandInfluxQL(v.query, { fromMs: DASH_FROM, toMs: NOW, interval: '1m', variables: { site: SITE } });
        const series = await run(q);
        expectShape(v.query, series);
        const values = series.flatMap((s) => s.values.map((row) => row[1]));
        expect(values).toContain(v.name === 'site' ? SITE : 'A101');
      }
    });
  }
});
