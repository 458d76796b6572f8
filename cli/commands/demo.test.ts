import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { InfluxV1 } from '../../influx/client.ts';
import { F, M } from '../../influx/schema.ts';
import { runPanelQueries } from '../../grafana/live-panels.ts';

const bin = fileURLToPath(new URL('../../bin/submeter.js', import.meta.url));
const root = fileURLToPath(new URL('../../', import.meta.url));
const db = `t_demo_${randomBytes(4).toString('hex')}`;
/** The demo's own directory for this --db (never the one a running `make demo` uses). */
const dir = join(root, '.run', 'demo', db);

function cli(args: string[]): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { cwd: root, timeout: 120_000 }, (err, stdout, stderr) => resolve({ stdout, stderr, code: err ? ((err as { code?: number }).code ?? 1) : 0 }));
  });
}

// The main job, small: every part of the platform runs for real (simulator on TCP and a PTY
// bus, collector, workers on Redis, API) and the live bills must equal the offline ones.
describe('submeter demo', () => {
  afterAll(async () => {
    await new InfluxV1({ url: process.env.SUBMETER_INFLUX_URL ?? 'http://127.0.0.1:8096', db }).dropDatabase();
    // The demo resets its keys at start, not at the end: the test removes them (SCAN, not KEYS).
    const redis = new Redis(process.env.SUBMETER_REDIS_URL ?? 'redis://127.0.0.1:6389');
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${db}*`, 'COUNT', 1000);
      if (keys.length) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
    redis.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs a small site end to end and the live bills equal the offline bill', async () => {
    const { stdout, code, stderr } = await new Promise<{ stdout: string; stderr: string; code: number | null }>((resolve) => {
      execFile(
        process.execPath,
        [bin, 'demo', '--tenants', '3', '--days', '2', '--minutes', '0', '--api-port', '0', '--tcp-port', '0', '--poll', '2', '--db', db],
        // Logs at info: they must go to the demo's log file, not into the human output.
        { cwd: root, timeout: 240_000, env: { ...process.env, SUBMETER_LOG_LEVEL: 'info' } },
        (err, stdout, stderr) => resolve({ stdout, stderr, code: err ? ((err as { code?: number }).code ?? 1) : 0 }),
      );
    });
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/site plaza-demo: 9 meters/);
    expect(stdout).toMatch(/backfilled [\d,]+ readings/);
    expect(stdout).toMatch(/offline `submeter bill` on the same readings and payments: total (\d+\.\d\d) CNY; live \1 CNY \(equal\)/);
    expect(stdout).toMatch(/manager token +smt_/);
    // Issue 14: a tenant tops up online; the simulated WeChat Pay notifies and the order is paid.
    expect(stdout).toMatch(/online top-up: tenant A101 .* orders 100\.00 CNY with WeChat Pay -> order T\w+, QR code weixin:\/\/wxpay\/bizpayurl\?pr=/);
    expect(stdout).toMatch(/API answered 204; order paid at /);
    // Issue 13: the collector runs the relay executor; the example site stays in dry-run and says so.
    expect(stdout).toMatch(/relay control +enforcement dry-run: the workers decide and log what they would do, nothing is sent/);
    expect(stdout).toMatch(/A102: power on \(T102 closed\), policy wants on/);
    expect(stdout).toMatch(/demo stopped/);
    // Issue 16: its own directory per --db, no JSON log lines on the terminal (they are in
    // the log file), an opening-balance column, and a low account that really is low.
    expect(existsSync(join(dir, 'site.yaml'))).toBe(true);
    expect(stdout).toContain(`directory ${dir}`);
    for (const line of `${stdout}\n${stderr}`.split('\n')) expect(line, 'a JSON log line in the human output').not.toMatch(/^\s*\{"level"/);
    expect(readFileSync(join(dir, 'demo.log'), 'utf8')).toMatch(/"msg":"api listening"/);
    expect(stdout).toMatch(/account +own kWh +common kWh +loss kWh +opening +amount +payments +closing/);
    expect(stdout).toMatch(/A104 left to run low/);

    // `token create --db`: a token in the demo API's store (the demo's prefixes and site).
    const made = await cli(['token', 'create', '--db', db, '--role', 'viewer', '--label', 'test']);
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toMatch(/^smt_/);
    const listed = await cli(['token', 'list', '--db', db]);
    expect(listed.stdout.split('\n').filter((l) => l.includes('"role":"manager"'))).toHaveLength(1); // the demo's own
    expect(listed.stdout).toContain('"label":"test"');
    // The demo site has a utility tariff: reconcile works on its files.
    const days = /submeter reconcile --site \S+ --readings \S+ --from (\S+) --to (\S+)/.exec(stdout);
    expect(days).not.toBeNull();
    const rec = await cli(['reconcile', '--site', join(dir, 'site.yaml'), '--readings', join(dir, 'readings.csv'), '--from', days![1], '--to', days![2]]);
    expect([0, 3], rec.stderr).toContain(rec.code);
    expect(Number(JSON.parse(rec.stdout).utility.amount)).toBeGreaterThan(0);

    // Issue 6: the dashboards' queries, expanded as Grafana expands them, on what the real
    // pipeline (simulator, collector, workers) wrote: every panel has data of its shape.
    const influx = new InfluxV1({ url: process.env.SUBMETER_INFLUX_URL ?? 'http://127.0.0.1:8096', db });
    const results = await runPanelQueries(influx, { nowMs: Date.now(), rangeMs: 2 * 86_400_000, variables: (d) => ({ site: 'plaza-demo', account: d === 'balances' ? '.*' : 'A101' }) });
    expect(results.length).toBeGreaterThan(20);
    // A month-to-date panel over settled days is empty until the month's first day is
    // settled (the 1st and, UTC against the site's zone, part of the 2nd): Grafana shows
    // "No data" then, as it should. Such a panel may be empty only while no settled day lies
    // in its range; every other panel must have data.
    const settledIn = async (r: (typeof results)[number]) => (await influx.query(`SELECT count(${F.masterWh}) FROM ${M.siteDay} WHERE time >= ${r.fromMs}ms AND time <= ${r.toMs}ms`)).some((x) => Number(x.count) > 0);
    for (const r of results) if (r.rows === 0 && !r.problem && r.timeFrom === 'now/M') expect(await settledIn(r), `${r.panel}: empty though a settled day lies in its range`).toBe(false);
    const bad = results.filter((r) => (r.rows === 0 && r.timeFrom !== 'now/M') || r.problem).map((r) => `${r.dashboard} / ${r.panel} ${r.refId}: ${r.problem ?? 'no data'}\n  ${r.query}`);
    expect(bad, bad.join('\n')).toEqual([]);
  }, 300_000);
});
