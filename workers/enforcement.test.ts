import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quoteString } from '../influx/client.ts';
import { processBalance } from './balance.ts';
import { recordPayment } from './payments.ts';
import { relayJobId } from './queues.ts';
import { relayWorld } from './testing/relay-world.ts';
import type { RelayWorld } from './testing/relay-world.ts';

/**
 * Issue 13 against the simulator: DL/T 645 meters on a socat PTY and DDS238 meters over
 * Modbus TCP, the enforcement worker on a simulated clock, the collector's relay executor
 * carrying out its jobs, real Redis and InfluxDB.
 */

const HOUR = 3_600_000;
const local = (s: string) => Date.parse(`${s}+08:00`);
const SECRET = '02123456';

const SITE = `
site: { id: relay-it, timezone: Asia/Shanghai }
meters:
  - { id: M0, role: master }
  - { id: T1, role: tenant, account: A1, relay: plain, connection: { protocol: dlt645, port: PTY, parity: none, address: "000000000011", timeout_ms: 3000 } }
  - { id: T2, role: tenant, account: A2, relay: plain, connection: { protocol: modbus-tcp, host: 127.0.0.1, port: TCP_PORT, unit: 2, map: dds238, timeout_ms: 3000 } }
  - { id: T5, role: tenant, account: A5, relay: plain, connection: { protocol: dlt645, port: PTY, parity: none, address: "000000000015", timeout_ms: 3000 } }
  - { id: T6, role: tenant, account: A6, relay: plain, connection: { protocol: dlt645, port: PTY, parity: none, address: "000000000016", timeout_ms: 3000 } }
  - { id: T7, role: tenant, account: A7, relay: plain, connection: { protocol: modbus-tcp, host: 127.0.0.1, port: TCP_PORT, unit: 7, map: dds238, timeout_ms: 3000 } }
  - { id: T8, role: tenant, account: A8, relay: plain, connection: { protocol: dlt645, port: PTY, parity: none, address: "000000000018", timeout_ms: 3000 } }
accounts:
  - { id: A1, name: Restaurant 1, tariff: t }
  - { id: A2, name: Shop 2, tariff: t }
  - { id: A5, name: Shop 5, tariff: t, opening_balance: "1000.00" }
  - { id: A6, name: Shop 6, tariff: t, opening_balance: "1000.00" }
  - { id: A7, name: Shop 7, tariff: t, opening_balance: "1000.00" }
  - { id: A8, name: Shop 8, tariff: t, opening_balance: "1000.00" }
tariffs:
  - { id: t, versions: [{ effective_from: 2026-01-01, prices: { flat: "1.000000" }, schedule: [{ periods: [{ from: "00:00", to: "24:00", period: flat }] }] }] }
enforcement:
  mode: on
  readback: 3s
  protected_windows: [{ name: nights, from: "22:00", to: "07:00" }]
`;

describe('enforcement against the simulator (DL/T 645 on a PTY, Modbus TCP)', () => {
  let w: RelayWorld;
  beforeAll(async () => {
    w = await relayWorld({ tag: 'relay', siteYaml: SITE, start: local('2026-11-20T22:55:00'), passwords: { T1: SECRET, T5: SECRET, T6: '02654321', T8: SECRET }, secret: SECRET });
    await w.startExecutor();
  });
  afterAll(async () => {
    await w?.close();
  });

  const frames = (id: string) => w.sim.meter(id).relay.controlFrames;

  it('zero balance on Friday 23:00 in the night window: no trip until the window ends at 07:00, then the load stops', async () => {
    await w.fresh();
    await w.balance('A1', 200, 2);
    await w.balance('A2', 200, 2);
    expect((await w.cycle()).enqueued).toEqual([]);

    w.clock.now = local('2026-11-20T23:00:00');
    await w.fresh();
    await w.balance('A1', 0, 0);
    await w.balance('A2', 0, 0);
    const at23 = await w.cycle();
    expect(at23.enqueued).toEqual([]);
    expect(at23.decisions.A1).toMatchObject({ wanted: 'closed', deferred: { reason: 'protected-window', until: local('2026-11-21T07:00:00') }, warning: 'final' });
    // Warned at 22:55 (2 h left), and told at 23:00 when the cut will come.
    const warned = await w.env.influx.query(`SELECT detail FROM event WHERE site = 'relay-it' AND kind = 'relay_final_warning' AND account = 'A1'`);
    expect(warned.map((r) => String(r.detail))).toEqual([expect.stringMatching(/about to run out/), expect.stringMatching(/power will be cut at 2026-11-21T07:00:00\+08:00/)]);

    for (let t = local('2026-11-20T23:30:00'); t < local('2026-11-21T07:00:00'); t += HOUR / 2) {
      w.clock.now = t;
      await w.fresh();
      await w.balance('A1', -Math.round((t - local('2026-11-20T23:00:00')) / 60_000), 0);
      await w.balance('A2', -10, 0);
      expect((await w.cycle()).enqueued, new Date(t).toISOString()).toEqual([]);
    }
    expect(frames('T1')).toBe(0);
    expect(frames('T2')).toBe(0);
    // Energy used through the night is still metered: the meters never stopped.
    expect(w.sim.read('T1').w).toBeGreaterThan(0);

    w.clock.now = local('2026-11-21T07:00:00');
    await w.fresh();
    await w.balance('A1', -500, 0);
    await w.balance('A2', -10, 0);
    const morning = await w.cycle();
    expect(morning.enqueued.sort()).toEqual([relayJobId('relay-it', 'A1', 'open', 2), relayJobId('relay-it', 'A2', 'open', 2)]);
    expect(await w.command(morning.enqueued[0])).toMatchObject({ status: 'done' });
    expect(await w.command(morning.enqueued[1])).toMatchObject({ status: 'done' });
    expect(frames('T1')).toBe(1);
    expect(frames('T2')).toBe(1);
    for (const id of ['T1', 'T2']) {
      const wh = w.sim.read(id).wh;
      w.clock.now += HOUR;
      expect(w.sim.read(id), id).toMatchObject({ wh, w: 0 });
      w.clock.now -= HOUR;
    }
    const wanted = (await w.store.wanted()).get('A1')!;
    expect(wanted).toMatchObject({ state: 'open', version: 2, restoreFen: 501, reason: 'balance-exhausted' });
  });

  it('a payment closes the relay within one balance cycle and the load resumes (DL/T 645 and Modbus TCP)', async () => {
    w.clock.now = local('2026-11-21T09:00:00');
    await w.fresh();
    const deps = { site: w.site, influx: w.env.influx, redis: w.env.redis, keyPrefix: w.env.prefix };
    await recordPayment(deps, { account: 'A1', fen: 50_00, reference: 'PAY-A1', time: w.clock.now - 60_000 });
    // One cycle: the balance worker, then the enforcement on its output.
    await processBalance(w.ctx, { site: w.site.id });
    const r = await w.cycle();
    expect(r.decisions.A1).toMatchObject({ wanted: 'closed', reason: 'reconnect' });
    expect(r.enqueued).toEqual([relayJobId('relay-it', 'A1', 'closed', 3)]);
    // A2 has not paid: its balance (0.00) is not above the threshold; it stays off.
    expect(r.decisions.A2).toMatchObject({ wanted: 'open', reason: 'below-reconnect', restoreFen: 1 });
    expect(await w.command(r.enqueued[0])).toMatchObject({ status: 'done' });
    // Now A2 pays too.
    await recordPayment(deps, { account: 'A2', fen: 10_00, reference: 'PAY-A2', time: w.clock.now - 30_000 });
    await processBalance(w.ctx, { site: w.site.id });
    const r2 = await w.cycle();
    expect(r2.enqueued).toEqual([relayJobId('relay-it', 'A2', 'closed', 3)]);
    expect(await w.command(r2.enqueued[0])).toMatchObject({ status: 'done' });
    const wh = { T1: w.sim.read('T1').wh, T2: w.sim.read('T2').wh };
    w.clock.now += HOUR;
    expect(w.sim.read('T1').wh).toBeGreaterThan(wh.T1);
    expect(w.sim.read('T2').wh).toBeGreaterThan(wh.T2);
    expect(w.sim.meter('T1').relay.state().closed).toBe(true);
    expect(w.sim.meter('T2').relay.state().closed).toBe(true);
  });

  it('the audit trail holds every decision and command with balance, reason and the register before and after', async () => {
    const trail = (await w.store.auditTrail(200, 'A1')).reverse();
    const kinds = trail.map((e) => e.kind);
    expect(kinds).toEqual(expect.arrayContaining(['deferred', 'decision', 'command', 'send', 'reply', 'readback']));
    const send = trail.find((e) => e.kind === 'send' && e.command === 'trip')!;
    expect(send).toMatchObject({ balanceFen: -500, reason: 'balance-exhausted', before: { state: 'closed', raw: 0 } });
    const readback = trail.find((e) => e.kind === 'readback' && e.command === 'trip')!;
    expect(readback).toMatchObject({ before: { state: 'closed', raw: 0 }, after: { state: 'open', raw: 0x50 } });
    const close = trail.find((e) => e.kind === 'readback' && e.command === 'close')!;
    expect(close.after).toEqual({ state: 'closed', raw: 0 });
  });

  it('a command past its deadline is refused by the meter and reported (meter clock 10 minutes ahead)', async () => {
    // The meter's clock was set wrong: 10 minutes ahead of ours. (A broadcast time sync
    // cannot do that: a meter ignores one more than 5 minutes off its own clock, DL/T
    // 645-2007 and sim/dlt645/meter.ts; so the simulated meter's clock is set directly.)
    w.dlt.meter('T5')!.setClock({ offsetMs: 10 * 60_000 }, w.clock.now);
    await w.store.setOverride('A5', { kind: 'force-trip', reason: 'commissioning check', by: 'manager:t', at: w.clock.now });
    await w.fresh();
    const r = await w.cycle();
    expect(r.enqueued).toHaveLength(1);
    const c = await w.command(r.enqueued[0]);
    expect(c).toMatchObject({ status: 'refused', meters: { T5: { reply: 'refused' } } });
    expect(c.meters.T5.replyText).toMatch(/command deadline has passed/);
    const ev = await w.env.influx.query(`SELECT detail FROM event WHERE site = 'relay-it' AND kind = 'relay_refused' AND meter = 'T5'`);
    expect(String(ev[0]?.detail)).toMatch(/deadline/);
    expect(w.sim.meter('T5').relay.state().closed).toBe(true);
  });

  it('a wrong password is reported once, never retried', async () => {
    await w.store.setOverride('A6', { kind: 'force-trip', reason: 'test', by: 'manager:t', at: w.clock.now });
    await w.fresh();
    const r = await w.cycle();
    const c = await w.command(r.enqueued[0]);
    expect(c).toMatchObject({ status: 'refused' });
    expect(c.meters.T6.replyText).toMatch(/password wrong or unauthorised/);
    for (let i = 0; i < 5; i++) {
      w.clock.now += 5 * 60_000;
      await w.fresh();
      expect((await w.cycle()).enqueued).toEqual([]);
    }
    await new Promise((res) => setTimeout(res, 300));
    expect(frames('T6')).toBe(1);
    const trail = await w.store.auditTrail(50, 'A6');
    expect(trail.filter((e) => e.kind === 'refused')).toHaveLength(1);
    // The disagreement stays visible: wanted off, the meter on.
    const row = await w.env.influx.query(`SELECT last(mismatch) AS m FROM relay WHERE site = 'relay-it' AND account = 'A6'`);
    expect(row[0]?.m).toBe(1);
  });

  it('a stuck relay raises the mismatch alarm after the read-back window (Modbus TCP and DL/T 645)', async () => {
    w.sim.injectFault('T7', { kind: 'relay-stuck' });
    w.sim.injectFault('T8', { kind: 'relay-stuck' });
    for (const a of ['A7', 'A8']) await w.store.setOverride(a, { kind: 'force-trip', reason: 'test', by: 'manager:t', at: w.clock.now });
    await w.fresh();
    const r = await w.cycle();
    expect(r.enqueued).toHaveLength(2);
    const [c7, c8] = await Promise.all(r.enqueued.map((id) => w.command(id)));
    expect(c7).toMatchObject({ status: 'mismatch', meters: { T7: { reply: 'accepted', after: { state: 'closed' } } } });
    // DL/T 645 shows the stuck relay as "commanded trip, contacts closed" (status word 3 = 0040).
    expect(c8).toMatchObject({ status: 'mismatch', meters: { T8: { reply: 'accepted', after: { state: 'closed', raw: 0x40 } } } });
    for (const m of ['T7', 'T8']) {
      const ev = await w.env.influx.query(`SELECT detail FROM event WHERE site = ${quoteString('relay-it')} AND kind = 'relay_mismatch' AND meter = ${quoteString(m)}`);
      expect(String(ev[0]?.detail), m).toMatch(/accepted but the relay reads closed/);
    }
    await w.cycle();
    for (const a of ['A7', 'A8']) {
      const row = await w.env.influx.query(`SELECT last(mismatch) AS m, last(wanted) AS wanted, last(state) AS state FROM relay WHERE site = 'relay-it' AND account = ${quoteString(a)}`);
      expect(row[0], a).toMatchObject({ m: 1, wanted: 0, state: 1 });
    }
    w.sim.clearFaults('T7');
    w.sim.clearFaults('T8');
  });
});
