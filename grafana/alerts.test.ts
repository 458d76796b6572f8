/**
 * Alert rules evaluated the way Grafana evaluates them, against the real InfluxDB: each
 * InfluxQL step runs over its relative time range (macros expanded), every series
 * becomes a frame labelled by its tags, `reduce` (last, dropNN) turns each frame into
 * one number, `threshold` into 1 or 0, and the alert instances that fire are the label
 * sets whose condition is 1.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InfluxV1 } from '../influx/client.ts';
import { rulesFile } from './alerting.ts';
import { EXPR_UID } from './datasource.ts';
import { expandInfluxQL, panelInterval } from './expand.ts';
import { queryShapes } from './influxql.ts';
import { CLOCK_OFF_METER, FAILING_QUEUE, GROWING_SPOOL_HOST, NOT_ANSWERING_METER, RELAY_MISMATCH_ACCOUNT, SITE, THRESHOLD_FEN, driveBelowThreshold, driveHoursBelow, driveSettlementLate, writeFixture } from './fixture.ts';

const url = process.env.SUBMETER_INFLUX_URL ?? 'http://127.0.0.1:8096';
const influx = new InfluxV1({ url, db: `t_grafana_alert_${randomBytes(4).toString('hex')}` });
const NOW = Date.UTC(2026, 9, 15, 12, 0, 0);

type Labels = Record<string, string>;
/** One frame: a labelled series of (time, value) points, or one labelled number. */
interface Frame { labels: Labels; points: (number | null)[] }
interface NumberResult { labels: Labels; value: number }
type StepResult = { kind: 'frames'; frames: Frame[] } | { kind: 'numbers'; numbers: NumberResult[] };

type Json = any;
const ruleByUid = (uid: string): Json => rulesFile().groups.flatMap((g) => g.rules).find((r) => r.uid === uid);
const allRules = rulesFile().groups.flatMap((g) => g.rules) as Json[];

async function runQueryStep(step: Json, nowMs: number): Promise<Frame[]> {
  const fromMs = nowMs - step.relativeTimeRange.from * 1000;
  const toMs = nowMs - step.relativeTimeRange.to * 1000;
  // Alert queries: intervalMs 1000 and maxDataPoints 43200 are Grafana's defaults.
  const q = expandInfluxQL(step.model.query, { fromMs, toMs, interval: panelInterval(fromMs, toMs, 43_200, '1s') });
  const [series = []] = await influx.queryRaw(q);
  const shape = queryShapes().get(step.model.query);
  expect(shape, `no shape for ${step.model.query}`).toBeDefined();
  const frames: Frame[] = [];
  for (const s of series) {
    expect(s.columns).toEqual(shape!.columns);
    expect(Object.keys(s.tags ?? {}).sort()).toEqual([...shape!.groupBy].sort());
    // Grafana makes one frame per value column; two frames with the same labels would make
    // reduce fail with "duplicate results", so alert queries select one value each.
    expect(s.columns.length, `${step.refId}: one value column`).toBe(2);
    frames.push({ labels: { ...(s.tags ?? {}) }, points: s.values.map((v) => (v[1] === null ? null : Number(v[1]))) });
  }
  return frames;
}

function reduce(model: Json, input: StepResult): NumberResult[] {
  expect(input.kind).toBe('frames');
  expect(model.reducer).toBe('last');
  const out: NumberResult[] = [];
  for (const f of (input as { frames: Frame[] }).frames) {
    const kept = model.settings?.mode === 'dropNN' ? f.points.filter((p): p is number => p !== null && !Number.isNaN(p)) : f.points;
    if (kept.length === 0) continue;
    const last = kept[kept.length - 1];
    if (last === null) continue;
    out.push({ labels: f.labels, value: last });
  }
  return out;
}

function threshold(model: Json, input: StepResult): NumberResult[] {
  expect(input.kind).toBe('numbers');
  const [{ evaluator }] = model.conditions;
  const [p] = evaluator.params;
  const test = { lt: (v: number) => v < p, gt: (v: number) => v > p }[evaluator.type as 'lt' | 'gt'];
  expect(test, `evaluator ${evaluator.type}`).toBeDefined();
  return (input as { numbers: NumberResult[] }).numbers.map((n) => ({ labels: n.labels, value: test(n.value) ? 1 : 0 }));
}

async function evaluate(rule: Json, nowMs: number): Promise<Map<string, StepResult>> {
  const results = new Map<string, StepResult>();
  for (const step of rule.data) {
    if (step.datasourceUid !== EXPR_UID) {
      results.set(step.refId, { kind: 'frames', frames: await runQueryStep(step, nowMs) });
    }
  }
  // Expressions in order; each names its input by refId.
  for (const step of rule.data) {
    if (step.datasourceUid !== EXPR_UID) continue;
    const input = results.get(step.model.expression);
    expect(input, `${rule.uid}: ${step.refId} reads ${step.model.expression}`).toBeDefined();
    const fn = { reduce, threshold }[step.model.type as 'reduce' | 'threshold'];
    expect(fn, `expression type ${step.model.type}`).toBeDefined();
    results.set(step.refId, { kind: 'numbers', numbers: fn(step.model, input!) });
  }
  return results;
}

async function firing(rule: Json, nowMs: number): Promise<Labels[]> {
  const cond = (await evaluate(rule, nowMs)).get(rule.condition);
  expect(cond?.kind).toBe('numbers');
  return (cond as { numbers: NumberResult[] }).numbers.filter((n) => n.value !== 0).map((n) => n.labels);
}

describe('alert rules against the real InfluxDB', () => {
  beforeAll(async () => {
    expect(await influx.ping()).toBe(true);
    await influx.createDatabase();
    await writeFixture(influx, NOW);
  });
  afterAll(async () => influx.dropDatabase());

  it('every alert query returns data of its shape', async () => {
    for (const r of allRules) {
      for (const step of r.data) {
        if (step.datasourceUid === EXPR_UID) continue;
        expect((await runQueryStep(step, NOW)).length, `${r.uid} ${step.refId}`).toBeGreaterThan(0);
      }
    }
  });

  it('low balance: quiet while every account is above its own threshold, then fires for exactly the one driven below', async () => {
    const rule = ruleByUid('submeter-low-balance');
    expect(await firing(rule, NOW)).toEqual([]);

    await driveBelowThreshold(influx, 'A102', NOW + 15_000);
    const at = NOW + 30_000;
    expect(await firing(rule, at)).toEqual([{ site: SITE, account: 'A102' }]);

    // The values the message prints, for the firing account.
    const steps = await evaluate(rule, at);
    const valueOf = (ref: string) => (steps.get(ref) as { numbers: NumberResult[] }).numbers.find((n) => n.labels.account === 'A102')?.value;
    expect(valueOf('BALANCE')).toBeCloseTo((THRESHOLD_FEN.A102 - 1) / 100, 6);
    expect(valueOf('THRESHOLD')).toBeCloseTo(THRESHOLD_FEN.A102 / 100, 6);
    expect(valueOf('HOURS')).toBeGreaterThan(0);
  });

  it('low balance (hours left): fires for exactly the account whose hours fall below its own low_balance_hours', async () => {
    const rule = ruleByUid('submeter-low-hours');
    expect(await firing(rule, NOW)).toEqual([]);
    // A101 stays above its money threshold but is spending fast: under 48 h left.
    await driveHoursBelow(influx, 'A101', NOW + 20_000);
    expect(await firing(rule, NOW + 30_000)).toEqual([{ site: SITE, account: 'A101' }]);
    // The money rule does not fire for it: the two halves are independent.
    expect(await firing(ruleByUid('submeter-low-balance'), NOW + 30_000)).not.toContainEqual({ site: SITE, account: 'A101' });
  });

  it('meter not answering fires for exactly the meter failing its polls', async () => {
    expect(await firing(ruleByUid('submeter-meter-not-answering'), NOW)).toEqual([{ site: SITE, meter: NOT_ANSWERING_METER }]);
    // One name per definition: the rule and the workers' no-reading-past-max_gap event differ.
    const rule = ruleByUid('submeter-meter-not-answering');
    expect(rule.title).toBe('Meter not answering');
    expect(rule.labels.submeter).toBe('meter_not_answering');
    expect(allRules.map((r) => r.labels.submeter)).not.toContain('meter_offline');
  });

  it('meter clock off fires for exactly the meter beyond its own max_clock_drift', async () => {
    expect(await firing(ruleByUid('submeter-meter-clock-off'), NOW)).toEqual([{ site: SITE, meter: CLOCK_OFF_METER }]);
  });

  it('worker jobs failed fires for exactly the queue whose jobs failed for good in the last hour', async () => {
    expect(await firing(ruleByUid('submeter-worker-jobs-failed'), NOW)).toEqual([{ site: SITE, queue: FAILING_QUEUE }]);
    // An hour later without new failures it is quiet again (the count stays, no rise).
    expect(await firing(ruleByUid('submeter-worker-jobs-failed'), NOW + 2 * 3_600_000)).toEqual([]);
  });

  it('settlement missed: quiet while every due day is settled, fires when one is over an hour late', async () => {
    const rule = ruleByUid('submeter-settlement-missed');
    expect(await firing(rule, NOW)).toEqual([]);
    await driveSettlementLate(influx, 0.5, NOW + 10_000);
    expect(await firing(rule, NOW + 20_000)).toEqual([]);
    await driveSettlementLate(influx, 2, NOW + 30_000);
    expect(await firing(rule, NOW + 40_000)).toEqual([{ site: SITE }]);
    // No report at all (workers down) is alerting too.
    expect(rule.noDataState).toBe('Alerting');
  });

  it('collector spool growing fires for exactly the collector that cannot write', async () => {
    expect(await firing(ruleByUid('submeter-spool-growing'), NOW)).toEqual([{ site: SITE, host: GROWING_SPOOL_HOST }]);
  });

  it('relay mismatch fires for exactly the account whose relay does not read back what was commanded', async () => {
    expect(await firing(ruleByUid('submeter-relay-mismatch'), NOW)).toEqual([{ site: SITE, account: RELAY_MISMATCH_ACCOUNT }]);
    // Before the relay stuck, nothing fired.
    expect(await firing(ruleByUid('submeter-relay-mismatch'), NOW - 20 * 60_000)).toEqual([]);
  });

  it('abnormal loss fires for the site whose latest settled day exceeded the cap', async () => {
    expect(await firing(ruleByUid('submeter-abnormal-loss'), NOW)).toEqual([{ site: SITE }]);
  });
});
