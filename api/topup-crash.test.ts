import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSiteYaml } from '../core/index.ts';
import { deliverUntilAcknowledged, WechatSim } from '../sim/providers/index.ts';
import { freePort } from '../test/private-servers.ts';
import { loadPayments } from '../workers/index.ts';
import { RedisTokenStore } from './auth/token-store.ts';
import { createFixture, SITE_FILE } from './testing/fixture.ts';
import type { Fixture } from './testing/fixture.ts';

// Issue 14: the API process dies after the provider's notification is verified and before
// it replies; the provider retries (to a restarted API) and the tenant is credited exactly once.

const PROC = fileURLToPath(new URL('./testing/topup-api-proc.ts', import.meta.url));
const siteYaml = `${readFileSync(SITE_FILE, 'utf8')}\ntopup:\n  providers: [wechat]\n`;
const site = parseSiteYaml(siteYaml, 'crash.yaml');

let fx: Fixture;
let sim: WechatSim;
let tenant: string;

function startApi(port: number, crashAt?: string): { proc: ChildProcess; ready: Promise<void> } {
  const cfg = { siteYaml, redisUrl: process.env.SUBMETER_REDIS_URL ?? 'redis://127.0.0.1:6389', influxUrl: process.env.SUBMETER_INFLUX_URL ?? 'http://127.0.0.1:8096', db: fx.influx.db, keyPrefix: fx.prefix, workersKeyPrefix: fx.workersPrefix, port, wechat: sim.credentials, crashAt };
  const proc = spawn(process.execPath, ['--import', 'tsx', PROC], { env: { ...process.env, SUBMETER_TEST_API: JSON.stringify(cfg), SUBMETER_LOG_LEVEL: 'silent' }, stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = new Promise<void>((resolve, reject) => {
    proc.stdout!.on('data', (b: Buffer) => b.toString().includes('ready') && resolve());
    proc.once('exit', (code, signal) => reject(new Error(`API process exited (${code ?? signal}) before it was ready`)));
  });
  return { proc, ready };
}

const exited = (p: ChildProcess) => (p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => p.once('exit', () => r())));

beforeAll(async () => {
  fx = await createFixture('topupcrash');
  sim = await new WechatSim().start();
  tenant = (await new RedisTokenStore(fx.redis, fx.prefix).create({ site: site.id, role: 'tenant', account: 'A103' })).token;
});
afterAll(async () => {
  await sim?.stop();
  await fx?.cleanup();
});

describe('the API killed between verifying a notification and replying', () => {
  for (const stage of ['verified', 'flipped', 'credited'] as const) {
    it(`killed once ${stage}: the provider's retry is answered and the tenant is credited exactly once`, async () => {
      const port = await freePort();
      let api = startApi(port, stage);
      await api.ready;
      const procs = [api.proc];
      try {
        const res = await fetch(`http://127.0.0.1:${port}/api/v1/accounts/A103/topups`, { method: 'POST', headers: { authorization: `Bearer ${tenant}`, 'content-type': 'application/json' }, body: JSON.stringify({ amount: '88.00', provider: 'wechat' }) });
        expect(res.status).toBe(201);
        const { order } = (await res.json()) as { order: string };
        const n = sim.pay(order);
        const attempts = await deliverUntilAcknowledged(n, {
          attempts: 8,
          intervalMs: 100,
          onAttempt: async (i) => {
            if (i === 0) return;
            // WeChat retries later; by then the API is back (without the crash point).
            if (api.proc.exitCode === null && api.proc.signalCode === null) return;
            api = startApi(port);
            procs.push(api.proc);
            await api.ready;
          },
        });
        expect(attempts[0].status).toBe(0); // the connection died with the process: no reply
        expect(procs[0].signalCode).toBe('SIGKILL');
        expect(attempts.at(-1)!.status).toBe(204);
        const reference = `wechat:${sim.order(order).transaction}`;
        const lines = (await loadPayments(fx.influx, site.id)).filter((p) => p.reference === reference);
        expect(lines).toEqual([{ account: 'A103', reference, fen: 8800, time: sim.order(order).paidAt }]);
        // Further retries change nothing.
        expect((await deliverUntilAcknowledged(n, { attempts: 1 }))[0].status).toBe(204);
        expect((await loadPayments(fx.influx, site.id)).filter((p) => p.reference === reference)).toHaveLength(1);
      } finally {
        for (const p of procs) {
          p.kill('SIGKILL');
          await exited(p);
        }
      }
    }, 60_000);
  }
});
