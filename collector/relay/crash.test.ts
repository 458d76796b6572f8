import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Point } from '@influxdata/influxdb-client';
import { parseSiteYaml } from '../../core/index.ts';
import { collectorLine, healthLine } from '../../influx/lines.ts';
import { RelayStore } from '../../lib/relay-store.ts';
import { dlt645Handler } from '../../sim/dlt645/handler.ts';
import { startSimulator } from '../../sim/simulator.ts';
import type { Simulator } from '../../sim/simulator.ts';
import { openPtyPair } from '../../sim/test-support.ts';
import type { PtyPair } from '../../sim/test-support.ts';
import { closeRelayQueues, processEnforcement } from '../../workers/enforcement.ts';
import { closeQueues } from '../../workers/queues.ts';
import { INFLUX_URL, REDIS_URL, testContext, testEnv } from '../../workers/testing/env.ts';
import type { TestEnv } from '../../workers/testing/env.ts';

/**
 * SIGKILL the process that runs the relay command between sending the trip and reading
 * it back, then restart it: exactly one effective command reaches the meter, the state
 * converges (the command completes as done, the relay is open) and the audit trail has
 * every step. The simulated meter's relay takes 2.5 s to move (a trip delay), so the
 * executor is inside its read-back window when it dies.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SECRET = '02123456';
const SITE = (pty: string) => `
site: { id: relay-crash, timezone: Asia/Shanghai }
meters:
  - { id: M0, role: master }
  - { id: T1, role: tenant, account: A1, relay: plain, connection: { protocol: dlt645, port: ${pty}, parity: none, address: "000000000021", timeout_ms: 3000 } }
accounts:
  - { id: A1, name: Shop 1, tariff: t }
tariffs:
  - { id: t, versions: [{ effective_from: 2026-01-01, prices: { flat: "1.000000" }, schedule: [{ periods: [{ from: "00:00", to: "24:00", period: flat }] }] }] }
enforcement:
  mode: on
  readback: 20s
  protected_windows: []
`;

let pty: PtyPair;
let sim: Simulator;
let env: TestEnv;
const children: ChildProcess[] = [];

function executorProcess(siteYaml: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'collector/test-support/relay-executor-proc.ts'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      SUBMETER_LOG_LEVEL: 'warn',
      SUBMETER_TEST_RELAY: JSON.stringify({ siteYaml, redisUrl: REDIS_URL, influxUrl: INFLUX_URL, db: env.influx.db, queuePrefix: env.prefix, keyPrefix: env.prefix, secret: SECRET, lockDurationMs: 2000 }),
    },
  });
  children.push(child);
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`executor process not ready: ${err}`)), 20_000);
    child.stdout!.on('data', (c: Buffer) => {
      if (c.toString().includes('ready')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.once('exit', (code) => reject(new Error(`executor process exited ${code}: ${err}`)));
  });
}

async function until<T>(f: () => Promise<T>, ok: (v: T) => boolean, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  pty = await openPtyPair();
  const site = parseSiteYaml(SITE(pty.a));
  sim = await startSimulator({ site, tcp: false, serial: pty.b, serialProtocols: [dlt645Handler({ site, control: { password: SECRET } })] });
  env = await testEnv('relaycrash');
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await sim?.stop();
  await pty?.close();
  await env?.cleanup();
});

describe('relay command across a SIGKILL of its executor', () => {
  it('exactly one effective command, the state converges, the audit trail is complete', async () => {
    const yaml = SITE(pty.a);
    const site = parseSiteYaml(yaml);
    const clock = { now: Date.now() };
    const ctx = testContext(env, [site], clock);
    const store = new RelayStore(env.redis, site.id, env.prefix);
    sim.meter('T1').relay.delayMs = 2500;

    // The workers decide: balance exhausted, fresh data, no protected window -> trip.
    await env.influx.write([
      new Point('balance').tag('site', site.id).tag('account', 'A1').intField('balance_fen', -100).timestamp(clock.now).toLineProtocol()!,
      healthLine(site.id, { meter: 'T1', time: clock.now, ok: true, errors: 0, consecutiveErrors: 0, lastSeen: clock.now }),
      collectorLine(site.id, { host: 'h', time: clock.now, spoolBytes: 0, spoolSamples: 0, spoolFull: false, written: 0, refused: 0 }),
    ]);
    const r = await processEnforcement(ctx, { site: site.id });
    expect(r.enqueued).toHaveLength(1);
    const id = r.enqueued[0];

    // The collector executes: killed as soon as the meter's acceptance is recorded.
    const first = await executorProcess(yaml);
    await until(() => store.command(id), (c) => c?.meters.T1?.reply === 'accepted', 20_000, 'the trip accepted');
    first.kill('SIGKILL');
    await new Promise((res) => first.once('exit', res));
    const mid = (await store.command(id))!;
    expect(mid.status).toBe('running');
    expect(mid.meters.T1).toMatchObject({ status: 'sent', reply: 'accepted', sends: 1 });
    expect(sim.meter('T1').relay.controlFrames).toBe(1);

    // Restarted, the executor takes the stalled job over and reads back: no second command.
    await executorProcess(yaml);
    const done = (await until(() => store.command(id), (c) => c?.status === 'done', 30_000, 'the command done after the restart'))!;
    expect(done.meters.T1).toMatchObject({ status: 'done', sends: 1, after: { state: 'open', raw: 0x50 } });
    expect(sim.meter('T1').relay.controlFrames).toBe(1);
    expect(sim.meter('T1').relay.switches).toBe(1);
    expect(sim.meter('T1').relay.state().closed).toBe(false);

    const trail = (await store.auditTrail(100, 'A1')).reverse();
    expect(trail.map((e) => e.kind)).toEqual(['decision', 'command', 'send', 'reply', 'readback']);
    expect(trail.find((e) => e.kind === 'send')).toMatchObject({ balanceFen: -100, reason: 'balance-exhausted', before: { state: 'closed', raw: 0 } });
    expect(trail.at(-1)).toMatchObject({ kind: 'readback', before: { state: 'closed', raw: 0 }, after: { state: 'open', raw: 0x50 } });
    expect(trail.at(-1)!.detail).toMatch(/in the target state after the earlier send/);

    // The workers see the converged state on their next cycle: no alarm, nothing pending.
    clock.now = Date.now();
    await env.influx.write([
      new Point('balance').tag('site', site.id).tag('account', 'A1').intField('balance_fen', -100).timestamp(clock.now).toLineProtocol()!,
      healthLine(site.id, { meter: 'T1', time: clock.now, ok: true, errors: 0, consecutiveErrors: 0, lastSeen: clock.now }),
      collectorLine(site.id, { host: 'h', time: clock.now, spoolBytes: 0, spoolSamples: 0, spoolFull: false, written: 0, refused: 0 }),
    ]);
    expect((await processEnforcement(ctx, { site: site.id })).enqueued).toEqual([]);
    const row = await env.influx.query(`SELECT last(mismatch) AS m, last(state) AS state, last(pending) AS pending FROM relay WHERE site = 'relay-crash'`);
    expect(row[0]).toMatchObject({ m: 0, state: 0, pending: 0 });
    await closeRelayQueues(ctx);
    await closeQueues(ctx.queues);
  }, 90_000);
});
