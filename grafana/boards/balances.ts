/**
 * Balances: every account's live balance against its own low-balance threshold, hours
 * left at the current spending rate, and a status column (LOW below the threshold).
 */
import { MappingType, RowBuilder } from '@grafana/grafana-foundation-sdk/dashboard';
import { BigValueGraphMode, BigValueTextMode, GraphDrawStyle, TableCellDisplayMode } from '@grafana/grafana-foundation-sdk/common';
import { PanelBuilder as TimeSeries } from '@grafana/grafana-foundation-sdk/timeseries';
import { PanelBuilder as Stat } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as Table } from '@grafana/grafana-foundation-sdk/table';
import { F, M, T } from '../../influx/schema.ts';
import { DASHBOARD_UID } from '../datasource.ts';
import { InfluxQLBuilder, id, matchVar, siteFilter } from '../influxql.ts';
import { accountVariable, board, lastValue, legend, legendTable, siteVariable, steps, UNIT } from './common.ts';

/** Top-ups are a few a month per account: the panels look back 30 days. */
export const TOP_UP_WINDOW = '30d';

export function balances() {
  const where = `$timeFilter AND ${siteFilter} AND ${matchVar(T.account, 'account')}`;
  const table = new InfluxQLBuilder(
    `SELECT last(${id(F.accountName)}) AS "name", last(${id(F.balanceFen)}) / 100 AS "balance", last(${id(F.lowBalanceFen)}) / 100 AS "threshold", last(${id(F.balanceFen)}) - last(${id(F.lowBalanceFen)}) AS "status", last(${id(F.hoursLeft)}) AS "hours_left", last(${id(F.costRateFenH)}) / 100 AS "cost_per_hour", last(${id(F.periodNow)}) AS "period" FROM ${id(M.balance)} WHERE ${where} GROUP BY ${id(T.account)}`,
    { columns: ['time', 'name', 'balance', 'threshold', 'status', 'hours_left', 'cost_per_hour', 'period'], groupBy: [T.account] },
    'table',
  ).refId('A');

  const low = new InfluxQLBuilder(
    `SELECT count("h") AS "accounts" FROM (SELECT last(${id(F.balanceFen)}) - last(${id(F.lowBalanceFen)}) AS "h" FROM ${id(M.balance)} WHERE ${where} GROUP BY ${id(T.account)}) WHERE "h" < 0`,
    { columns: ['time', 'accounts'], groupBy: [] },
  ).refId('A');

  const total = new InfluxQLBuilder(
    `SELECT sum("b") / 100 AS "cny" FROM (SELECT last(${id(F.balanceFen)}) AS "b" FROM ${id(M.balance)} WHERE ${where} GROUP BY ${id(T.account)})`,
    { columns: ['time', 'cny'], groupBy: [] },
  ).refId('A');

  // Top-ups: the payment ledger (workers/payments.ts), per account and reference.
  const payFilter = `$timeFilter AND ${siteFilter} AND ${matchVar(T.account, 'account')}`;
  const topUps = new InfluxQLBuilder(
    `SELECT sum(${id(F.fen)}) / 100 AS "cny" FROM ${id(M.payment)} WHERE ${payFilter} GROUP BY time($__interval) fill(none)`,
    { columns: ['time', 'cny'], groupBy: [] },
  ).refId('A');
  const topUpTotal = new InfluxQLBuilder(
    `SELECT sum(${id(F.fen)}) / 100 AS "cny", count(${id(F.fen)}) AS "payments" FROM ${id(M.payment)} WHERE ${payFilter}`,
    { columns: ['time', 'cny', 'payments'], groupBy: [] },
  ).refId('A');
  const recentTopUps = new InfluxQLBuilder(
    `SELECT ${id(T.account)}, ${id(T.reference)}, ${id(F.fen)} / 100 AS "amount" FROM ${id(M.payment)} WHERE ${payFilter} ORDER BY time DESC LIMIT 200`,
    { columns: ['time', T.account, T.reference, 'amount'], groupBy: [] },
    'table',
  ).refId('A');

  const history = new InfluxQLBuilder(
    `SELECT last(${id(F.balanceFen)}) / 100 AS "balance" FROM ${id(M.balance)} WHERE ${where} GROUP BY time($__interval), ${id(T.account)} fill(none)`,
    { columns: ['time', 'balance'], groupBy: [T.account] },
  ).refId('A').alias('$tag_account');

  // Prepaid enforcement (issue 13): what the policy wants, what the meters read back, why.
  const relayWhere = `$timeFilter AND ${siteFilter} AND ${matchVar(T.account, 'account')}`;
  const relays = new InfluxQLBuilder(
    `SELECT last(${id(F.wanted)}) AS "wanted", last(${id(F.state)}) AS "power", last(${id(F.mismatch)}) AS "mismatch", last(${id(F.mode)}) AS "mode", last(${id(F.decision)}) AS "why", last(${id(F.deferred)}) AS "deferred", last(${id(F.restoreFen)}) / 100 AS "to_restore", last(${id(F.pending)}) AS "pending" FROM ${id(M.relay)} WHERE ${relayWhere} GROUP BY ${id(T.account)}`,
    { columns: ['time', 'wanted', 'power', 'mismatch', 'mode', 'why', 'deferred', 'to_restore', 'pending'], groupBy: [T.account] },
    'table',
  ).refId('A');
  const mismatches = new InfluxQLBuilder(
    `SELECT sum("m") AS "accounts" FROM (SELECT last(${id(F.mismatch)}) AS "m" FROM ${id(M.relay)} WHERE ${relayWhere} GROUP BY ${id(T.account)})`,
    { columns: ['time', 'accounts'], groupBy: [] },
  ).refId('A');
  const onOff = [
    { type: MappingType.ValueToText, options: { '1': { text: 'ON', color: 'green', index: 0 }, '0': { text: 'OFF', color: 'red', index: 1 } } },
  ];

  return board(DASHBOARD_UID.balances, 'submeter / Balances', 'All accounts by id and name: live balance, own low-balance threshold, hours left, status; relays (prepaid cut-off); top-ups.')
    .withVariable(siteVariable())
    // Several accounts or All; All is the regex .* so a 1,000-account site is not a 1,000-way alternation.
    .withVariable(accountVariable().multi(true).includeAll(true).allValue('.*').current({ text: 'All', value: '$__all' }))
    .withPanel(new Stat().title('Accounts below their threshold').withTarget(low).noValue('0').thresholds(steps(1)).reduceOptions(lastValue()).graphMode(BigValueGraphMode.None).height(5).span(12))
    .withPanel(new Stat().title('Prepaid balance held (sum)').withTarget(total).unit(UNIT.cny).decimals(2).reduceOptions(lastValue()).graphMode(BigValueGraphMode.None).height(5).span(12))
    .withPanel(
      new Table()
        .title('Accounts')
        .withTarget(table)
        // The query's "status" is balance minus threshold in fen; its sign is the status.
        .overrideByName('status', [
          {
            id: 'mappings',
            value: [
              { type: MappingType.RangeToText, options: { from: null, to: -0.5, result: { text: 'LOW', color: 'red', index: 0 } } },
              { type: MappingType.RangeToText, options: { from: -0.5, to: null, result: { text: 'OK', color: 'green', index: 1 } } },
            ],
          },
          { id: 'custom.cellOptions', value: { type: TableCellDisplayMode.ColorBackground } },
        ])
        .overrideByName('balance', [{ id: 'unit', value: UNIT.cny }, { id: 'decimals', value: 2 }])
        .overrideByName('threshold', [{ id: 'unit', value: UNIT.cny }, { id: 'decimals', value: 2 }])
        .overrideByName('cost_per_hour', [{ id: 'unit', value: UNIT.cny }, { id: 'decimals', value: 2 }])
        .overrideByName('hours_left', [{ id: 'unit', value: UNIT.hours }, { id: 'decimals', value: 1 }])
        .overrideByName('Time', [{ id: 'custom.hidden', value: true }])
        .span(24)
        .height(14),
    )
    .withPanel(new TimeSeries().title('Balances').withTarget(history).unit(UNIT.cny).legend(legendTable(['lastNotNull', 'min'])).span(24))
    .withPanel(new Stat().title('Relay mismatches').description('Accounts whose relay does not read back what was commanded (stuck relay, wiring, a meter that refused).').withTarget(mismatches).noValue('0').thresholds(steps(1)).reduceOptions(lastValue()).graphMode(BigValueGraphMode.None).height(5).span(6))
    .withPanel(
      new Table()
        .title('Relays (prepaid cut-off)')
        .description('wanted = what the policy asks for, power = what the meters read back (empty: not read yet). why = the policy reason, deferred = why a due trip waits (protected-window, stale-data, hold, protected-account). mode: off, dry-run (nothing sent) or on. docs/enforcement.md.')
        .withTarget(relays)
        .overrideByName('wanted', [{ id: 'mappings', value: onOff }, { id: 'custom.cellOptions', value: { type: TableCellDisplayMode.ColorText } }])
        .overrideByName('power', [{ id: 'mappings', value: onOff }, { id: 'custom.cellOptions', value: { type: TableCellDisplayMode.ColorBackground } }])
        .overrideByName('mismatch', [
          { id: 'mappings', value: [{ type: MappingType.ValueToText, options: { '1': { text: 'MISMATCH', color: 'red', index: 0 }, '0': { text: 'ok', color: 'green', index: 1 } } }] },
          { id: 'custom.cellOptions', value: { type: TableCellDisplayMode.ColorBackground } },
        ])
        .overrideByName('to_restore', [{ id: 'unit', value: UNIT.cny }, { id: 'decimals', value: 2 }])
        .overrideByName('Time', [{ id: 'custom.hidden', value: true }])
        .span(18)
        .height(10),
    )
    .withRow(new RowBuilder('Top-ups'))
    .withPanel(new Stat().title('Top-ups (30 days)').description('Payments recorded in the last 30 days (the payment ledger), and how many.').withTarget(topUpTotal).timeFrom(TOP_UP_WINDOW).unit(UNIT.cny).decimals(2).overrideByName('payments', [{ id: 'unit', value: UNIT.short }, { id: 'decimals', value: 0 }]).textMode(BigValueTextMode.ValueAndName).reduceOptions(lastValue()).graphMode(BigValueGraphMode.None).height(6).span(6))
    .withPanel(new TimeSeries().title('Top-ups over time (30 days)').withTarget(topUps).timeFrom(TOP_UP_WINDOW).interval('1h').unit(UNIT.cny).drawStyle(GraphDrawStyle.Bars).fillOpacity(70).legend(legend()).height(6).span(18))
    .withPanel(new Table().title('Recent top-ups (30 days)').withTarget(recentTopUps).timeFrom(TOP_UP_WINDOW).overrideByName('amount', [{ id: 'unit', value: UNIT.cny }, { id: 'decimals', value: 2 }]).span(24).height(10));
}
