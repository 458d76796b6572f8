import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSiteYaml, zoneOf } from '../core/index.ts';
import { eventLine } from '../influx/event-lines.ts';
import { demoSiteYaml } from '../sim/index.ts';
import { closeQueues, recordPayment } from '../workers/index.ts';
import { processBalance } from '../workers/balance.ts';
import { closeRelayQueues, processEnforcement } from '../workers/enforcement.ts';
import type { WorkerContext } from '../workers/context.ts';
import { processSettlement } from '../workers/settlement.ts';
import { rollupAll, testContext, testEnv } from '../workers/testing/env.ts';
import type { TestEnv } from '../workers/testing/env.ts';
import { readingLines, syntheticReadings } from '../workers/testing/month.ts';
import { buildApp } from './app.ts';
import { RedisTokenStore } from './auth/token-store.ts';
import { operations } from './openapi.ts';
import { SiteRef } from './site-ref.ts';

/**
 * A tenant sees only its own account (issue 10): on the demo site (43 accounts, a pool of all
 * of them and one of two), after the workers rolled up, settled and balanced two days, with
 * payments and events of other accounts, every response a tenant token gets (every route it
 * may use, every format: JSON, CSV, printable HTML in Chinese and English, every usage
 * interval) is scanned for every other account id of the site.
 */
const site = parseSiteYaml(demoSiteYaml(), 'demo.yaml');
const zone = zoneOf(site.timezone);
const ids = site.accounts.map((a) => a.id);

describe('tenant responses name no other account (demo site, real Redis and InfluxDB)', () => {
  let env: TestEnv;
  let ctx: WorkerContext;
  let server: Server;
  let base: string;
  const clock = { now: zone.midnight('2026-10-02') + 15 * 3_600_000 };
  const tokens: Record<string, string> = {};
  // A102 shares the lobby with A101 only; A205 is one of many in the elevators pool.
  const tenants = ['A102', 'A205'];

  beforeAll(async () => {
    env = await testEnv('privacy');
    ctx = testContext(env, [site], clock);
    const rows = syntheticReadings(site, '2026-10-01', 2, 15 * 60_000).filter((r) => r.time <= clock.now);
    await env.influx.write(readingLines(site.id, rows));
    await rollupAll(ctx, site.id);
    await processSettlement(ctx, { site: site.id });
    const pay = { site, influx: env.influx, redis: env.redis, keyPrefix: env.prefix };
    for (const [i, a] of ids.entries()) await recordPayment(pay, { account: a, fen: 100_00 + i, reference: `PAY-${a}`, time: zone.midnight('2026-10-01') + 3_600_000 + i * 60_000 });
    await env.influx.write(ids.map((a, i) => eventLine(site.id, { kind: 'low_balance', account: a, detail: `${a}: balance below its threshold`, value: 1, time: clock.now - 3_600_000 + i * 1000 })));
    await processBalance(ctx, { site: site.id });
    // The relay decisions on those balances (the demo site runs dry-run): A102's supply card
    // has a state to show.
    await processEnforcement(ctx, { site: site.id });
    const app = buildApp({ site: new SiteRef(site), influx: env.influx, redis: env.redis, keyPrefix: `${env.prefix}:api:`, workersKeyPrefix: env.prefix, now: () => clock.now, cacheMs: 0 });
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const store = new RedisTokenStore(env.redis, `${env.prefix}:api:`);
    for (const a of tenants) tokens[a] = (await store.create({ site: site.id, role: 'tenant', account: a })).token;
  }, 180_000);
  afterAll(async () => {
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    await closeRelayQueues(ctx);
    await closeQueues(ctx.queues);
    await env.cleanup();
  });

  /** Every request a tenant can make: each of its routes with every format and interval. */
  function requests(account: string): { op: string; path: string; tenant: boolean }[] {
    const variants: Record<string, string[]> = {
      getUsage: ['15m', '1h', '1d'].map((i) => `from=2026-10-01&to=2026-10-03&interval=${i}`),
      getAdvice: ['from=2026-09-01&to=2026-10-03'],
      getBill: ['', 'format=json', 'format=csv', 'format=html&lang=zh', 'format=html&lang=en'],
      getRelay: ['lang=zh', 'lang=en'],
    };
    const out: { op: string; path: string; tenant: boolean }[] = [];
    for (const o of operations()) {
      if (o.method !== 'get') continue;
      const path = o.path.replace('{account}', account).replace('{month}', '2026-10').replace('{order}', 'T0000000000000000');
      for (const q of variants[o.operationId] ?? ['']) out.push({ op: o.operationId, path: q ? `${path}?${q}` : path, tenant: o.roles.includes('tenant') });
    }
    return out;
  }

  for (const a of tenants) {
    it(`${a}: no other account id in any answer`, async () => {
      const others = ids.filter((x) => x !== a);
      let answered = 0;
      for (const r of requests(a)) {
        const res = await fetch(`${base}${r.path}`, { headers: { authorization: `Bearer ${tokens[a]}` } });
        const text = await res.text();
        // An order the tenant does not have answers 404 like any order of another account; the
        // final statement exists only for an account that moved out (none on the demo site).
        expect(r.op === 'getTopup' || r.op === 'getFinalStatement' ? [404] : [200, 403], `${r.path}: ${text.slice(0, 200)}`).toContain(res.status);
        if (res.status === 200) answered++;
        const leaked = others.filter((x) => new RegExp(`\\b${x}\\b`).test(text));
        expect(leaked, `${r.op} ${r.path}`).toEqual([]);
      }
      // Every route a tenant may use answered (me, live, usage x3, bills, bill x5, payments,
      // alerts, advice, and whatever tenant routes are added later), each variant once.
      expect(answered).toBe(requests(a).filter((r) => r.tenant && r.op !== 'getTopup' && r.op !== 'getFinalStatement').length);
      expect(answered).toBeGreaterThanOrEqual(14);
    });
  }

  it('the statement still shows the shares a tenant checks: pool totals, weights and the loss, as site figures', async () => {
    const res = await fetch(`${base}/api/v1/accounts/A102/bills/2026-10`, { headers: { authorization: `Bearer ${tokens.A102}` } });
    const st = (await res.json()) as { pools: { pool: string; basis: string; percent: string; cells: unknown[] }[]; loss: { master_kwh: string }; explain: { pools: { members: number }[] } };
    expect(st.pools.map((p) => [p.pool, p.basis])).toEqual([
      ['elevators', 'area'],
      ['lobby', 'consumption'],
    ]);
    expect(st.pools.every((p) => p.cells.length > 0)).toBe(true);
    expect(Number(st.loss.master_kwh)).toBeGreaterThan(0);
    expect(st.explain.pools.map((p) => p.members)).toEqual([43, 2]);
  });
});
