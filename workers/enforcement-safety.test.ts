import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSiteYaml } from '../core/index.ts';
import { RelayStore } from '../lib/relay-store.ts';
import { processEnforcement } from './enforcement.ts';
import { testContext } from './testing/env.ts';
import { relayWorld } from './testing/relay-world.ts';
import type { RelayWorld } from './testing/relay-world.ts';

/**
 * The safety rules over a whole simulated day, in `on` mode, against the simulator: a
 * protected account (保电) and an account whose data went stale (the collector stopped)
 * are never tripped, while an unprotected account with fresh data is (the data was good
 * enough to trip on); and in `dry-run` nothing at all reaches the wire.
 */

const HOUR = 3_600_000;
const local = (s: string) => Date.parse(`${s}+08:00`);
const SECRET = '02123456';

const SITE = (id: string, mode: string) => `
site: { id: ${id}, timezone: Asia/Shanghai }
meters:
  - { id: M0, role: master }
  - { id: T3, role: tenant, account: A3, relay: plain, connection: { protocol: dlt645, port: PTY, parity: none, address: "000000000013", timeout_ms: 3000 } }
  - { id: T4, role: tenant, account: A4, relay: plain, connection: { protocol: modbus-tcp, host: 127.0.0.1, port: TCP_PORT, unit: 4, map: dds238, timeout_ms: 3000 } }
accounts:
  - { id: A3, name: Ward 3, tariff: t }
  - { id: A4, name: Shop 4, tariff: t }
tariffs:
  - { id: t, versions: [{ effective_from: 2026-01-01, prices: { flat: "1.000000" }, schedule: [{ periods: [{ from: "00:00", to: "24:00", period: flat }] }] }] }
enforcement:
  mode: ${mode}
  readback: 3s
  max_data_age: 15m
  protected_windows: []
  accounts:
    A3: { protected: true }
`;

describe('safety over a simulated day (on mode)', () => {
  let w: RelayWorld;
  const start = local('2026-11-18T00:00:00'); // a Wednesday
  beforeAll(async () => {
    w = await relayWorld({ tag: 'relaysafe', siteYaml: SITE('relay-safe', 'on'), start, passwords: { T3: SECRET }, secret: SECRET });
    await w.startExecutor();
  });
  afterAll(async () => {
    await w?.close();
  });
  const frames = (id: string) => w.sim.meter(id).relay.controlFrames;

  it('collector stopped (stale data): neither the protected nor the other account is tripped, all day', async () => {
    // The collector's last state and the meters' last reads are an hour old at the start.
    await w.fresh(start - HOUR);
    for (let t = start; t < start + 24 * HOUR; t += HOUR / 2) {
      w.clock.now = t;
      // The balance worker keeps running on the ledger: both accounts deep in debt.
      await w.balance('A3', -20_000, 0);
      await w.balance('A4', -20_000, 0);
      const r = await w.cycle();
      expect(r.enqueued, new Date(t).toISOString()).toEqual([]);
      expect(r.decisions.A3).toMatchObject({ wanted: 'closed', reason: 'protected-account' });
      expect(r.decisions.A4).toMatchObject({ wanted: 'closed', deferred: { reason: 'stale-data' } });
    }
    expect(frames('T3')).toBe(0);
    expect(frames('T4')).toBe(0);
    const why = (await w.store.auditTrail(20, 'A4')).find((e) => e.kind === 'deferred');
    expect(why?.detail).toMatch(/no trip on stale data: .*collector silent/);
  });

  it('collector running (fresh data): the protected account is still never tripped; the other one is', async () => {
    const day2 = start + 24 * HOUR;
    let tripped = 0;
    for (let t = day2; t < day2 + 24 * HOUR; t += HOUR / 2) {
      w.clock.now = t;
      await w.fresh();
      await w.balance('A3', -20_000, 0);
      await w.balance('A4', -20_000, 0);
      const r = await w.cycle();
      expect(r.decisions.A3, new Date(t).toISOString()).toMatchObject({ wanted: 'closed', reason: 'protected-account' });
      for (const id of r.enqueued) {
        expect(id).toMatch(/\|A4\|open\|/);
        expect(await w.command(id)).toMatchObject({ status: 'done' });
        tripped++;
      }
    }
    expect(tripped).toBe(1);
    expect(frames('T3')).toBe(0);
    expect(w.sim.meter('T3').relay.state().closed).toBe(true);
    expect(w.sim.meter('T4').relay.state().closed).toBe(false);
    // The protected account's debt is not forgiven: it is the balance the tenant sees.
    expect((await w.store.wanted()).get('A3')).toMatchObject({ state: 'closed', balanceFen: -20_000, deferred: { reason: 'protected-account' } });
  });

  it('dry-run decides and logs, and sends nothing on the wire (the simulator counts control frames)', async () => {
    const dry = parseSiteYaml(SITE('relay-dry', 'dry-run').replaceAll('PTY', '/dev/null').replaceAll('TCP_PORT', '5020'));
    const clock = { now: w.clock.now + HOUR };
    const ctx = testContext(w.env, [dry], clock);
    const store = new RelayStore(w.env.redis, 'relay-dry', w.env.prefix);
    const before = { T3: frames('T3'), T4: frames('T4') };
    for (let i = 0; i < 6; i++) {
      clock.now += HOUR / 2;
      const { Point } = await import('@influxdata/influxdb-client');
      const lines = ['A3', 'A4'].map((a) => new Point('balance').tag('site', 'relay-dry').tag('account', a).intField('balance_fen', -20_000).timestamp(clock.now).toLineProtocol()!);
      lines.push(new Point('collector').tag('site', 'relay-dry').tag('host', 'x').intField('spool_samples', 0).booleanField('spool_full', false).timestamp(clock.now).toLineProtocol()!);
      for (const m of ['T3', 'T4']) lines.push(new Point('meter_health').tag('site', 'relay-dry').tag('meter', m).intField('last_seen', clock.now).intField('consecutive_errors', 0).timestamp(clock.now).toLineProtocol()!);
      await w.env.influx.write(lines);
      const r = await processEnforcement(ctx, { site: 'relay-dry' });
      expect(r.enqueued).toEqual([]);
      expect(r.decisions.A4).toMatchObject({ wanted: 'open', reason: i === 0 ? 'balance-exhausted' : 'below-reconnect' });
    }
    await new Promise((res) => setTimeout(res, 500));
    expect({ T3: frames('T3'), T4: frames('T4') }).toEqual(before);
    expect(await store.commands()).toEqual(new Map());
    const { openRelayQueue } = await import('./queues.ts');
    const q = openRelayQueue(w.env.redis, 'relay-dry', w.env.prefix);
    expect(await q.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed')).toMatchObject({ waiting: 0, active: 0, completed: 0, failed: 0, delayed: 0 });
    await q.close();
    const trail = await store.auditTrail(50, 'A4');
    expect(trail.map((e) => e.kind)).toContain('dry-run');
    expect(trail.find((e) => e.kind === 'dry-run')?.detail).toMatch(/^dry-run \(nothing sent\): would trip/);
    const { closeQueues } = await import('./queues.ts');
    await closeQueues(ctx.queues);
  });
});

describe('the per-bus command budget', () => {
  let w: RelayWorld;
  const start = local('2026-11-18T10:00:00');
  beforeAll(async () => {
    w = await relayWorld({
      tag: 'relaybudget',
      siteYaml: `
site: { id: relay-budget, timezone: Asia/Shanghai }
meters:
  - { id: M0, role: master }
  - { id: U1, role: tenant, account: B1, relay: plain, connection: { protocol: modbus-tcp, host: 127.0.0.1, port: TCP_PORT, unit: 11, map: dds238 } }
  - { id: U2, role: tenant, account: B2, relay: plain, connection: { protocol: modbus-tcp, host: 127.0.0.1, port: TCP_PORT, unit: 12, map: dds238 } }
  - { id: U3, role: tenant, account: B3, relay: plain, connection: { protocol: modbus-tcp, host: 127.0.0.1, port: TCP_PORT, unit: 13, map: dds238 } }
accounts: [{ id: B1, tariff: t }, { id: B2, tariff: t }, { id: B3, tariff: t }]
tariffs:
  - { id: t, versions: [{ effective_from: 2026-01-01, prices: { flat: "1.000000" }, schedule: [{ periods: [{ from: "00:00", to: "24:00", period: flat }] }] }] }
enforcement: { mode: on, readback: 3s, commands_per_minute: 2, protected_windows: [] }
`,
      start,
      passwords: {},
      secret: SECRET,
    });
    await w.startExecutor();
  });
  afterAll(async () => {
    await w?.close();
  });

  it('a mass cut on one gateway goes at most N commands a minute; the rest wait, then go', async () => {
    await w.fresh();
    for (const a of ['B1', 'B2', 'B3']) await w.balance(a, -100, 0);
    const first = await w.cycle();
    expect(first.enqueued).toHaveLength(2);
    expect(first.deferredByBudget).toHaveLength(1);
    const waiting = first.deferredByBudget[0];
    expect((await w.store.auditTrail(10, waiting)).find((e) => e.kind === 'deferred')?.detail).toMatch(/more than 2 commands a minute on tcp:127\.0\.0\.1:\d+/);
    // Half a minute later the budget is still spent.
    w.clock.now += 30_000;
    await w.fresh();
    expect((await w.cycle()).enqueued).toEqual([]);
    w.clock.now += 31_000;
    await w.fresh();
    const later = await w.cycle();
    // The wait was audited once, not every cycle.
    expect((await w.store.auditTrail(20, waiting)).filter((e) => e.kind === 'deferred')).toHaveLength(1);
    expect(later.enqueued).toEqual([expect.stringContaining(`|${waiting}|open|`)]);
    for (const id of [...first.enqueued, ...later.enqueued]) expect(await w.command(id)).toMatchObject({ status: 'done' });
  });
});
