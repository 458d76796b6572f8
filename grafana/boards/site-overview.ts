/**
 * Site overview: where the master meter's energy goes (tenants, common areas, loss), the
 * loss rate against the site's normal cap, energy by TOU period, what it cost, who uses
 * most, and the price in force now.
 */
import { RowBuilder } from '@grafana/grafana-foundation-sdk/dashboard';
import { StackingConfigBuilder, StackingMode, GraphDrawStyle, BigValueTextMode, BigValueGraphMode, BarGaugeDisplayMode } from '@grafana/grafana-foundation-sdk/common';
import { PanelBuilder as TimeSeries } from '@grafana/grafana-foundation-sdk/timeseries';
import { PanelBuilder as Stat } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as BarGauge } from '@grafana/grafana-foundation-sdk/bargauge';
import { F, M, T } from '../../influx/schema.ts';
import { DASHBOARD_UID } from '../datasource.ts';
import { InfluxQLBuilder, id, siteFilter } from '../influxql.ts';
import { allValues, board, lastValue, legend, siteVariable, steps, UNIT } from './common.ts';

/**
 * Settled-day series (site_day, charge) are stamped at each local midnight. Grouping by
 * 15 minutes puts one whole day in each bucket at its own midnight for any zone offset
 * (all offsets are multiples of 15 min), where GROUP BY time(1d) would cut at UTC midnight.
 */
export const DAY_BUCKETS = 'time(15m)';

/** Panels of settled days look back 30 days: a 24 h window often holds no settled day yet. */
export const SETTLED_WINDOW = '30d';

export function siteOverview() {
  const where = `$timeFilter AND ${siteFilter}`;
  const daily = new InfluxQLBuilder(
    `SELECT sum(${id(F.masterWh)}) AS "master", sum(${id(F.tenantWh)}) AS "tenants", sum(${id(F.commonWh)}) AS "common", sum(${id(F.lossWh)}) AS "loss" FROM ${id(M.siteDay)} WHERE ${where} GROUP BY ${DAY_BUCKETS} fill(none)`,
    { columns: ['time', 'master', 'tenants', 'common', 'loss'], groupBy: [] },
  ).refId('A');

  const todayByRole = new InfluxQLBuilder(
    `SELECT sum(${id(F.wh)}) AS "wh" FROM ${id(M.touBucket)} WHERE ${where} GROUP BY time($__interval), ${id(T.role)} fill(0)`,
    { columns: ['time', 'wh'], groupBy: [T.role] },
  ).refId('A').alias('$tag_role');

  const lossRate = new InfluxQLBuilder(
    `SELECT sum(${id(F.lossWh)}) / sum(${id(F.masterWh)}) AS "loss_rate", max(${id(F.lossNormalRate)}) AS "normal_cap" FROM ${id(M.siteDay)} WHERE ${where} GROUP BY ${DAY_BUCKETS} fill(none)`,
    { columns: ['time', 'loss_rate', 'normal_cap'], groupBy: [] },
  ).refId('A');

  const lossRange = new InfluxQLBuilder(
    `SELECT sum(${id(F.lossWh)}) / sum(${id(F.masterWh)}) AS "loss_rate", max(${id(F.lossNormalRate)}) AS "normal_cap", sum(${id(F.lossAbnormalWh)}) AS "abnormal_wh" FROM ${id(M.siteDay)} WHERE ${where}`,
    { columns: ['time', 'loss_rate', 'normal_cap', 'abnormal_wh'], groupBy: [] },
  ).refId('A');

  const byPeriod = new InfluxQLBuilder(
    `SELECT sum(${id(F.wh)}) AS "wh" FROM ${id(M.touBucket)} WHERE ${where} AND ${id(T.role)} = 'master' GROUP BY time($__interval), ${id(T.period)} fill(0)`,
    { columns: ['time', 'wh'], groupBy: [T.period] },
  ).refId('A').alias('$tag_period');

  // Today is not settled yet: the workers keep each account's unsettled cost of today on
  // its balance series (billing.md section 5); the site's is the sum of the accounts' last.
  const costToday = new InfluxQLBuilder(
    `SELECT sum("c") / 100 AS "cny" FROM (SELECT last(${id(F.costTodayFen)}) AS "c" FROM ${id(M.balance)} WHERE ${where} GROUP BY ${id(T.account)})`,
    { columns: ['time', 'cny'], groupBy: [] },
  ).refId('A');

  const costMonth = new InfluxQLBuilder(
    `SELECT sum(${id(F.fen)}) / 100 AS "cny" FROM ${id(M.charge)} WHERE ${where}`,
    { columns: ['time', 'cny'], groupBy: [] },
  ).refId('A');

  const top = new InfluxQLBuilder(
    `SELECT top("wh", ${id(T.account)}, 10) AS "wh" FROM (SELECT sum(${id(F.wh)}) AS "wh" FROM ${id(M.touBucket)} WHERE ${where} AND ${id(T.role)} = 'tenant' GROUP BY ${id(T.account)})`,
    { columns: ['time', 'wh', T.account], groupBy: [] },
    'table',
  ).refId('A');

  // Recovery (billing.md section 8): what the utility charges for the master meter against
  // what the tenants are charged, per settled day. The utility side exists for sites with a
  // `utility` key; the exact recovery rate and per-account caps: `submeter reconcile`.
  const utilityDaily = new InfluxQLBuilder(
    `SELECT sum(${id(F.utilityFen)}) / 100 AS "utility" FROM ${id(M.siteDay)} WHERE ${where} GROUP BY ${DAY_BUCKETS} fill(none)`,
    { columns: ['time', 'utility'], groupBy: [] },
  ).refId('A');
  const tenantDaily = new InfluxQLBuilder(
    `SELECT sum(${id(F.fen)}) / 100 AS "tenants" FROM ${id(M.charge)} WHERE ${where} GROUP BY ${DAY_BUCKETS} fill(none)`,
    { columns: ['time', 'tenants'], groupBy: [] },
  ).refId('B');
  const utilityRange = new InfluxQLBuilder(
    `SELECT sum(${id(F.utilityFen)}) / 100 AS "utility" FROM ${id(M.siteDay)} WHERE ${where}`,
    { columns: ['time', 'utility'], groupBy: [] },
  ).refId('A');
  const tenantRange = new InfluxQLBuilder(
    `SELECT sum(${id(F.fen)}) / 100 AS "tenants" FROM ${id(M.charge)} WHERE ${where}`,
    { columns: ['time', 'tenants'], groupBy: [] },
  ).refId('B');

  const priceNow = new InfluxQLBuilder(
    `SELECT last(${id(F.price)}) AS "price", last(${id(F.periodNow)}) AS "period" FROM ${id(M.balance)} WHERE ${where}`,
    { columns: ['time', 'price', 'period'], groupBy: [] },
    'table',
  ).refId('A');

  return board(DASHBOARD_UID.site, 'submeter / Site overview', 'Master meter vs tenants vs common areas vs loss, TOU energy, cost and the live price.')
    .withVariable(siteVariable())
    .withRow(new RowBuilder('Now'))
    .withPanel(new Stat().title('Price now').description('The TOU price and period in force now (last balance update).').withTarget(priceNow).unit(UNIT.cnyPerKwh).decimals(4).textMode(BigValueTextMode.ValueAndName).graphMode(BigValueGraphMode.None).reduceOptions(allValues('/^(price|period)$/')).height(5).span(6))
    .withPanel(new Stat().title('Cost today (unsettled)').withTarget(costToday).timeFrom('now/d').unit(UNIT.cny).decimals(2).reduceOptions(lastValue()).graphMode(BigValueGraphMode.None).height(5).span(6))
    .withPanel(new Stat().title('Settled this month').description('Settlement charges of the days of this month settled so far.').withTarget(costMonth).timeFrom('now/M').unit(UNIT.cny).decimals(2).reduceOptions(lastValue()).graphMode(BigValueGraphMode.None).height(5).span(6))
    .withPanel(new Stat().title('Loss rate vs normal cap (30 days)').withTarget(lossRange).timeFrom(SETTLED_WINDOW).overrideByName('abnormal_wh', [{ id: 'unit', value: UNIT.wh }]).unit(UNIT.percent).decimals(2).textMode(BigValueTextMode.ValueAndName).reduceOptions(lastValue()).graphMode(BigValueGraphMode.None).height(5).span(6))
    .withRow(new RowBuilder('Energy'))
    .withPanel(new TimeSeries().title('Master vs tenants vs common vs loss (per settled day)').withTarget(daily).timeFrom(SETTLED_WINDOW).unit(UNIT.wh).drawStyle(GraphDrawStyle.Bars).fillOpacity(60).legend(legend()).span(12))
    .withPanel(new TimeSeries().title('Energy by role').description('15-minute TOU buckets summed per meter role.').withTarget(todayByRole).interval('15m').unit(UNIT.wh).drawStyle(GraphDrawStyle.Bars).fillOpacity(60).legend(legend()).span(12))
    .withPanel(new TimeSeries().title('Site energy by TOU period (stacked)').withTarget(byPeriod).interval('15m').unit(UNIT.wh).drawStyle(GraphDrawStyle.Bars).fillOpacity(80).stacking(new StackingConfigBuilder().mode(StackingMode.Normal)).legend(legend()).span(12))
    .withPanel(new TimeSeries().title('Loss rate vs normal cap (per settled day)').withTarget(lossRate).timeFrom(SETTLED_WINDOW).unit(UNIT.percent).thresholds(steps(0.05)).legend(legend()).span(12))
    .withRow(new RowBuilder('Recovery'))
    .withPanel(new Stat().title('Utility cost vs tenant charges (30 days)').description('What the utility charges for the master meter (site file `utility` tariff) and what the tenants are charged, over the settled days of the last 30 days. The rate and per-account caps: submeter reconcile.').withTarget(utilityRange).withTarget(tenantRange).timeFrom(SETTLED_WINDOW).unit(UNIT.cny).decimals(2).textMode(BigValueTextMode.ValueAndName).reduceOptions(lastValue()).graphMode(BigValueGraphMode.None).height(8).span(6))
    .withPanel(new TimeSeries().title('Utility cost vs tenant charges (per settled day)').description('Charges include every revision (later corrections on their day).').withTarget(utilityDaily).withTarget(tenantDaily).timeFrom(SETTLED_WINDOW).unit(UNIT.cny).drawStyle(GraphDrawStyle.Bars).fillOpacity(60).legend(legend()).height(8).span(18))
    .withRow(new RowBuilder('Tenants'))
    .withPanel(new BarGauge().title('Top consumers').withTarget(top).unit(UNIT.wh).displayMode(BarGaugeDisplayMode.Gradient).reduceOptions(allValues('/^wh$/')).span(24).height(10));
}
