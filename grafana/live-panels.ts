import type { InfluxV1 } from '../influx/client.ts';
import { dashboards } from './build.ts';
import { expandInfluxQL, panelInterval, panelRange } from './expand.ts';
import type { VariableValue } from './expand.ts';
import { queryShapes } from './influxql.ts';

/** One panel query of a generated dashboard as Grafana would send it, and what came back. */
export interface PanelQueryResult {
  readonly dashboard: string;
  readonly panel: string;
  readonly refId: string;
  readonly query: string;
  /** The panel's own relative range (e.g. 'now/M'), if it has one, and the range queried. */
  readonly timeFrom?: string;
  readonly fromMs: number;
  readonly toMs: number;
  readonly rows: number;
  /** Why the answer does not have the shape the panel expects (columns, group-by tags). */
  readonly problem?: string;
}

interface Target { query: string; refId?: string }
interface Panel { title?: string; type: string; targets?: Target[]; panels?: Panel[]; timeFrom?: string; interval?: string }
interface Dashboard { panels: Panel[] }

/**
 * Runs every panel query of every generated dashboard against a database, with Grafana's
 * macros and variables expanded as Grafana expands them, over [nowMs - rangeMs, nowMs].
 * For checking the dashboards against what the real pipeline writes (the demo), beside
 * the fixture-based test in queries.test.ts.
 */
export async function runPanelQueries(influx: InfluxV1, o: { nowMs: number; rangeMs: number; variables: (dashboard: string) => Record<string, VariableValue> }): Promise<PanelQueryResult[]> {
  const shapes = queryShapes();
  const out: PanelQueryResult[] = [];
  for (const [name, board] of Object.entries(dashboards() as unknown as Record<string, Dashboard>)) {
    const panels = board.panels.flatMap((p) => (p.type === 'row' ? (p.panels ?? []) : [p]));
    for (const p of panels) {
      for (const t of p.targets ?? []) {
        const { fromMs, toMs } = panelRange(o.nowMs, o.nowMs - o.rangeMs, p.timeFrom);
        const interval = panelInterval(fromMs, toMs, 1000, p.interval ?? '10s');
        const query = expandInfluxQL(t.query, { fromMs, toMs, interval, variables: o.variables(name) });
        const [series = []] = await influx.queryRaw(query);
        const shape = shapes.get(t.query);
        let problem: string | undefined;
        for (const s of series) {
          if (!shape) problem = 'no shape registered';
          else if (JSON.stringify(s.columns) !== JSON.stringify(shape.columns)) problem = `columns ${JSON.stringify(s.columns)}, expected ${JSON.stringify(shape.columns)}`;
          else if (JSON.stringify(Object.keys(s.tags ?? {}).sort()) !== JSON.stringify([...shape.groupBy].sort())) problem = `tags ${Object.keys(s.tags ?? {})}, expected ${shape.groupBy}`;
        }
        out.push({ dashboard: name, panel: p.title ?? '', refId: t.refId ?? '', query, ...(p.timeFrom ? { timeFrom: p.timeFrom } : {}), fromMs, toMs, rows: series.reduce((n, s) => n + s.values.length, 0), ...(problem ? { problem } : {}) });
      }
    }
  }
  return out;
}
