import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
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
 * SIGKILL the process that runs a relay command between sending the trip and reading it
 * back, then restart it: exactly one effective command reaches the meter, the state
 * converges (the command completes as done, the relay is open) and the audit trail has
 * every step. The simulated relay's contacts are held after the trip (a trip delay longer
 * than the test) and the test lets them move at a chosen moment, so each case takes one
 * path of the executor, whatever the machine's load:
 * - the contacts moved while the executor was dead: the restarted one reads them open
 *   first ("in the target state after the earlier send");
 * - they are still moving when it comes back: it reads them closed, does not send again
 *   (the meter had accepted) and waits in its read-back until they open.
 * (Before, a real 2.5 s trip delay raced the restart: under load either path ran, and the
 * test expected the first.)
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SECRET = '02123456';
const SITE = (pty: string) => `
site: { id: relay-crash, timezone: Asia/Shanghai }
meters:
  - { id: M0, role: master }
  - { id: T1, role: tenant, account: A1, relay: plain, connection: { protocol: dlt645, port: ${pty}, parity: none, address: "000000000021", timeout_ms: 3000 } }
  - { id: T2, role: tenant, account: A2, relay: plain, connection: { protocol: dlt645, port: ${pty}, parity: none, address: "000000000022", timeout_ms: 3000 } }
accounts:
  - { id: A1, name: Shop 1, tariff: t }
  - { id: A2, name: Shop 2, tariff: t }
tariffs:
  - { id: t, versions: [{ effective_from: 2026-01-01, prices: { flat: "1.000000" }, schedule: [{ periods: [{ from: "00:00", to: "24:00", period: flat }] }] }] }
enforcement:
  mode: on
  readback: 60s
  protected_windows: []
`;
/** Contacts held after a command: longer than any case, so only finishMove() moves them. */
const HELD_MS = 600_000;

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
  await killAll();
  await sim?.stop();
  await pty?.close();
  await env?.cleanup();
});

async function killAll(): Promise<void> {
  for (const c of children.splice(0)) {
    if (c.exitCode !== null || c.signalCode !== null) continue;
    const gone = new Promise((res) => c.once('exit', res));
    c.kill('SIGKILL');
    await gone;
  }
}

/**
 * The workers decide a trip for `account` (balance exhausted, fresh data, no protected
 * window); an executor process takes the job and is SIGKILLed as soon as the meter's
 * acceptance is recorded. Returns the command id and what it needs afterwards.
 */
async function tripThenKill(account: string, meter: string) {
  const yaml = SITE(pty.a);
  const site = parseSiteYaml(yaml);
  const clock = { now: Date.now() };
  const ctx = testContext(env, [site], clock);
  const store = new RelayStore(env.redis, site.id, env.prefix);
  const relay = sim.meter(meter).relay;
  relay.delayMs = HELD_MS;
  const fresh = async () => {
    clock.now = Date.now();
    await env.influx.write([
      new Point('balance').tag('site', site.id).tag('account', account).intField('balance_fen', -100).timestamp(clock.now).toLineProtocol()!,
      healthLine(site.id, { meter, time: clock.now, ok: true, errors: 0, consecutiveErrors: 0, lastSeen: clock.now }),
      collectorLine(site.id, { host: 'h', time: clock.now, spoolBytes: 0, spoolSamples: 0, spoolFull: false, written: 0, refused: 0 }),
    ]);
  };
  await fresh();
  const since = clock.now;
  const r = await processEnforcement(ctx, { site: site.id });
  expect(r.enqueued).toHaveLength(1);
  const id = r.enqueued[0];
  expect((await store.command(id))?.account).toBe(account);

  const first = await executorProcess(yaml);
  await until(() => store.command(id), (c) => c?.meters[meter]?.reply === 'accepted', 20_000, 'the trip accepted');
  const gone = new Promise((res) => first.once('exit', res));
  first.kill('SIGKILL');
  await gone;
  const mid = (await store.command(id))!;
  expect(mid.status).toBe('running');
  expect(mid.meters[meter]).toMatchObject({ status: 'sent', reply: 'accepted', sends: 1 });
  expect(relay.controlFrames).toBe(1);
  // Every step recorded so far is audited, wherever the kill landed (the reply's record and
  // its entry used to be two writes: a kill between them lost the entry for good).
  const trail = (await store.auditTrail(100, account)).reverse().filter((e) => e.time >= since);
  expect(trail.map((e) => e.kind)).toEqual(['decision', 'command', 'send', 'reply']);
  // Accepted, and the contacts have not moved: the command state is trip, power still on.
  expect(relay.state()).toMatchObject({ closed: true, commandTrip: true });
  return { yaml, site, ctx, store, relay, id, fresh, since };
}

/** The end state every case must reach: one command, done, open, a complete trail; the workers see it converged. */
async function expectConverged(t: Awaited<ReturnType<typeof tripThenKill>>, account: string, meter: string): Promise<string> {
  const { ctx, store, relay, id, site } = t;
  const done = (await until(() => store.command(id), (c) => c?.status === 'done', 30_000, 'the command done after the restart'))!;
  expect(done.meters[meter]).toMatchObject({ status: 'done', sends: 1, after: { state: 'open', raw: 0x50 } });
  expect(relay.controlFrames).toBe(1);
  expect(relay.switches).toBe(1);
  expect(relay.state().closed).toBe(false);

  // This case's entries (an earlier case's cycle may have noted this account's lack of a balance).
  const trail = (await store.auditTrail(100, account)).reverse().filter((e) => e.time >= t.since);
  expect(trail.map((e) => e.kind)).toEqual(['decision', 'command', 'send', 'reply', 'readback']);
  expect(trail.find((e) => e.kind === 'send')).toMatchObject({ balanceFen: -100, reason: 'balance-exhausted', before: { state: 'closed', raw: 0 } });
  expect(trail.at(-1)).toMatchObject({ kind: 'readback', before: { state: 'closed', raw: 0 }, after: { state: 'open', raw: 0x50 } });

  // The workers see the converged state on their next cycle: no alarm, nothing pending.
  await t.fresh();
  expect((await processEnforcement(ctx, { site: site.id })).enqueued).toEqual([]);
  const row = await env.influx.query(`SELECT last(mismatch) AS m, last(state) AS state, last(pending) AS pending FROM relay WHERE site = 'relay-crash' AND account = '${account}'`);
  expect(row[0]).toMatchObject({ m: 0, state: 0, pending: 0 });
  await closeRelayQueues(ctx);
  await closeQueues(ctx.queues);
  return trail.at(-1)!.detail ?? '';
}

describe('relay command across a SIGKILL of its executor', () => {
  afterEach(killAll);

  it('the contacts moved while the executor was dead: the restarted one finds them open and sends nothing', async () => {
    const t = await tripThenKill('A1', 'T1');
    expect(t.relay.finishMove()).toBe(true);
    await executorProcess(t.yaml);
    expect(await expectConverged(t, 'A1', 'T1')).toMatch(/^in the target state after the earlier send: relay open/);
  }, 90_000);

  it('the contacts still moving when the executor comes back: it reads them closed, sends nothing, waits for them', async () => {
    const t = await tripThenKill('A2', 'T2');
    // Count the meter's status reads from now on (only the restarted executor reads).
    let reads = 0;
    const state = t.relay.state.bind(t.relay);
    t.relay.state = () => {
      reads++;
      return state();
    };
    try {
      await executorProcess(t.yaml);
      // Its start-up status poll reads T2 once (twice with a retry); the rest are the
      // resumed job's: the read before deciding, then its read-back wait.
      await until(async () => reads, (n) => n >= 6, 30_000, 'the resumed job reading back');
      expect(await t.store.command(t.id)).toMatchObject({ status: 'running', meters: { T2: { status: 'sent', sends: 1 } } });
      expect(t.relay.controlFrames).toBe(1);
      expect(t.relay.finishMove()).toBe(true);
    } finally {
      t.relay.state = state;
    }
    expect(await expectConverged(t, 'A2', 'T2')).toMatch(/^in the target state after the earlier send: relay open/);
  }, 90_000);
});
