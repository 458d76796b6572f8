import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeBillRun, parseSiteYaml, zoneOf } from '../core/index.ts';
import type { ReadingRow, Site } from '../core/index.ts';
import { InfluxV1, quoteString } from '../influx/client.ts';
import { dlt645Handler } from '../sim/dlt645/handler.ts';
import { startSimulator } from '../sim/simulator.ts';
import type { Simulator } from '../sim/simulator.ts';
import { openPtyPair } from '../sim/test-support.ts';
import type { PtyPair } from '../sim/test-support.ts';
import { startCollector } from './collector.ts';
import type { Collector } from './collector.ts';
import { tempDir } from './test-support/socat.ts';
import { writeFileSync } from 'node:fs';

/**
 * billing.md section 11, rule 6, end to end: a DL/T 645 meter (on a PTY) and a Modbus TCP
 * meter behind 200/5 CTs (multiplier 40), read by the running collector from the
 * simulator. InfluxDB holds their raw registers (with the multiplier recorded beside them);
 * the bill is raw x 40, exactly. Mid-month the Modbus meter's CT is changed to 300/5: the
 * register read at the swap is entered in the site file, the collector reloads it, and the
 * month bills x40 before and x60 after.
 */

const zone = zoneOf('Asia/Shanghai');
const T0 = zone.midnight('2026-10-01');
const SWAP = zone.midnight('2026-10-15') + 12 * 3_600_000;
const T3 = zone.midnight('2026-11-01');
let simNow = T0;

function siteText(pty: string, tcpPort: number, change = '', extraMeters = ''): string {
  return `
site: { id: ct-e2e, timezone: Asia/Shanghai }
meters:
  - { id: M0, role: master }
  - id: T1
    role: tenant
    account: A1
    multiplier: 40
    max_gap: 800h
    connection: { protocol: dlt645, port: ${JSON.stringify(pty)}, baud: 9600, parity: none, address: "000000001102", timeout_ms: 2000 }
  - id: T2
    role: tenant
    account: A2
    multiplier: 40
    max_gap: 800h
    connection: { protocol: modbus-tcp, host: 127.0.0.1, port: ${tcpPort}, unit: 5, map: sdm630, timeout_ms: 2000 }${change}${extraMeters}
accounts:
  - { id: A1, tariff: t }
  - { id: A2, tariff: t }
tariffs:
  - id: t
    versions:
      - effective_from: 2026-01-01
        prices: { flat: "0.800000" }
        schedule:
          - periods:
              - { from: "00:00", to: "24:00", period: flat }
`;
}

let pty: PtyPair;
let sim: Simulator;
beforeAll(async () => {
  pty = await openPtyPair();
  // The simulator also serves the replacement meter of the last test (unit 6): the meter
  // that is put in T2's place, at its own address.
  const simSite = parseSiteYaml(siteText(pty.a, 502, '', '\n  - { id: NEW, role: master, connection: { protocol: modbus-tcp, host: 127.0.0.1, port: 502, unit: 6, map: sdm630 } }'));
  sim = await startSimulator({ site: simSite, now: () => simNow, epoch: T0 - 3_600_000, serial: pty.b, tcp: { port: 0 }, serialProtocols: [dlt645Handler({ site: simSite })] });
});
afterAll(async () => {
  await sim?.stop();
  await pty?.close();
});

/** Moves simulated time and waits until both meters were read at least twice at it. */
async function readAt(collector: Collector, t: number): Promise<void> {
  simNow = t;
  const count = () => Object.fromEntries(collector.health().meters.map((m) => [m.meter, m.reads - m.errors]));
  const start = count();
  const end = Date.now() + 60_000;
  while (!(count().T1 >= start.T1 + 2 && count().T2 >= start.T2 + 2)) {
    if (Date.now() > end) throw new Error(`meters not read at ${zone.format(t)}: ${JSON.stringify(collector.health().meters)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('multiplier 40 on a DL/T 645 and a Modbus meter (collector -> InfluxDB -> bill)', () => {
  it('stores raw registers with the multiplier recorded, bills x40, and a CT change mid-month bills x60 from the swap', async () => {
    const dir = tempDir('ct');
    const file = join(dir, 'site.yaml');
    writeFileSync(file, siteText(pty.a, sim.tcpPort!));
    const site: Site = parseSiteYaml(siteText(pty.a, sim.tcpPort!));
    const influx = new InfluxV1({ url: process.env.SUBMETER_INFLUX_URL ?? 'http://127.0.0.1:8096', db: `t_ct_${Date.now()}`, timeoutMs: 5000 });
    const collector = await startCollector({ site, siteFile: file, spoolDir: join(dir, 'spool'), influx, now: () => simNow, pollIntervalMs: 20, stateIntervalMs: 60_000, forwarder: { idleMs: 20 } });
    try {
      await readAt(collector, T0);
      await readAt(collector, SWAP);
      // The technician's reading at the swap is what the collector read then (the register).
      await collector.drained(20_000);
      const [atSwap] = await influx.query(`SELECT last(wh) FROM reading WHERE meter = 'T2' AND time <= ${SWAP}ms`);
      const registerAtSwap = atSwap.last as number;
      const change = `\n    meter_changes:\n      - { at: "${zone.format(SWAP)}", final_kwh: ${(registerAtSwap / 1000).toFixed(3)}, initial_kwh: ${(registerAtSwap / 1000).toFixed(3)}, multiplier: 60 }`;
      writeFileSync(file, siteText(pty.a, sim.tcpPort!, change));
      expect(await collector.reload()).toEqual({ outcome: 'applied', reasons: [] });
      await readAt(collector, T3);
      expect(await collector.drained(20_000)).toBe(true);

      // InfluxDB: the registers the meters show (DL/T 645 in 10 Wh steps), never multiplied.
      const rows = await influx.query(`SELECT wh, multiplier FROM reading WHERE site = ${quoteString(site.id)} GROUP BY meter`);
      const at = (meter: string, t: number) => rows.find((r) => r.meter === meter && r.time === t)!;
      expect(at('T1', T3).wh).toBe(Math.floor(sim.read('T1').wh / 10) * 10);
      expect(Math.abs((at('T2', T3).wh as number) - sim.read('T2').wh)).toBeLessThan(20); // float32 kWh register
      expect(at('T1', T0).multiplier).toBe(40);
      expect(at('T2', T0).multiplier).toBe(40);
      expect(at('T2', T3).multiplier).toBe(60);

      // The bill of the month from exactly those rows: raw deltas x the multiplier in force.
      const next = parseSiteYaml(siteText(pty.a, sim.tcpPort!, change));
      const readings: ReadingRow[] = rows.map((r) => ({ time: r.time as number, meter: r.meter as string, wh: r.wh as number }));
      const bill = computeBillRun(next, readings, [], '2026-10-01', '2026-11-01');
      const kwh = (a: string) => bill.accounts.find((x) => x.account === a)!.kwh.own;
      const text = (wh: number) => `${Math.floor(wh / 1000)}.${String(wh % 1000).padStart(3, '0')}`;
      const t1 = ((at('T1', T3).wh as number) - (at('T1', T0).wh as number)) * 40;
      const t2 = (registerAtSwap - (at('T2', T0).wh as number)) * 40 + ((at('T2', T3).wh as number) - registerAtSwap) * 60;
      expect(t1).toBeGreaterThan(0);
      expect(kwh('A1')).toBe(text(t1));
      expect(kwh('A2')).toBe(text(t2));
      expect(bill.quality.filter((q) => q.kind === 'meter_change').map((q) => q.detail)).toEqual([`register ${(registerAtSwap / 1000).toFixed(3)} kWh (final) -> ${(registerAtSwap / 1000).toFixed(3)} kWh (initial), multiplier 40 -> 60`]);
    } finally {
      await collector.stop();
      await influx.dropDatabase().catch(() => undefined);
    }
  }, 180_000);
});

describe('a meter replaced by one at another address', () => {
  it('the collector reads the new address from the meter change once the site file says so', async () => {
    const dir = tempDir('addr');
    const file = join(dir, 'site.yaml');
    writeFileSync(file, siteText(pty.a, sim.tcpPort!));
    const site = parseSiteYaml(siteText(pty.a, sim.tcpPort!));
    const influx = new InfluxV1({ url: process.env.SUBMETER_INFLUX_URL ?? 'http://127.0.0.1:8096', db: `t_addr_${Date.now()}`, timeoutMs: 5000 });
    simNow = T3 + 86_400_000;
    const collector = await startCollector({ site, siteFile: file, spoolDir: join(dir, 'spool'), influx, now: () => simNow, pollIntervalMs: 20, stateIntervalMs: 60_000, forwarder: { idleMs: 20 }, meters: ['T2'] });
    try {
      await readAt2(collector);
      const before = sim.meter('NEW').requests;
      // The swap: T2's position is now read at unit 6. A bad edit first: refused, unit 5 stays.
      writeFileSync(file, siteText(pty.a, sim.tcpPort!, '\n    meter_changes:\n      - { at: "2026-11-02T00:00:00+08:00", final_kwh: 1, initial_kwh: 0, address: "000000000006" }'));
      const refused = await collector.reload();
      expect(refused.outcome).toBe('refused');
      expect(refused.reasons.join()).toMatch(/meter_changes\[0\]\.address: a modbus-tcp address is the unit id \(a number\)/);
      writeFileSync(file, siteText(pty.a, sim.tcpPort!, '\n    meter_changes:\n      - { at: "2026-11-02T00:00:00+08:00", final_kwh: 1, initial_kwh: 0, address: 6, serial: SDM-0006 }'));
      expect((await collector.reload()).outcome).toBe('applied');
      await readAt2(collector);
      expect(sim.meter('NEW').requests).toBeGreaterThan(before);
      expect(collector.health().meters.map((m) => m.meter)).toEqual(['T2']);
    } finally {
      await collector.stop();
      await influx.dropDatabase().catch(() => undefined);
    }
  }, 120_000);
});

async function readAt2(collector: Collector): Promise<void> {
  const n = () => collector.health().meters.find((m) => m.meter === 'T2')?.reads ?? 0;
  const start = n();
  const end = Date.now() + 30_000;
  while (n() < start + 2) {
    if (Date.now() > end) throw new Error('T2 not read');
    await new Promise((r) => setTimeout(r, 50));
  }
}
