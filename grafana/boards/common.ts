/**
 * What every submeter dashboard shares: the datasource, the `$site` variable, links
 * between the four dashboards, and small panel presets with units (Wh for energy, CNY
 * for money: the series hold integer fen, the queries divide by 100 for display only).
 */
import {
  DashboardBuilder,
  DashboardLinkBuilder,
  DashboardLinkType,
  QueryVariableBuilder,
  VariableRefresh,
  VariableSort,
  ThresholdsConfigBuilder,
  ThresholdsMode,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { VizLegendOptionsBuilder, LegendDisplayMode, LegendPlacement, ReduceDataOptionsBuilder } from '@grafana/grafana-foundation-sdk/common';
import { M, T } from '../../influx/schema.ts';
import { DATASOURCE_REF, FOLDER } from '../datasource.ts';
import { id, registerShape } from '../influxql.ts';

export const TAGS = [FOLDER];

/** A dashboard with the project defaults: last 24 h, 1 min refresh, links to its siblings. */
export function board(uid: string, title: string, description: string): DashboardBuilder {
  return new DashboardBuilder(title)
    .uid(uid)
    .description(description)
    .tags(TAGS)
    .editable()
    .time({ from: 'now-24h', to: 'now' })
    .timezone('browser')
    .refresh('1m')
    .link(new DashboardLinkBuilder('submeter').type(DashboardLinkType.Dashboards).tags(TAGS).asDropdown(true).includeVars(true).keepTime(true));
}

/** A variable whose options come from an InfluxQL `SHOW TAG VALUES`; the query is shape-checked like a panel's. */
function tagValuesVariable(name: string, label: string, query: string, tag: string): QueryVariableBuilder {
  // SHOW TAG VALUES answers columns key, value.
  registerShape(query, { columns: ['key', 'value'], groupBy: [] });
  return new QueryVariableBuilder(name)
    .label(label)
    .datasource({ ...DATASOURCE_REF })
    .query(query)
    .definition(query)
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .sort(VariableSort.NaturalAsc)
    .description(`Values of the ${tag} tag`);
}

/** Sites that have live balances. */
export function siteVariable(): QueryVariableBuilder {
  const q = `SHOW TAG VALUES FROM ${id(M.balance)} WITH KEY = ${id(T.site)}`;
  return tagValuesVariable('site', 'Site', q, T.site);
}

/** Accounts of the selected site(s). */
export function accountVariable(): QueryVariableBuilder {
  const q = `SHOW TAG VALUES FROM ${id(M.balance)} WITH KEY = ${id(T.account)} WHERE ${id(T.site)} =~ /^$site$/`;
  return tagValuesVariable('account', 'Account', q, T.account);
}

export function legend(): VizLegendOptionsBuilder {
  return new VizLegendOptionsBuilder().showLegend(true).displayMode(LegendDisplayMode.List).placement(LegendPlacement.Bottom);
}

export function legendTable(calcs: string[]): VizLegendOptionsBuilder {
  return new VizLegendOptionsBuilder().showLegend(true).displayMode(LegendDisplayMode.Table).placement(LegendPlacement.Right).calcs(calcs);
}

export function lastValue(): ReduceDataOptionsBuilder {
  return new ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false);
}

/** Every row, not a reduction: for tables rendered as bars and multi-field stats. */
export function allValues(fields = ''): ReduceDataOptionsBuilder {
  return new ReduceDataOptionsBuilder().calcs([]).values(true).fields(fields);
}

/** Green from the base, red from `red` (or the reverse with `redBelow`). */
export function steps(red: number, redBelow = false): ThresholdsConfigBuilder {
  const s = redBelow
    ? [
        { value: null, color: 'red' },
        { value: red, color: 'green' },
      ]
    : [
        { value: null, color: 'green' },
        { value: red, color: 'red' },
      ];
  return new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps(s);
}

/** Grafana unit ids. */
export const UNIT = {
  wh: 'watth',
  w: 'watt',
  cny: 'currencyCNY',
  cnyPerKwh: 'currencyCNY',
  hours: 'h',
  ms: 'ms',
  percent: 'percentunit',
  short: 'short',
  bytes: 'bytes',
  time: 'dateTimeAsIso',
} as const;
