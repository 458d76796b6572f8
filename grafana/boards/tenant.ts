/**
 * Tenant drill-down for `$account`: power, energy by TOU period, balance and hours left,
 * charges by kind (own, common areas, loss) and the figures load-shift advice rests on
 * (energy and average price per period).
 */
import { RowBuilder } from '@grafana/grafana-foundation-sdk/dashboard';
import { StackingConfigBuilder, StackingMode, GraphDrawStyle, BigValueTextMode, BigValueGraphMode } from '@grafana/grafana-foundation-sdk/common';
import { PanelBuilder as TimeSeries } from '@grafana/grafana-foundation-sdk/timeseries';
import { PanelBuilder as Stat } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as Table } from '@grafana/grafana-foundation-sdk/table';
import { PanelBuilder as Pie, PieChartType, PieChartLabels } from '@grafana/grafana-foundation-sdk/piechart';
import { Dec, DEFAULT_SHIFT_SHARE } from '../../core/index.ts';
import { F, M, T } from '../../influx/schema.ts';
import { DASHBOARD_UID } from '../datasource.ts';
import { InfluxQLBuilder, id, matchVar, siteFilter } from '../influxql.ts';
import { accountVariable, allValues, board, lastValue, legend, siteVariable, steps, UNIT } from './common.ts';
import { DAY_BUCKETS, SETTLED_WINDOW } from './site-overview.ts';

/** The share of peak energy the advice assumes can move: the core's default (billing.md section 9), one value everywhere. */
export const ADVICE_SHIFT_SHARE = DEFAULT_SHIFT_SHARE;

export function tenant() {
  const where = `$timeFilter AND ${siteFilter} AND ${matchVar(T.account, 'account')}`;
  const own = `${id(T.kind)} = 'own'`;

  const power = new InfluxQLBuilder(
    `SELECT mean(${id(F.w)}) AS "w" FROM ${id(M.balance)} WHERE ${where} GROUP BY time($__interval), ${id(T.account)} fill(none)`,
    { columns: ['time', 'w'], groupBy: [T.account] },
  ).refId('A').alias('$tag_account');

  const energy = new InfluxQLBuilder(
    `SELECT sum(${id(F.wh)}) AS "wh" FROM ${id(M.touBucket)} WHERE ${where} GROUP BY time($__interval), ${id(T.period)} fill(0)`,
    { columns: ['time', 'wh'], groupBy: [T.period] },
  ).refId('A').alias('$tag_period');

  const balance = new InfluxQLBuilder(
    `SELECT last(${id(F.balanceFen)}) / 100 AS "balance", last(${id(F.lowBalanceFen)}) / 100 AS "threshold" FROM ${id(M.balance)} WHERE ${where} GROUP BY time($__interval), ${id(T.account)} fill(none)`,
    { columns: ['time', 'balance', 'threshold'], groupBy: [T.account] },
  ).refId('A').alias('$tag_account $col');

  // The tenant's name from the site file, written by the balance worker beside the id.
  const name = new InfluxQLBuilder(
    `SELECT last(${id(F.accountName)}) AS "name" FROM ${id(M.balance)} WHERE ${where}`,
    { columns: ['time', 'name'], groupBy: [] },
    'table',
  ).refId('A');

  const now = new InfluxQLBuilder(
    `SELECT last(${id(F.balanceFen)}) / 100 AS "balance", last(${id(F.hoursLeft)}) AS "hours_left", last(${id(F.costRateFenH)}) / 100 AS "cost_per_hour" FROM ${id(M.balance)} WHERE ${where}`,
    { columns: ['time', 'balance', 'hours_left', 'cost_per_hour'], groupBy: [] },
  ).refId('A');

  const chargesDaily = new InfluxQLBuilder(
    `SELECT sum(${id(F.fen)}) / 100 AS "cny" FROM ${id(M.charge)} WHERE ${where} GROUP BY ${DAY_BUCKETS}, ${id(T.kind)} fill(none)`,
    { columns: ['time', 'cny'], groupBy: [T.kind] },
  ).refId('A').alias('$tag_kind');

  const chargesByKind = new InfluxQLBuilder(
    `SELECT sum(${id(F.fen)}) / 100 AS "cny" FROM ${id(M.charge)} WHERE ${where} GROUP BY ${id(T.kind)}`,
    { columns: ['time', 'cny'], groupBy: [T.kind] },
  ).refId('A').alias('$tag_kind');

  // fen / Wh x 1000 Wh/kWh / 100 fen/CNY = x 10: CNY per kWh.
  const byPeriod = new InfluxQLBuilder(
    `SELECT sum(${id(F.wh)}) AS "wh", sum(${id(F.fen)}) / 100 AS "cny", sum(${id(F.fen)}) / sum(${id(F.wh)}) * 10 AS "cny_per_kwh" FROM ${id(M.charge)} WHERE ${where} AND ${own} GROUP BY ${id(T.period)}`,
    { columns: ['time', 'wh', 'cny', 'cny_per_kwh'], groupBy: [T.period] },
    'table',
  ).refId('A');

  const avgPrice = new InfluxQLBuilder(
    `SELECT sum(${id(F.fen)}) / sum(${id(F.wh)}) * 10 AS "cny_per_kwh" FROM ${id(M.charge)} WHERE ${where}`,
    { columns: ['time', 'cny_per_kwh'], groupBy: [] },
  ).refId('A');

  // billing.md section 9: peak_kwh = sharp + peak own energy, shift_kwh = share x peak_kwh
  // at the core's default share (the saving needs per-period prices: see the table below).
  const shiftable = new InfluxQLBuilder(
    `SELECT sum(${id(F.wh)}) AS "peak_wh", sum(${id(F.wh)}) * ${ADVICE_SHIFT_SHARE} AS "shiftable_wh" FROM ${id(M.charge)} WHERE ${where} AND ${own} AND ${id(T.period)} =~ /^(sharp|peak)$/`,
    { columns: ['time', 'peak_wh', 'shiftable_wh'], groupBy: [] },
  ).refId('A');

  const energyShare = new InfluxQLBuilder(
    `SELECT sum(${id(F.wh)}) AS "wh" FROM ${id(M.charge)} WHERE ${where} AND ${own} GROUP BY ${id(T.period)}`,
    { columns: ['time', 'wh'], groupBy: [T.period] },
  ).refId('A').alias('$tag_period');

  return board(DASHBOARD_UID.tenant, 'submeter / Tenant', 'One account: power, energy by TOU period, balance and hours left, charges by kind, advice figures.')
    .withVariable(siteVariable())
    .withVariable(accountVariable().multi(false))
    .withRow(new RowBuilder('Balance'))
    .withPanel(new Stat().title('Tenant').description('The account name in the site file.').withTarget(name).textMode(BigValueTextMode.Value).graphMode(BigValueGraphMode.None).reduceOptions(allValues('/^name$/')).height(5).span(6))
    .withPanel(
      new Stat()
        .title('Balance, hours left, cost per hour')
        .withTarget(now)
        .unit(UNIT.cny)
        .decimals(2)
        .overrideByName('hours_left', [{ id: 'unit', value: UNIT.hours }, { id: 'decimals', value: 1 }])
        .textMode(BigValueTextMode.ValueAndName)
        .graphMode(BigValueGraphMode.None)
        .reduceOptions(lastValue())
        .height(5)
        .span(18),
    )
    .withPanel(new TimeSeries().title('Balance vs low-balance threshold').withTarget(balance).unit(UNIT.cny).legend(legend()).span(12))
    .withPanel(new TimeSeries().title('Power').withTarget(power).unit(UNIT.w).legend(legend()).span(12))
    .withRow(new RowBuilder('Energy and charges'))
    .withPanel(new TimeSeries().title('Energy by TOU period').withTarget(energy).interval('15m').unit(UNIT.wh).drawStyle(GraphDrawStyle.Bars).fillOpacity(80).stacking(new StackingConfigBuilder().mode(StackingMode.Normal)).legend(legend()).span(12))
    .withPanel(new TimeSeries().title('Charges per settled day by kind').description('own = metered use; common = shares of common-area pools; loss = share of the allocatable line loss.').withTarget(chargesDaily).timeFrom(SETTLED_WINDOW).unit(UNIT.cny).drawStyle(GraphDrawStyle.Bars).fillOpacity(80).stacking(new StackingConfigBuilder().mode(StackingMode.Normal)).legend(legend()).span(12))
    .withRow(new RowBuilder('Charges split and advice figures'))
    .withPanel(new Pie().title('Charges by kind (30 days)').withTarget(chargesByKind).timeFrom(SETTLED_WINDOW).unit(UNIT.cny).pieType(PieChartType.Donut).displayLabels([PieChartLabels.Name, PieChartLabels.Percent]).reduceOptions(lastValue()).span(6))
    .withPanel(new Pie().title('Own energy by TOU period').description('The share in peak and sharp periods is what moving load to valley hours would save on.').withTarget(energyShare).timeFrom(SETTLED_WINDOW).unit(UNIT.wh).pieType(PieChartType.Pie).displayLabels([PieChartLabels.Name, PieChartLabels.Percent]).reduceOptions(lastValue()).span(6))
    .withPanel(new Stat().title('Average price paid (30 days)').withTarget(avgPrice).timeFrom(SETTLED_WINDOW).unit(UNIT.cnyPerKwh).decimals(4).thresholds(steps(1)).reduceOptions(lastValue()).graphMode(BigValueGraphMode.None).span(6))
    .withPanel(new Stat().title(`Peak + sharp energy, ${new Dec(DEFAULT_SHIFT_SHARE).mul(100).toString()} % shiftable (30 days)`).description('What moving that share of peak-hour use to the cheapest period would move (billing.md section 9).').withTarget(shiftable).timeFrom(SETTLED_WINDOW).unit(UNIT.wh).textMode(BigValueTextMode.ValueAndName).reduceOptions(lastValue()).graphMode(BigValueGraphMode.None).span(6))
    .withPanel(
      new Table()
        .title('Own energy, cost and average price by TOU period (30 days)')
        .withTarget(byPeriod)
        .timeFrom(SETTLED_WINDOW)
        .overrideByName('wh', [{ id: 'unit', value: UNIT.wh }])
        .overrideByName('cny', [{ id: 'unit', value: UNIT.cny }, { id: 'decimals', value: 2 }])
        .overrideByName('cny_per_kwh', [{ id: 'unit', value: UNIT.cnyPerKwh }, { id: 'decimals', value: 4 }])
        .overrideByName('Time', [{ id: 'custom.hidden', value: true }])
        .span(24),
    );
}
