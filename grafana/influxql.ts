/**
 * InfluxQL targets for Grafana, built from the schema constants (influx/schema.ts), never
 * from retyped names. The SDK ships no InfluxDB query type, so this is the custom query
 * builder its README describes; it emits what Grafana's own InfluxQL editor saves in raw
 * mode (`rawQuery: true`, `query`, `resultFormat`).
 *
 * Every query also records the columns and group-by tags it must return, so the tests
 * can run each panel's query against a real InfluxDB and check the shape.
 */
import type { Builder, Dataquery } from '@grafana/grafana-foundation-sdk/cog';
import { quoteIdent } from '../influx/client.ts';
import { T } from '../influx/schema.ts';
import { DATASOURCE_REF } from './datasource.ts';

export type ResultFormat = 'time_series' | 'table';

/** What a query must return: its columns (time first) and the tags its series are grouped by. */
export interface QueryShape {
  readonly columns: readonly string[];
  readonly groupBy: readonly string[];
}

export interface InfluxQLTarget extends Dataquery {
  refId?: string;
  hide?: boolean;
  datasource: { type: string; uid: string };
  query: string;
  rawQuery: true;
  resultFormat: ResultFormat;
  alias?: string;
}

const shapes = new Map<string, QueryShape>();

/** The shape each query text promises, for the tests. */
export function queryShapes(): ReadonlyMap<string, QueryShape> {
  return shapes;
}

export function registerShape(query: string, shape: QueryShape): void {
  const seen = shapes.get(query);
  if (seen && JSON.stringify(seen) !== JSON.stringify(shape)) {
    throw new Error(`query registered twice with different shapes: ${query}`);
  }
  shapes.set(query, shape);
}

export class InfluxQLBuilder implements Builder<Dataquery> {
  private readonly internal: InfluxQLTarget;

  constructor(query: string, shape: QueryShape, format: ResultFormat = 'time_series') {
    registerShape(query, shape);
    this.internal = {
      datasource: { ...DATASOURCE_REF },
      query,
      rawQuery: true,
      resultFormat: format,
      _implementsDataqueryVariant() {},
    };
  }

  refId(refId: string): this {
    this.internal.refId = refId;
    return this;
  }

  /** Legend text; Grafana's InfluxQL aliases accept `$tag_<name>` and `$col`. */
  alias(alias: string): this {
    this.internal.alias = alias;
    return this;
  }

  build(): InfluxQLTarget {
    return this.internal;
  }
}

/** A quoted identifier. */
export const id = quoteIdent;

/** `"site" =~ /^$site$/`: the dashboards' site filter; a regex so single and multi values both work. */
export function matchVar(tag: string, variable: string): string {
  return `${id(tag)} =~ /^$${variable}$/`;
}

export const siteFilter = matchVar(T.site, 'site');
