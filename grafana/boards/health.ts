/**
 * Health: when each meter was last read and its error counts, the collector's spool
 * (store-and-forward backlog), the workers' lag, and data-quality flags (spike, reset,
 * rollover, gap, conflict, negative_loss, ...) as events.
 */
import { RowBuilder, MappingType } from '@grafana/grafana-foundation-sdk/dashboard';
import { GraphDrawStyle, StackingConfigBuilder, StackingMode, BarGaugeDisplayMode } from '@grafana/grafana-foundation-sdk/common';
import { PanelBuilder as TimeSeries } from '@grafana/grafana-foundation-sdk/timeseries';
import { PanelBuilder as Table } from '@grafana/grafana-foundation-sdk/table';
import { PanelBuilder as BarGauge } from '@grafana/grafana-foundation-sdk/bargauge';
import { F, M, T } from '../../influx/schema.ts';
import { DASHBOARD_UID } from '../datasource.ts';
import { InfluxQLBuilder, id, siteFilter } from '../influxql.ts';
import { board, lastValue, legend, siteVariable, steps, UNIT } from './common.ts';
import { NOT_ANSWERING_CONSECUTIVE_ERRORS } from '../alerting.ts';

export function health() {
  const where = `$timeFilter AND ${siteFilter}`;

  const lastSeen = new InfluxQLBuilder(
    `SELECT last(${id(F.wh)}) AS "wh" FROM ${id(M.reading)} WHERE ${where} GROUP BY ${id(T.meter)}`,
    { columns: ['time', 'wh'], groupBy: [T.meter] },
    'table',
  ).refId('A');

  const meterErrors = new InfluxQLBuilder(
    `SELECT last(${id(F.ok)}) AS "ok", last(${id(F.lastSeen)}) AS "last_seen", last(${id(F.errors)}) AS "errors", last(${id(F.consecutiveErrors)}) AS "consecutive_errors", last(${id(F.latencyMs)}) AS "latency_ms", last(${id(F.clockDriftS)}) AS "clock_drift_s" FROM ${id(M.meterHealth)} WHERE ${where} GROUP BY ${id(T.meter)}`,
    { columns: ['time', 'ok', 'last_seen', 'errors', 'consecutive_errors', 'latency_ms', 'clock_drift_s'], groupBy: [T.meter] },
    'table',
  ).refId('A');

  const consecutive = new InfluxQLBuilder(
    `SELECT max(${id(F.consecutiveErrors)}) AS "consecutive_errors" FROM ${id(M.meterHealth)} WHERE ${where} GROUP BY time($__interval), ${id(T.meter)} fill(none)`,
    { columns: ['time', 'consecutive_errors'], groupBy: [T.meter] },
  ).refId('A').alias('$tag_meter');

  const spool = new InfluxQLBuilder(
    `SELECT last(${id(F.spoolSamples)}) AS "spool_samples" FROM ${id(M.collector)} WHERE ${where} GROUP BY time($__interval), ${id(T.host)} fill(none)`,
    { columns: ['time', 'spool_samples'], groupBy: [T.host] },
  ).refId('A').alias('$tag_host');

  const spoolFull = new InfluxQLBuilder(
    `SELECT last(${id(F.spoolFull)}) AS "spool_full", last(${id(F.spoolBytes)}) AS "spool_bytes", last(${id(F.spoolRefused)}) AS "refused" FROM ${id(M.collector)} WHERE ${where} GROUP BY ${id(T.host)}`,
    { columns: ['time', 'spool_full', 'spool_bytes', 'refused'], groupBy: [T.host] },
    'table',
  ).refId('A');

  const lag = new InfluxQLBuilder(
    `SELECT max(${id(F.lagMs)}) AS "lag_ms" FROM ${id(M.worker)} WHERE ${where} GROUP BY time($__interval), ${id(T.queue)} fill(none)`,
    { columns: ['time', 'lag_ms'], groupBy: [T.queue] },
  ).refId('A').alias('$tag_queue');

  const queues = new InfluxQLBuilder(
    `SELECT last(${id(F.lagMs)}) AS "lag_ms", last(${id(F.waiting)}) AS "waiting", last(${id(F.failed)}) AS "failed" FROM ${id(M.worker)} WHERE ${where} GROUP BY ${id(T.queue)}`,
    { columns: ['time', 'lag_ms', 'waiting', 'failed'], groupBy: [T.queue] },
    'table',
  ).refId('A');

  const flagsByKind = new InfluxQLBuilder(
    `SELECT count(${id(F.detail)}) AS "flags" FROM ${id(M.event)} WHERE ${where} GROUP BY ${id(T.kind)}`,
    { columns: ['time', 'flags'], groupBy: [T.kind] },
  ).refId('A').alias('$tag_kind');

  const flagsOverTime = new InfluxQLBuilder(
    `SELECT count(${id(F.detail)}) AS "flags" FROM ${id(M.event)} WHERE ${where} GROUP BY time($__interval), ${id(T.kind)} fill(none)`,
    { columns: ['time', 'flags'], groupBy: [T.kind] },
  ).refId('A').alias('$tag_kind');

  const recent = new InfluxQLBuilder(
    `SELECT ${id(T.kind)}, ${id(T.meter)}, ${id(T.account)}, ${id(F.detail)}, ${id(F.value)} FROM ${id(M.event)} WHERE ${where} ORDER BY time DESC LIMIT 200`,
    { columns: ['time', T.kind, T.meter, T.account, F.detail, F.value], groupBy: [] },
    'table',
  ).refId('A');

  const okMapping = [
    {
      type: MappingType.ValueToText,
      options: { true: { text: 'ok', color: 'green', index: 0 }, false: { text: 'failing', color: 'red', index: 1 } },
    },
  ];

  return board(DASHBOARD_UID.health, 'submeter / Health', 'Meters last seen and errors, collector spool, worker lag, data-quality flags.')
    .withVariable(siteVariable())
    .withRow(new RowBuilder('Meters'))
    .withPanel(new Table().title('Meters: last reading').description('time = when the meter was last read; wh = its register then.').withTarget(lastSeen).overrideByName('Time', [{ id: 'displayName', value: 'last seen' }]).overrideByName('wh', [{ id: 'unit', value: UNIT.wh }]).span(12).height(10))
    .withPanel(new Table().title('Meters: health').description('last_seen = the last successful read (from the collector); clock_drift_s = a DL/T 645 meter\'s clock minus the collector\'s at the last daily check (empty for Modbus meters).').withTarget(meterErrors).overrideByName('ok', [{ id: 'mappings', value: okMapping }]).overrideByName('last_seen', [{ id: 'unit', value: UNIT.time }]).overrideByName('latency_ms', [{ id: 'unit', value: UNIT.ms }]).overrideByName('clock_drift_s', [{ id: 'unit', value: 's' }]).overrideByName('Time', [{ id: 'custom.hidden', value: true }]).span(12).height(10))
    .withPanel(new TimeSeries().title('Consecutive failed polls per meter').description(`Not answering (the "Meter not answering" alert) from ${NOT_ANSWERING_CONSECUTIVE_ERRORS} failed polls in a row. Not the workers' meter_offline event (no reading stored for longer than max_gap, in the events below), which a stopped collector raises too.`).withTarget(consecutive).thresholds(steps(NOT_ANSWERING_CONSECUTIVE_ERRORS)).legend(legend()).span(24))
    .withRow(new RowBuilder('Pipeline'))
    .withPanel(new TimeSeries().title('Collector spool depth').description('Samples waiting for InfluxDB to acknowledge them; it should drain to 0.').withTarget(spool).unit(UNIT.short).legend(legend()).span(12))
    .withPanel(new Table().title('Collector spool').description('refused = samples turned away since start because the spool was full (they are lost).').withTarget(spoolFull).overrideByName('Time', [{ id: 'custom.hidden', value: true }]).overrideByName('spool_bytes', [{ id: 'unit', value: UNIT.bytes }]).overrideByName('spool_full', [{ id: 'mappings', value: [{ type: MappingType.ValueToText, options: { true: { text: 'FULL', color: 'red', index: 0 }, false: { text: 'ok', color: 'green', index: 1 } } }] }]).span(12))
    .withPanel(new TimeSeries().title('Worker lag').description('From the newest input to its effect, per queue.').withTarget(lag).unit(UNIT.ms).thresholds(steps(10_000)).legend(legend()).span(12))
    .withPanel(new Table().title('Worker queues').withTarget(queues).overrideByName('Time', [{ id: 'custom.hidden', value: true }]).overrideByName('lag_ms', [{ id: 'unit', value: UNIT.ms }]).span(12))
    .withRow(new RowBuilder('Data quality'))
    .withPanel(new BarGauge().title('Flags by kind (range)').withTarget(flagsByKind).displayMode(BarGaugeDisplayMode.Basic).reduceOptions(lastValue()).span(8))
    .withPanel(new TimeSeries().title('Flags over time').withTarget(flagsOverTime).drawStyle(GraphDrawStyle.Bars).stacking(new StackingConfigBuilder().mode(StackingMode.Normal)).fillOpacity(80).legend(legend()).span(16))
    .withPanel(new Table().title('Recent events and flags').withTarget(recent).span(24).height(12));
}

