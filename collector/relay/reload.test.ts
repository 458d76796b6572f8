import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
import { REDIS_URL, testContext, testEnv } from '../../workers/testing/env.ts';
import type { TestEnv } from '../../workers/testing/env.ts';
import { startCollector } from '../collector.ts';
import { loadRelaySecrets } from './secrets.ts';

/**
 * A meter replaced in place by one at another address (billing.md section 11 rule 5): once
 * the site file names the new address, a relay command reaches the new meter, with no
 * restart of the collector. (The relay executor used to keep the site and meters it was
 * started with: its trip went to the old address, here still answering on the bus.)
 */

const SECRET = '02123456';
const TARIFF = `tariffs:
  - { id: t, versions: [{ effective_from: 2026-01-01, prices: { flat: "1.000000" }, schedule: [{ periods: [{ from: "00:00", to: "24:00", period: flat }] }] }] }`;
const conn = (pty: string, address: string) => `{ protocol: dlt645, port: ${pty}, parity: none, address: "${address}", timeout_ms: 3000 }`;
/** The site as the collector and workers see it; `change` is T1's meter_changes block. */
const SITE = (pty: string, change = '') => `
site: { id: relay-reload, timezone: Asia/Shanghai }
meters:
  - { id: M0, role: master }
  - id: T1
    role: tenant
    account: A1
    relay: plain
    connection: ${conn(pty, '000000000021')}${change}
accounts:
  - { id: A1, name: Shop 1, tariff: t }
${TARIFF}
enforcement:
  mode: on
  readback: 60s
  protected_windows: []
`;
/** The bus: the old meter still answers at its address, the new one at another. */
const BUS = (pty: string) => `
site: { id: relay-reload-bus, timezone: Asia/Shanghai }
meters:
  - { id: M0, role: master }
  - { id: OLD, role: tenant, account: A1, relay: plain, connection: ${conn(pty, '000000000021')} }
  - { id: NEW, role: tenant, account: A2, relay: plain, connection: ${conn(pty, '000000000031')} }
accounts:
  - { id: A1, tariff: t }
  - { id: A2, tariff: t }
${TARIFF}
`;

let pty: PtyPair;
let sim: Simulator;
let env: TestEnv;
let dir: string;

beforeAll(async () => {
  pty = await openPtyPair();
  const bus = parseSiteYaml(BUS(pty.b));
  sim = await startSimulator({ site: bus, tcp: false, serial: pty.b, serialProtocols: [dlt645Handler({ site: bus, control: { password: SECRET } })] });
  env = await testEnv('relayreload');
  dir = mkdtempSync(join(tmpdir(), 'submeter-relay-reload-'));
});

afterAll(async () => {
  await sim?.stop();
  await pty?.close();
  await env?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function until<T>(f: () => Promise<T>, ok: (v: T) => boolean, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('a relay meter replaced by one at another address', () => {
  it('after the site file names the new address, the trip reaches the new meter, not the old one', async () => {
    const file = join(dir, 'site.yaml');
    writeFileSync(file, SITE(pty.a));
    const collector = await startCollector({
      site: parseSiteYaml(SITE(pty.a)),
      siteFile: file,
      watchSiteFile: false,
      spoolDir: join(dir, 'spool'),
      influx: env.influx,
      meters: [],
      timeSyncAt: false,
      stateIntervalMs: 60_000,
      relay: { redisUrl: REDIS_URL, queuePrefix: env.prefix, keyPrefix: env.prefix, secrets: loadRelaySecrets({ SUBMETER_DLT645_PASSWORD: SECRET }), readbackPollMs: 100, statusEveryMs: 3_600_000 },
    });
    const clock = { now: Date.now() };
    try {
      // The swap, entered in the site file a minute ago: T1's position now holds NEW.
      const at = new Date(Date.now() - 60_000).toISOString();
      const changed = SITE(pty.a, `\n    meter_changes:\n      - { at: "${at}", final_kwh: 1, initial_kwh: 0, address: "000000000031", serial: NEW-0031 }`);
      writeFileSync(file, changed);
      expect((await collector.reload()).outcome).toBe('applied');

      // The workers (on the same site file) decide a trip for A1: balance below zero, fresh data.
      const site = parseSiteYaml(changed);
      const ctx = testContext(env, [site], clock);
      clock.now = Date.now();
      await env.influx.write([
        new Point('balance').tag('site', site.id).tag('account', 'A1').intField('balance_fen', -100).timestamp(clock.now).toLineProtocol()!,
        healthLine(site.id, { meter: 'T1', time: clock.now, ok: true, errors: 0, consecutiveErrors: 0, lastSeen: clock.now }),
        collectorLine(site.id, { host: 'h', time: clock.now, spoolBytes: 0, spoolSamples: 0, spoolFull: false, written: 0, refused: 0 }),
      ]);
      const r = await processEnforcement(ctx, { site: site.id });
      expect(r.enqueued).toHaveLength(1);
      const store = new RelayStore(env.redis, site.id, env.prefix);
      const done = await until(() => store.command(r.enqueued[0]), (c) => c?.status !== undefined && !['queued', 'running'].includes(c.status), 40_000, 'the trip finished');
      expect(done).toMatchObject({ status: 'done', meters: { T1: { status: 'done', after: { state: 'open' } } } });
      expect(sim.meter('NEW').relay.controlFrames).toBe(1);
      expect(sim.meter('NEW').relay.state().closed).toBe(false);
      expect(sim.meter('OLD').relay.controlFrames).toBe(0);
      expect(sim.meter('OLD').relay.state().closed).toBe(true);
      await closeRelayQueues(ctx);
      await closeQueues(ctx.queues);
    } finally {
      await collector.stop();
    }
  }, 90_000);
});
