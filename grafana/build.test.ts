/**
 * The committed Grafana files are what the sources generate, and they hang together:
 * every datasource uid, dashboard uid, expression refId, template name and receiver
 * that one file names exists in another.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { GRAFANA_DIR, DASHBOARDS_MOUNT, dashboards, stale } from './build.ts';
import { rulesFile } from './alerting.ts';
import { EXPR_UID } from './datasource.ts';
import { queryShapes } from './influxql.ts';
import { F, M, T } from '../influx/schema.ts';

const PROV = join(GRAFANA_DIR, 'provisioning');
const readYaml = (rel: string) => parse(readFileSync(join(PROV, rel), 'utf8'));

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? yamlFiles(join(dir, e.name)).map((f) => `${e.name}/${f}`) : e.name.endsWith('.yaml') ? [e.name] : []));
}

interface Ref { uid?: string; type?: string }
type Json = any;

const dashboardFiles = readdirSync(join(GRAFANA_DIR, 'dashboards')).filter((f) => f.endsWith('.json'));
const boards: Json[] = dashboardFiles.map((f) => JSON.parse(readFileSync(join(GRAFANA_DIR, 'dashboards', f), 'utf8')));
const datasources: Json = readYaml('datasources/influxdb.yaml');
const dsUids = new Set<string>(datasources.datasources.map((d: Ref) => d.uid));
const rules: Json = readYaml('alerting/rules.yaml');
const allRules: Json[] = rules.groups.flatMap((g: Json) => g.rules);

/**
 * Go text/template block structure: every define/if/range/with closed by end, else only
 * inside if/with/range, and no stray end. (No Go toolchain here to parse them for real.)
 */
function templateBlocksProblem(text: string): string | undefined {
  const stack: string[] = [];
  for (const [, raw] of text.matchAll(/\{\{-?\s*(.*?)\s*-?\}\}/gs)) {
    const word = raw.split(/\s+/)[0];
    if (['define', 'if', 'range', 'with', 'block'].includes(word)) stack.push(word);
    else if (word === 'else') {
      if (!['if', 'range', 'with'].includes(stack[stack.length - 1] ?? '')) return `else outside if/range/with: {{${raw}}}`;
    } else if (word === 'end') {
      if (!stack.pop()) return 'end without an open block';
    }
  }
  return stack.length ? `unclosed: ${stack.join(', ')}` : undefined;
}

describe('generated Grafana files', () => {
  it('are not stale: regenerating from the sources gives the committed bytes', () => {
    expect(stale(), 'run: npx tsx grafana/build.ts').toEqual([]);
  });

  it('every provisioning file parses as YAML with apiVersion 1', () => {
    const files = yamlFiles(PROV);
    expect(files.length).toBeGreaterThanOrEqual(6);
    for (const f of files) expect(readYaml(f).apiVersion, f).toBe(1);
  });

  it('the datasource is InfluxQL with a fixed uid and the 2.x/3.x token header from the environment', () => {
    const [ds] = datasources.datasources;
    expect(ds).toMatchObject({ type: 'influxdb', access: 'proxy', jsonData: { version: 'InfluxQL', httpHeaderName1: 'Authorization' } });
    expect(ds.secureJsonData.httpHeaderValue1).toMatch(/^\$\{[A-Z_]+\}$/);
  });

  it('dashboards have unique uids and every query and variable uses a provisioned datasource', () => {
    const uids = boards.map((b) => b.uid);
    expect(new Set(uids).size).toBe(uids.length);
    for (const b of boards) {
      const panels: Json[] = b.panels.flatMap((p: Json) => (p.type === 'row' ? (p.panels ?? []) : [p]));
      for (const p of panels) {
        for (const t of p.targets ?? []) expect(dsUids.has(t.datasource.uid), `${b.uid} / ${p.title}`).toBe(true);
      }
      for (const v of b.templating.list ?? []) if (v.datasource) expect(dsUids.has(v.datasource.uid), `${b.uid} $${v.name}`).toBe(true);
    }
  });

  it('the dashboard provider reads the folder compose.yaml mounts the JSON into', () => {
    const { providers } = readYaml('dashboards/submeter.yaml');
    expect(providers).toHaveLength(1);
    expect(providers[0]).toMatchObject({ type: 'file', options: { path: DASHBOARDS_MOUNT } });
  });

  it('alert rules reference existing datasources, refIds and dashboards', () => {
    const boardUids = new Set(boards.map((b) => b.uid));
    const ruleUids = allRules.map((r) => r.uid);
    expect(new Set(ruleUids).size).toBe(ruleUids.length);
    expect(ruleUids).toEqual(expect.arrayContaining(['submeter-low-balance', 'submeter-meter-not-answering', 'submeter-worker-jobs-failed', 'submeter-settlement-missed', 'submeter-abnormal-loss', 'submeter-spool-growing']));
    for (const r of allRules) {
      const refIds = new Set<string>(r.data.map((d: Json) => d.refId));
      expect(refIds.has(r.condition), `${r.uid} condition`).toBe(true);
      for (const d of r.data) {
        if (d.datasourceUid === EXPR_UID) {
          expect(refIds.has(d.model.expression), `${r.uid} ${d.refId} input`).toBe(true);
        } else {
          expect(dsUids.has(d.datasourceUid), `${r.uid} ${d.refId}`).toBe(true);
          expect(dsUids.has(d.model.datasource.uid)).toBe(true);
          expect(d.relativeTimeRange.from).toBeGreaterThan(0);
        }
      }
      for (const text of Object.values<string>(r.annotations ?? {})) {
        for (const m of text.matchAll(/\/d\/([\w-]+)/g)) expect(boardUids.has(m[1]), `${r.uid} links ${m[1]}`).toBe(true);
      }
    }
  });

  it('no $ where Grafana would expand it as an environment variable (rule labels, contact-point settings)', () => {
    for (const r of allRules) for (const v of Object.values<string>(r.labels ?? {})) expect(v).not.toContain('$');
    const { contactPoints } = readYaml('alerting/contact-points.yaml');
    for (const cp of contactPoints) {
      for (const rcv of cp.receivers) {
        for (const v of Object.values<string>(rcv.settings)) {
          if (typeof v === 'string') expect(v.replace(/\$\{[A-Z_]+\}/g, '')).not.toContain('$');
        }
      }
    }
  });

  it('contact points use defined templates and the policy tree routes every rule to a defined receiver', () => {
    const { contactPoints } = readYaml('alerting/contact-points.yaml');
    const { templates } = readYaml('alerting/templates.yaml');
    const { policies } = readYaml('alerting/policies.yaml');
    const defined = new Set<string>(templates.flatMap((t: Json) => [...(t.template as string).matchAll(/define "([^"]+)"/g)].map((m) => m[1])));
    const receivers = new Set<string>(contactPoints.map((c: Json) => c.name));
    for (const cp of contactPoints) {
      for (const rcv of cp.receivers) {
        expect(rcv.type).toBe('email');
        expect(rcv.settings.addresses).toBeTruthy();
        for (const v of [rcv.settings.subject, rcv.settings.message]) {
          for (const m of (v as string).matchAll(/template "([^"]+)"/g)) expect(defined.has(m[1]), m[1]).toBe(true);
        }
      }
    }
    const walk = (p: Json): void => {
      expect(receivers.has(p.receiver), p.receiver).toBe(true);
      (p.routes ?? []).forEach(walk);
    };
    policies.forEach(walk);
    // Low-balance alerts have their own route (per account, daily reminder).
    const routes: Json[] = policies[0].routes;
    const lowRule = allRules.find((r) => r.uid === 'submeter-low-balance');
    expect(routes.some((rt) => rt.object_matchers.some(([k, op, v]: string[]) => op === '=' && lowRule.labels[k] === v))).toBe(true);
  });

  it('the low-balance message names account, balance, threshold, hours left and links the tenant page', () => {
    const r = allRules.find((x) => x.uid === 'submeter-low-balance');
    const text = Object.values<string>(r.annotations).join('\n');
    for (const want of ['$labels.account', '$values.BALANCE', '$values.THRESHOLD', '$values.HOURS', '/d/submeter-tenant/', 'var-account=']) expect(text).toContain(want);
    const { templates } = readYaml('alerting/templates.yaml');
    expect(templates[0].template).toContain('.Annotations.tenant_page');
  });

  it('queries name only measurements, tags and fields from influx/schema.ts (or their own aliases)', () => {
    const measurements = new Set<string>(Object.values(M));
    const tags = new Set<string>(Object.values(T));
    const fields = new Set<string>((Object.values(F) as unknown[]).filter((v) => typeof v === 'string') as string[]);
    // Building registers every query with its shape.
    dashboards();
    rulesFile();
    expect(queryShapes().size).toBeGreaterThan(30);
    for (const q of queryShapes().keys()) {
      const aliases = new Set([...q.matchAll(/AS "([^"]+)"/g)].map((m) => m[1]));
      for (const [, name] of q.matchAll(/FROM "([^"]+)"/g)) expect(measurements.has(name), `${name} in ${q}`).toBe(true);
      for (const [, name] of q.matchAll(/\w+\("([^"]+)"/g)) expect(fields.has(name) || aliases.has(name), `${name} in ${q}`).toBe(true);
      // Drop time(...) first so the group-by list ends at fill( or a subquery's closing paren.
      for (const [, list] of q.replace(/time\([^)]*\)/g, 'time').matchAll(/GROUP BY ([^)]*?)(?: fill|\)|$)/g)) {
        for (const [, name] of list.matchAll(/"([^"]+)"/g)) expect(tags.has(name), `${name} in ${q}`).toBe(true);
      }
      for (const [, name] of q.matchAll(/"([^"]+)" (?:=~|=) /g)) expect(tags.has(name), `${name} in ${q}`).toBe(true);
    }
  });

  it('panels fit the 24-column grid without overlapping', () => {
    for (const b of boards) {
      const cells = new Map<string, string>();
      for (const p of b.panels) {
        const { x, y, w, h } = p.gridPos;
        expect(x + w, `${b.uid} / ${p.title}`).toBeLessThanOrEqual(24);
        for (let i = x; i < x + w; i++) {
          for (let j = y; j < y + h; j++) {
            const at = `${i},${j}`;
            expect(cells.get(at), `${b.uid}: "${p.title}" overlaps "${cells.get(at)}"`).toBeUndefined();
            cells.set(at, p.title);
          }
        }
      }
    }
  });

  it('message templates and annotation templates have balanced Go template blocks', () => {
    expect(templateBlocksProblem('{{ if .A }}x{{ else }}y{{ end }}')).toBeUndefined();
    expect(templateBlocksProblem('{{ if .A }}x')).toMatch(/unclosed/);
    const { templates } = readYaml('alerting/templates.yaml');
    for (const t of templates) expect(templateBlocksProblem(t.template), t.name).toBeUndefined();
    for (const r of allRules) for (const [k, v] of Object.entries<string>(r.annotations ?? {})) expect(templateBlocksProblem(v), `${r.uid} ${k}`).toBeUndefined();
  });
});
