import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSiteYaml } from '../../core/index.ts';
import type { Site } from '../../core/index.ts';
import { loadRelaySecrets, startCollector } from '../../collector/index.ts';
import type { Collector } from '../../collector/index.ts';
import { F, M, T } from '../../influx/schema.ts';
import { RelayStore } from '../../lib/relay-store.ts';
import { WechatPay } from '../../lib/topup/index.ts';
import { dlt645Handler, startSimulator, WechatSim } from '../../sim/index.ts';
import type { Simulator } from '../../sim/index.ts';
import { openPtyPair } from '../../sim/test-support.ts';
import type { PtyPair } from '../../sim/test-support.ts';
import { startWorkers } from '../../workers/index.ts';
import type { RunningWorkers } from '../../workers/index.ts';
import { REDIS_URL, testEnv } from '../../workers/testing/env.ts';
import type { TestEnv } from '../../workers/testing/env.ts';
import { buildApp } from '../app.ts';
import { RedisTokenStore } from '../auth/token-store.ts';
import { SiteRef } from '../site-ref.ts';

/**
 * The whole prepaid loop on one settable clock, every part real (issues 11, 13, 14): the
 * simulator serving a DL/T 645 meter with a load relay on a socat PTY, the collector polling
 * it through its spool with the relay executor (`collect --relay`), the workers on their
 * BullMQ schedulers (rollup, balance, enforcement, ...), the API with a simulated WeChat
 * Pay, real Redis and InfluxDB on the test's own database and prefixes.
 *
 * Time is simulated: the clock moves only when the test moves it, so an hour of use takes
 * a few steps and the night and weekend windows never get in the way.
 */
export interface PrepaidWorld {
  readonly site: Site;
  readonly clock: { now: number };
  readonly env: TestEnv;
  readonly sim: Simulator;
  readonly pay: WechatSim;
  readonly store: RelayStore;
  readonly workers: RunningWorkers;
  readonly collector: Collector;
  readonly base: string;
  readonly managerToken: string;
  /** The balance worker's last point of an account (fen and time), if any. */
  balance(account: string): Promise<{ fen: number; time: number } | undefined>;
  /** Waits (real time) until `check` returns a value other than undefined/false. */
  until<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs?: number): Promise<T>;
  /** A one-time login link for an account, as the manager page asks for it. */
  loginLink(account: string): Promise<string>;
  close(): Promise<void>;
}

export interface PrepaidWorldOptions {
  readonly tag: string;
  /** The site file; `PTY` stands for the collector's serial device. */
  readonly siteYaml: string;
  readonly start: number;
  /** The meters' DL/T 645 control password, and the collector's (SUBMETER_DLT645_PASSWORD). */
  readonly secret: string;
  /** Cadence of the workers' rollup, balance and enforcement (real ms). @defaultValue 250 */
  readonly cycleMs?: number;
}

export async function prepaidWorld(o: PrepaidWorldOptions): Promise<PrepaidWorld> {
  const clock = { now: o.start };
  const now = () => clock.now;
  const stops: (() => Promise<unknown>)[] = [];
  const close = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    stops.length = 0;
  };
  try {
    const pty: PtyPair = await openPtyPair();
    stops.push(() => pty.close());
    const site = parseSiteYaml(o.siteYaml.replaceAll('PTY', pty.a), 'prepaid-world.yaml');
    const env = await testEnv(o.tag);
    stops.push(() => env.cleanup());
    const sim = await startSimulator({ site, tcp: false, serial: pty.b, now, epoch: o.start - 86_400_000, serialProtocols: [dlt645Handler({ site, control: { password: o.secret } })] });
    stops.push(() => sim.stop());
    const pay = await new WechatSim({ now }).start();
    stops.push(() => pay.stop());
    const providers = new Map([['wechat' as const, new WechatPay(pay.credentials)]]);
    const cycleMs = o.cycleMs ?? 250;
    const workers = await startWorkers({
      sites: [site],
      redisUrl: REDIS_URL,
      influx: env.influx,
      queuePrefix: env.prefix,
      keyPrefix: env.prefix,
      now,
      schedule: { rollupEveryMs: cycleMs, balanceEveryMs: cycleMs },
      topupProviders: new Map([[site.id, providers]]),
    });
    stops.push(() => workers.close());
    const spoolDir = mkdtempSync(join(tmpdir(), 'submeter-prepaid-'));
    stops.push(async () => rmSync(spoolDir, { recursive: true, force: true }));
    const collector = await startCollector({
      site,
      spoolDir,
      influx: env.influx,
      pollIntervalMs: 200,
      stateIntervalMs: 500,
      forwarder: { idleMs: 100, lingerMs: 10 },
      now,
      relay: { redisUrl: REDIS_URL, queuePrefix: env.prefix, keyPrefix: env.prefix, secrets: loadRelaySecrets({ SUBMETER_DLT645_PASSWORD: o.secret }), readbackPollMs: 100 },
    });
    stops.push(() => collector.stop());
    const apiPrefix = `${env.prefix}:api:`;
    const app = buildApp({ site: new SiteRef(site), influx: env.influx, redis: env.redis, keyPrefix: apiPrefix, workersKeyPrefix: env.prefix, now, topupProviders: providers });
    const server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    stops.push(async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
    });
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const managerToken = (await new RedisTokenStore(env.redis, apiPrefix).create({ site: site.id, role: 'manager' })).token;

    const world: PrepaidWorld = {
      site,
      clock,
      env,
      sim,
      pay,
      store: new RelayStore(env.redis, site.id, env.prefix),
      workers,
      collector,
      base,
      managerToken,
      async balance(account) {
        const rows = await env.influx.query(`SELECT ${F.balanceFen} FROM ${M.balance} WHERE ${T.site} = '${site.id}' AND ${T.account} = '${account}' ORDER BY time DESC LIMIT 1`);
        return rows[0] ? { fen: Number(rows[0][F.balanceFen]), time: Number(rows[0].time) } : undefined;
      },
      async until(what, check, timeoutMs = 20_000) {
        const end = Date.now() + timeoutMs;
        for (;;) {
          const v = await check();
          if (v !== undefined && v !== false) return v as never;
          if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
          await new Promise((r) => setTimeout(r, 50));
        }
      },
      async loginLink(account) {
        const r = await fetch(`${base}/api/v1/accounts/${account}/login-links`, { method: 'POST', headers: { authorization: `Bearer ${managerToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ base_url: `${base}/` }) });
        if (r.status !== 201) throw new Error(`login link: ${r.status} ${await r.text()}`);
        return ((await r.json()) as { url: string }).url;
      },
      close,
    };
    return world;
  } catch (err) {
    await close();
    throw err;
  }
}
