/**
 * Alert rules, the email contact point with its message template, and the notification
 * policy, as Grafana's file-provisioning documents (protocols.md, "Grafana provisioning").
 *
 * Rules are built with the SDK's alerting builders; the SDK speaks the HTTP API's shape,
 * so `ruleGroupFile` maps it to the file format (orgId/name/folder on the group).
 *
 * Grafana expands environment variables (`$NAME`) in provisioning files, rule labels and
 * contact-point settings included, but not in rule annotations. So `{{ $labels.x }}` and
 * `{{ $values.X }}` appear only in annotations, and the message template uses the dotted
 * form (`.Labels.account`), never a `$`.
 */
import { QueryBuilder, RuleBuilder, type Rule } from '@grafana/grafana-foundation-sdk/alerting';
import { TypeReduceBuilder, TypeThresholdBuilder } from '@grafana/grafana-foundation-sdk/expr';
import { F, M, T } from '../influx/schema.ts';
import { DASHBOARD_UID, DATASOURCE_UID, EXPR_UID, FOLDER } from './datasource.ts';
import { InfluxQLBuilder, id } from './influxql.ts';

export const CONTACT_POINT = 'submeter-energy-managers';
export const TEMPLATE_NAME = 'submeter-email';
const ORG_ID = 1;

/** The relative window each query reads, in seconds before now. */
type Window = { from: number; to: number };

function influxStep(refId: string, query: string, columns: string[], groupBy: string[], window: Window): QueryBuilder {
  return new QueryBuilder(refId)
    .datasourceUid(DATASOURCE_UID)
    .relativeTimeRange(window)
    .model(new InfluxQLBuilder(query, { columns, groupBy }).refId(refId));
}

const exprRef = { type: '__expr__', uid: EXPR_UID };

function reduceStep(refId: string, input: string): QueryBuilder {
  // dropNN: a series whose points are all null yields no value rather than NaN.
  return new QueryBuilder(refId)
    .datasourceUid(EXPR_UID)
    .relativeTimeRange({ from: 0, to: 0 })
    .model(new TypeReduceBuilder().refId(refId).datasource(exprRef).expression(input).reducer('last').settings({ mode: 'dropNN' }));
}

function thresholdStep(refId: string, input: string, type: 'gt' | 'lt', param: number): QueryBuilder {
  return new QueryBuilder(refId)
    .datasourceUid(EXPR_UID)
    .relativeTimeRange({ from: 0, to: 0 })
    .model(new TypeThresholdBuilder().refId(refId).datasource(exprRef).expression(input).conditions([{ evaluator: { type, params: [param] } }]));
}

// externalURL is Grafana's root_url; links are built in annotations, which Grafana renders
// per alert with $labels and never env-interpolates.
const dashboardLink = (uid: string) => `{{ externalURL }}/d/${uid}/?var-site={{ $labels.site }}`;
const tenantLink = `{{ externalURL }}/d/${DASHBOARD_UID.tenant}/?var-site={{ $labels.site }}&var-account={{ $labels.account }}`;

/** Balance, threshold and hours left per account, reduced to BALANCE, THRESHOLD, HOURS: they only feed the message. */
function balanceFigures(rule: RuleBuilder, w: Window): RuleBuilder {
  const bySeries = `GROUP BY ${id(T.site)}, ${id(T.account)}`;
  return rule
    .withQuery(influxStep('balance', `SELECT last(${id(F.balanceFen)}) / 100 AS "balance_cny" FROM ${id(M.balance)} WHERE $timeFilter ${bySeries}`, ['time', 'balance_cny'], [T.site, T.account], w))
    .withQuery(influxStep('threshold', `SELECT last(${id(F.lowBalanceFen)}) / 100 AS "threshold_cny" FROM ${id(M.balance)} WHERE $timeFilter ${bySeries}`, ['time', 'threshold_cny'], [T.site, T.account], w))
    .withQuery(influxStep('hours', `SELECT last(${id(F.hoursLeft)}) AS "hours_left" FROM ${id(M.balance)} WHERE $timeFilter ${bySeries}`, ['time', 'hours_left'], [T.site, T.account], w))
    .withQuery(reduceStep('BALANCE', 'balance'))
    .withQuery(reduceStep('THRESHOLD', 'threshold'))
    .withQuery(reduceStep('HOURS', 'hours'));
}

const balanceDescription = [
  'Account:    {{ $labels.account }} (site {{ $labels.site }})',
  'Balance:    {{ with $values.BALANCE }}{{ printf "%.2f" .Value }}{{ end }} CNY',
  'Threshold:  {{ with $values.THRESHOLD }}{{ printf "%.2f" .Value }}{{ end }} CNY',
  'Hours left: {{ with $values.HOURS }}{{ printf "%.1f" .Value }}{{ else }}unknown{{ end }} at the last 24 h spending rate',
].join('\n');

/**
 * Low balance, per account, against the account's own threshold (billing.md section 5):
 * the workers write balance_fen and low_balance_fen on each balance point, so the query's
 * headroom is per series and the condition is just "below zero".
 */
export function lowBalanceRule(): RuleBuilder {
  return balanceRule({
    title: 'Low balance',
    uid: 'submeter-low-balance',
    value: F.balanceFen,
    threshold: F.lowBalanceFen,
    alias: 'headroom_fen',
    summary: 'Account {{ $labels.account }} ({{ $labels.site }}): balance below its low-balance threshold',
  });
}

/**
 * The other half of billing.md's low-balance rule: projected hours to zero below the
 * account's low_balance_hours. Accounts without that setting have no low_balance_hours
 * field, so their margin is null and reduce (dropNN) leaves them out.
 */
export function lowHoursRule(): RuleBuilder {
  return balanceRule({
    title: 'Low balance (hours left)',
    uid: 'submeter-low-hours',
    value: F.hoursLeft,
    threshold: F.lowBalanceHours,
    alias: 'hours_margin',
    summary: 'Account {{ $labels.account }} ({{ $labels.site }}): balance runs out within its warning time',
  });
}

/** A per-account rule on the balance series: fires when `value` - `threshold` is below zero. */
function balanceRule(o: { title: string; uid: string; value: string; threshold: string; alias: string; summary: string }): RuleBuilder {
  const w = { from: 3600, to: 0 };
  const rule = new RuleBuilder(o.title)
    .uid(o.uid)
    .condition('C')
    .withQuery(influxStep('A', `SELECT last(${id(o.value)}) - last(${id(o.threshold)}) AS "${o.alias}" FROM ${id(M.balance)} WHERE $timeFilter GROUP BY ${id(T.site)}, ${id(T.account)}`, ['time', o.alias], [T.site, T.account], w))
    .withQuery(reduceStep('B', 'A'))
    .withQuery(thresholdStep('C', 'B', 'lt', 0));
  return balanceFigures(rule, w)
    .forDuration('1m')
    .noDataState('OK')
    .execErrState('Error')
    .labels({ severity: 'warning', submeter: 'low_balance' })
    .annotations({ summary: o.summary, description: balanceDescription, tenant_page: tenantLink });
}

/**
 * A meter that failed this many polls in a row is "not answering" (the collector reaches
 * its bus or gateway, the meter does not reply; each poll already retried). Not the same
 * as the workers' `meter_offline` event, which says no reading was stored for longer than
 * the meter's max_gap (docs/grafana.md, "Two ways a meter goes quiet"): a collector that is
 * down raises that one and no failed polls at all.
 */
export const NOT_ANSWERING_CONSECUTIVE_ERRORS = 5;

export function meterNotAnsweringRule(): RuleBuilder {
  const w = { from: 900, to: 0 };
  return new RuleBuilder('Meter not answering')
    .uid('submeter-meter-not-answering')
    .condition('C')
    .withQuery(influxStep('A', `SELECT last(${id(F.consecutiveErrors)}) AS "consecutive_errors" FROM ${id(M.meterHealth)} WHERE $timeFilter GROUP BY ${id(T.site)}, ${id(T.meter)}`, ['time', 'consecutive_errors'], [T.site, T.meter], w))
    .withQuery(reduceStep('B', 'A'))
    .withQuery(thresholdStep('C', 'B', 'gt', NOT_ANSWERING_CONSECUTIVE_ERRORS - 1))
    .forDuration('5m')
    // No health points at all for 15 minutes means the collector itself is down.
    .noDataState('Alerting')
    .execErrState('Error')
    .labels({ severity: 'critical', submeter: 'meter_not_answering' })
    .annotations({
      summary: 'Meter {{ $labels.meter }} ({{ $labels.site }}) is not answering the collector',
      description: 'Meter {{ $labels.meter }} failed {{ with $values.B }}{{ printf "%.0f" .Value }}{{ end }} polls in a row. Its energy is not lost (registers are cumulative; DL/T 645 meters are read back from their daily freezes) but balances lag until it answers. No data at all: the collector is not reporting.',
      dashboard: dashboardLink(DASHBOARD_UID.health),
    });
}

/**
 * A DL/T 645 meter whose clock is further off than its own max_clock_drift (the collector's
 * daily clock check writes the drift and the bound side by side in meter_health). Its
 * freezes and tariff registers then run on the wrong time; the daily broadcast corrects up
 * to +-5 min, beyond that someone sets it on site. Checks are daily: a 26 h window.
 */
export function meterClockOffRule(): RuleBuilder {
  const w = { from: 26 * 3600, to: 0 };
  return new RuleBuilder('Meter clock off')
    .uid('submeter-meter-clock-off')
    .condition('C')
    .withQuery(influxStep('A', `SELECT abs(last(${id(F.clockDriftS)})) - last(${id(F.clockMaxDriftS)}) AS "clock_excess_s" FROM ${id(M.meterHealth)} WHERE $timeFilter GROUP BY ${id(T.site)}, ${id(T.meter)}`, ['time', 'clock_excess_s'], [T.site, T.meter], w))
    .withQuery(reduceStep('B', 'A'))
    .withQuery(thresholdStep('C', 'B', 'gt', 0))
    .forDuration('0s')
    .noDataState('OK')
    .execErrState('Error')
    .labels({ severity: 'warning', submeter: 'meter_clock_off' })
    .annotations({
      summary: 'Meter {{ $labels.meter }} ({{ $labels.site }}): clock off by more than its max_clock_drift',
      description: 'The clock of meter {{ $labels.meter }} is {{ with $values.B }}{{ printf "%.0f" .Value }}{{ end }} s beyond its bound. Its daily freezes and tariff registers run on that time. The nightly broadcast corrects up to 5 minutes; beyond that set the clock on site.',
      dashboard: dashboardLink(DASHBOARD_UID.health),
    });
}

/**
 * Worker jobs that failed for good (bad data or config: kept in the queue for inspection,
 * docs/workers.md) in the last hour, per queue. The workers report each queue's failed
 * count every minute (worker measurement); a rise is a new failure.
 */
export function workerJobsFailedRule(): RuleBuilder {
  const w = { from: 3600, to: 0 };
  return new RuleBuilder('Worker jobs failed')
    .uid('submeter-worker-jobs-failed')
    .condition('C')
    .withQuery(influxStep('A', `SELECT last(${id(F.failed)}) - first(${id(F.failed)}) AS "new_failed" FROM ${id(M.worker)} WHERE $timeFilter GROUP BY ${id(T.site)}, ${id(T.queue)}`, ['time', 'new_failed'], [T.site, T.queue], w))
    .withQuery(reduceStep('B', 'A'))
    .withQuery(thresholdStep('C', 'B', 'gt', 0))
    .forDuration('0s')
    .noDataState('OK')
    .execErrState('Error')
    .labels({ severity: 'warning', submeter: 'worker_jobs_failed' })
    .annotations({
      summary: 'Queue {{ $labels.queue }} ({{ $labels.site }}): jobs failed for good',
      description: '{{ with $values.B }}{{ printf "%.0f" .Value }}{{ end }} job(s) of queue {{ $labels.queue }} failed in the last hour and will not be retried (bad data or configuration). `submeter workers` logs say why; fix the cause, then retry or remove them.',
      dashboard: dashboardLink(DASHBOARD_UID.health),
    });
}

/** A due day (local midnight + grace passed) not settled for this many hours raises the alarm. */
export const SETTLEMENT_LATE_HOURS = 1;

/**
 * A settlement that did not happen: the workers report, per site, how long the oldest due
 * day has waited past its due time (worker measurement, queue `settlement`, lag_ms). No
 * report for two hours means the workers are not running at all: also alerting.
 */
export function settlementMissedRule(): RuleBuilder {
  const w = { from: 7200, to: 0 };
  return new RuleBuilder('Settlement missed')
    .uid('submeter-settlement-missed')
    .condition('C')
    .withQuery(influxStep('A', `SELECT last(${id(F.lagMs)}) / 3600000 AS "settlement_late_h" FROM ${id(M.worker)} WHERE $timeFilter AND ${id(T.queue)} = 'settlement' GROUP BY ${id(T.site)}`, ['time', 'settlement_late_h'], [T.site], w))
    .withQuery(reduceStep('B', 'A'))
    .withQuery(thresholdStep('C', 'B', 'gt', SETTLEMENT_LATE_HOURS))
    .forDuration('0s')
    .noDataState('Alerting')
    .execErrState('Error')
    .labels({ severity: 'critical', submeter: 'settlement_missed' })
    .annotations({
      summary: 'Site {{ $labels.site }}: a day is not settled',
      description: 'The oldest day due for settlement has waited {{ with $values.B }}{{ printf "%.1f" .Value }}{{ end }} h past local midnight + grace: balances do not include it and no statement can close. Check that the workers run (Worker jobs failed, the workers log). No data: the workers are not reporting at all.',
      dashboard: dashboardLink(DASHBOARD_UID.health),
    });
}

export function abnormalLossRule(): RuleBuilder {
  const w = { from: 2 * 86_400, to: 0 };
  return new RuleBuilder('Abnormal loss')
    .uid('submeter-abnormal-loss')
    .condition('C')
    .withQuery(influxStep('A', `SELECT sum(${id(F.lossAbnormalWh)}) AS "loss_abnormal_wh" FROM ${id(M.siteDay)} WHERE $timeFilter GROUP BY ${id(T.site)}`, ['time', 'loss_abnormal_wh'], [T.site], w))
    .withQuery(reduceStep('B', 'A'))
    .withQuery(thresholdStep('C', 'B', 'gt', 0))
    .forDuration('0s')
    .noDataState('OK')
    .execErrState('Error')
    .labels({ severity: 'warning', submeter: 'abnormal_loss' })
    .annotations({
      summary: 'Site {{ $labels.site }}: line loss above the normal cap',
      description: 'In the last two settled days {{ with $values.B }}{{ printf "%.0f" .Value }}{{ end }} Wh of loss exceeded loss.normal_rate; the property bears it (billing.md section 4). Check for theft, a faulty meter or a missing sub-meter.',
      dashboard: dashboardLink(DASHBOARD_UID.site),
    });
}

export function spoolGrowingRule(): RuleBuilder {
  const w = { from: 900, to: 0 };
  return new RuleBuilder('Collector spool growing')
    .uid('submeter-spool-growing')
    .condition('C')
    .withQuery(influxStep('A', `SELECT last(${id(F.spoolSamples)}) - first(${id(F.spoolSamples)}) AS "spool_growth" FROM ${id(M.collector)} WHERE $timeFilter GROUP BY ${id(T.site)}, ${id(T.host)}`, ['time', 'spool_growth'], [T.site, T.host], w))
    .withQuery(reduceStep('B', 'A'))
    .withQuery(thresholdStep('C', 'B', 'gt', 0))
    .forDuration('10m')
    .noDataState('OK')
    .execErrState('Error')
    .labels({ severity: 'warning', submeter: 'spool_growing' })
    .annotations({
      summary: 'Collector {{ $labels.host }} ({{ $labels.site }}): spool growing',
      description: 'The store-and-forward spool grew by {{ with $values.B }}{{ printf "%.0f" .Value }}{{ end }} samples in 15 minutes: InfluxDB is not acknowledging writes. Nothing is lost until the spool is full.',
      dashboard: dashboardLink(DASHBOARD_UID.health),
    });
}

/**
 * Relay mismatch (issue 13): the workers set `mismatch` on an account's relay point when
 * its meters do not read back what was commanded after the read-back window (a stuck
 * relay, bad wiring, a refused command). Critical: a tenant may be without power the
 * policy wanted on, or drawing power the policy wanted off.
 */
export function relayMismatchRule(): RuleBuilder {
  const w = { from: 900, to: 0 };
  return new RuleBuilder('Relay mismatch')
    .uid('submeter-relay-mismatch')
    .condition('C')
    .withQuery(influxStep('A', `SELECT last(${id(F.mismatch)}) AS "mismatch" FROM ${id(M.relay)} WHERE $timeFilter GROUP BY ${id(T.site)}, ${id(T.account)}`, ['time', 'mismatch'], [T.site, T.account], w))
    .withQuery(reduceStep('B', 'A'))
    .withQuery(thresholdStep('C', 'B', 'gt', 0))
    .forDuration('0s')
    .noDataState('OK')
    .execErrState('Error')
    .labels({ severity: 'critical', submeter: 'relay_mismatch' })
    .annotations({
      summary: 'Account {{ $labels.account }} ({{ $labels.site }}): relay does not read back what was commanded',
      description: 'The meters of {{ $labels.account }} read back another state than the one commanded, past the read-back window: a stuck relay, wiring, or a command the meter refused. Check GET /api/v1/relay and the relay audit trail; commission the meter with `submeter relay ... status`.',
      dashboard: dashboardLink(DASHBOARD_UID.balances),
    });
}

export interface RuleGroupSpec {
  readonly name: string;
  readonly interval: string;
  readonly rules: readonly RuleBuilder[];
}

export function ruleGroups(): RuleGroupSpec[] {
  return [
    { name: 'balances', interval: '1m', rules: [lowBalanceRule(), lowHoursRule()] },
    { name: 'health', interval: '1m', rules: [meterNotAnsweringRule(), meterClockOffRule(), spoolGrowingRule(), workerJobsFailedRule(), settlementMissedRule(), relayMismatchRule()] },
    { name: 'site', interval: '5m', rules: [abnormalLossRule()] },
  ];
}

/** The SDK's API-shaped rule as a rule in a provisioning file. */
function fileRule(r: Rule) {
  return {
    uid: r.uid,
    title: r.title,
    condition: r.condition,
    data: r.data.map((q) => ({ refId: q.refId, relativeTimeRange: q.relativeTimeRange, datasourceUid: q.datasourceUid, model: q.model })),
    noDataState: r.noDataState,
    execErrState: r.execErrState,
    for: r.for,
    labels: r.labels,
    annotations: r.annotations,
    isPaused: false,
  };
}

/**
 * Rules an earlier version provisioned under another uid: Grafana keeps a provisioned rule
 * that disappears from the file, so the file deletes it. `submeter-meter-offline` became
 * "Meter not answering" (issue 16: one name per definition of a quiet meter).
 */
export const RETIRED_RULE_UIDS = ['submeter-meter-offline'] as const;

export function rulesFile() {
  return {
    apiVersion: 1,
    deleteRules: RETIRED_RULE_UIDS.map((uid) => ({ orgId: ORG_ID, uid })),
    groups: ruleGroups().map((g) => ({
      orgId: ORG_ID,
      name: g.name,
      folder: FOLDER,
      interval: g.interval,
      rules: g.rules.map((r) => fileRule(r.build())),
    })),
  };
}

/**
 * One message per notification, one block per alert. Values come from the rule's
 * annotations (already rendered per alert); no `$` here, see the file comment.
 */
export const EMAIL_TEMPLATE = `{{ define "submeter.subject" }}[submeter] {{ if .Alerts.Firing }}{{ len .Alerts.Firing }} firing{{ end }}{{ if and .Alerts.Firing .Alerts.Resolved }}, {{ end }}{{ if .Alerts.Resolved }}{{ len .Alerts.Resolved }} resolved{{ end }}: {{ .CommonLabels.alertname }}{{ end }}

{{ define "submeter.alert" }}{{ .Annotations.summary }}
{{ .Annotations.description }}
{{ if .Annotations.tenant_page }}Tenant page: {{ .Annotations.tenant_page }}
{{ end }}{{ if .Annotations.dashboard }}Dashboard: {{ .Annotations.dashboard }}
{{ end }}Since: {{ .StartsAt.Format "2006-01-02 15:04 MST" }}
{{ end }}

{{ define "submeter.message" }}{{ if .Alerts.Firing }}FIRING
{{ range .Alerts.Firing }}
{{ template "submeter.alert" . }}{{ end }}{{ end }}{{ if .Alerts.Resolved }}
RESOLVED
{{ range .Alerts.Resolved }}
{{ template "submeter.alert" . }}{{ end }}{{ end }}{{ end }}
`;

export function templatesFile() {
  return { apiVersion: 1, templates: [{ orgId: ORG_ID, name: TEMPLATE_NAME, template: EMAIL_TEMPLATE }] };
}

export function contactPointsFile() {
  return {
    apiVersion: 1,
    contactPoints: [
      {
        orgId: ORG_ID,
        name: CONTACT_POINT,
        receivers: [
          {
            uid: 'submeter-email',
            type: 'email',
            // Interpolated by Grafana from its environment (compose.yaml passes it from .env).
            settings: {
              addresses: '${SUBMETER_ALERT_EMAILS}',
              singleEmail: true,
              subject: '{{ template "submeter.subject" . }}',
              message: '{{ template "submeter.message" . }}',
            },
            disableResolveMessage: false,
          },
        ],
      },
    ],
  };
}

/**
 * A provisioned policy file replaces the whole tree. Low-balance alerts are grouped per
 * account and repeat daily (one mail per crossing, a reminder if nobody pays); health
 * alerts repeat every 4 hours while they last.
 */
export function policiesFile() {
  return {
    apiVersion: 1,
    policies: [
      {
        orgId: ORG_ID,
        receiver: CONTACT_POINT,
        group_by: ['grafana_folder', 'alertname', 'site'],
        group_wait: '30s',
        group_interval: '5m',
        repeat_interval: '4h',
        routes: [
          {
            receiver: CONTACT_POINT,
            object_matchers: [['submeter', '=', 'low_balance']],
            group_by: ['alertname', 'site', 'account'],
            repeat_interval: '24h',
          },
        ],
      },
    ],
  };
}
