import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSiteYaml } from '../core/site/index.ts';
import { zoneOf } from '../core/tou/zone.ts';
import { meterClockLine } from '../influx/meter-clock.ts';
import type { MeterClockCheck } from '../influx/meter-clock.ts';
import { dlt645Handler } from '../sim/dlt645/handler.ts';
import type { Dlt645SerialHandler } from '../sim/dlt645/handler.ts';
import { startSimulator } from '../sim/simulator.ts';
import type { Simulator } from '../sim/simulator.ts';
import { openPtyPair } from '../sim/test-support.ts';
import type { PtyPair } from '../sim/test-support.ts';
import { BusRegistry } from './bus/index.ts';
import { ClockKeeper } from './clock-keeper.ts';
import { createInput } from './inputs/index.ts';
import { hexBytes, timeSyncBroadcast } from './inputs/dlt645/codec.ts';
import { broadcastTimeSync } from './inputs/dlt645/time-sync.ts';

/**
 * Issue 16: a daily broadcast time sync (DL/T 645 C = 08) with a drift check. Meters on a
 * socat PTY bus through the simulator, simulated time: a meter whose quartz gains 1000 ppm
 * (86 s a day) is off by more than its max_clock_drift after a day and raises the alarm;
 * the broadcast sets it right; one set 10 minutes wrong is beyond what a broadcast may
 * correct (+-5 min) and stays alarmed.
 */
const zone = zoneOf('Asia/Shanghai');
const T0 = zone.firstInstantAtOrAfter(Date.UTC(2026, 2, 2, 3, 30)); // 03:30 local
let now = T0;
let pty: PtyPair;
let sim: Simulator;
let handler: Dlt645SerialHandler;

const siteOn = (port: string) =>
  parseSiteYaml(`
site: { id: clocks, timezone: Asia/Shanghai }
meters:
  - { id: M0, role: master, connection: { protocol: dlt645, port: ${JSON.stringify(port)}, parity: none, address: "000000000001", timeout_ms: 2000 } }
  - { id: T1, role: tenant, account: A1, connection: { protocol: dlt645, port: ${JSON.stringify(port)}, parity: none, address: "000000000011", timeout_ms: 2000 } }
  - { id: T2, role: tenant, account: A1, connection: { protocol: dlt645, port: ${JSON.stringify(port)}, parity: none, address: "000000000012", timeout_ms: 2000, max_clock_drift: 30s } }
accounts:
  - { id: A1, tariff: t }
tariffs:
  - id: t
    versions:
      - { effective_from: 2026-01-01, prices: { flat: "1" }, schedule: [ { periods: [ { from: "00:00", to: "24:00", period: flat } ] } ] }
`);

beforeAll(async () => {
  pty = await openPtyPair();
  const site = siteOn(pty.a);
  handler = dlt645Handler({ site });
  sim = await startSimulator({ site, now: () => now, epoch: T0 - 3_600_000, serial: pty.b, tcp: false, serialProtocols: [handler] });
});

afterAll(async () => {
  await sim?.stop();
  await pty?.close();
});

describe('DL/T 645 clock keeping', () => {
  it('the broadcast time sync frame is the standard one, byte for byte', async () => {
    // Two public vectors (concentrator firmware comments and a test tool), both +33H data:
    // 2017-06-05 10:22:51 and 2022-03-17 14:07:47.
    expect(hexBytes(timeSyncBroadcast({ year: 2017, month: 6, day: 5, hour: 10, minute: 22, second: 51 }))).toBe('FE FE FE FE 68 99 99 99 99 99 99 68 08 06 84 55 43 38 39 4A 4B 16');
    expect(hexBytes(timeSyncBroadcast({ year: 2022, month: 3, day: 17, hour: 14, minute: 7, second: 47 }, { wakeup: 0 }))).toBe('68 99 99 99 99 99 99 68 08 06 7A 3A 47 4A 36 55 44 16');
    // And what the collector puts on the bus at a given instant is that frame for local time.
    const buses = new BusRegistry();
    try {
      const at = zone.firstInstantAtOrAfter(Date.UTC(2017, 5, 5, 10, 22, 51));
      const sent = await broadcastTimeSync(buses.get(pty.a), { baudRate: 2400, parity: 'none', dataBits: 8, stopBits: 1 }, zone, () => at);
      expect(hexBytes(sent)).toBe('FE FE FE FE 68 99 99 99 99 99 99 68 08 06 84 55 43 38 39 4A 4B 16');
    } finally {
      await buses.closeAll();
    }
  });

  it('a drifting meter raises the alarm; the daily broadcast sets it right; one beyond +-5 min stays alarmed', async () => {
    const site = sim.site;
    const buses = new BusRegistry({ backoffBaseMs: 0, backoffMaxMs: 0 });
    const checks: MeterClockCheck[] = [];
    const inputs = site.meters.map((m) => createInput(m, { buses, tcp: undefined as never, timezone: site.timezone }, () => now));
    const keeper = new ClockKeeper({ site, inputs, buses, now: () => now, report: async (c) => void checks.push(c) });
    try {
      expect(keeper.size).toBe(3);
      // Meters start exact (a read creates their simulated view).
      for (const c of await keeper.run(false)) expect(Math.abs(c.errorMs)).toBeLessThanOrEqual(1000);
      handler.meter('T1')!.setClock({ offsetMs: 0, driftPpm: 1000 }, now);
      handler.meter('T2')!.setClock({ offsetMs: 10 * 60_000 }, now);

      // A day later: T1 has gained 86.4 s (> 60 s default bound), T2 is 10 min ahead (> 30 s).
      now += 86_400_000;
      const refused = (id: string) => handler.meter(id)!.refusedTimeSyncs;
      const before = { T1: refused('T1'), T2: refused('T2') };
      checks.length = 0;
      const day1 = await keeper.run(true);
      const by = (list: MeterClockCheck[], id: string) => list.find((c) => c.meter === id)!;
      expect(by(day1, 'M0').ok).toBe(true);
      expect(by(day1, 'T1')).toMatchObject({ ok: false });
      expect(by(day1, 'T1').errorMs).toBeGreaterThan(85_000);
      expect(by(day1, 'T1').errorMs).toBeLessThan(88_000);
      expect(by(day1, 'T2')).toMatchObject({ ok: false });
      expect(checks).toEqual(day1);
      // The alarm as it goes to InfluxDB.
      expect(meterClockLine('clocks', by(day1, 'T1'))).toMatch(/^meter_health,meter=T1,site=clocks clock_drift_s=8[5-7](\.\d+)?,clock_max_drift_s=60,clock_ok=F \d+$/);

      // The broadcast went out once on the bus: T1 took it, T2 (10 min off) refused it. (The
      // frame is on the wire when run() returns; the simulator reads it a moment later.)
      for (let i = 0; i < 100 && refused('T2') === before.T2; i++) await new Promise((r) => setTimeout(r, 20));
      expect(refused('T2') - before.T2).toBe(1);
      expect(refused('T1') - before.T1).toBe(0);
      now += 60_000;
      const after = await keeper.run(false);
      expect(Math.abs(by(after, 'T1').errorMs)).toBeLessThan(2000);
      expect(by(after, 'T1').ok).toBe(true);
      expect(by(after, 'T2').ok).toBe(false);
    } finally {
      await buses.closeAll();
    }
  });

  it('schedules the daily sync at its local time, away from midnight', () => {
    const keeper = new ClockKeeper({ site: sim.site, inputs: [], buses: new BusRegistry(), now: () => now, report: async () => undefined, syncAt: '03:30' });
    const ms = keeper.msUntilNextSync();
    expect(ms).toBeGreaterThan(0);
    expect(ms).toBeLessThanOrEqual(86_400_000);
    expect(zone.wall(Date.now() + ms) % 86_400_000).toBeGreaterThanOrEqual((3 * 60 + 30) * 60_000 - 1000);
    expect(() => new ClockKeeper({ site: sim.site, inputs: [], buses: new BusRegistry(), now: () => now, report: async () => undefined, syncAt: '25:00' })).toThrow(/HH:MM/);
  });
});
