import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModbusMapName, Site } from '../core/index.ts';
import { startSimulator } from '../sim/simulator.ts';
import type { Simulator } from '../sim/simulator.ts';
import { testSite } from '../sim/test-support.ts';
import { BusRegistry } from './bus/index.ts';
import type { MeterInput } from './input.ts';
import { MeterReadError } from './input.ts';
import { createInput } from './inputs/index.ts';
import { ModbusTcpPool } from './inputs/modbus-tcp/index.ts';
import { energyStepWh } from './inputs/modbus/maps.ts';
import { MeterPoller } from './poller.ts';
import type { Sample } from './sample.ts';
import { openPtyPair } from './test-support/socat.ts';
import type { PtyPair } from './test-support/socat.ts';

/**
 * The conformance suite every meter input passes against the simulator (style.md
 * practice 3): each register map over Modbus TCP and over Modbus RTU on a socat PTY
 * pair, then each injected fault survived (the poller goes on, the other meters are
 * read) and flagged (a MeterReadError of the right kind in the meter's health).
 */
const MAPS: readonly ModbusMapName[] = ['sdm630', 'sdm120', 'dtsu666', 'ddsu666', 'adw300', 'dds238'];
const UNIT: Record<ModbusMapName, number> = { sdm630: 11, sdm120: 12, dtsu666: 13, ddsu666: 14, adw300: 15, dds238: 16 };
const T0 = Date.UTC(2026, 6, 1, 6);

/** Integer registers count 0.01 kWh (ADW300, DDS238): the collector sees the register floored to 10 Wh. */
const expectedWh = (map: ModbusMapName, wh: number) => Math.floor(wh / energyStepWh(map)) * energyStepWh(map);

interface Transport {
  readonly name: string;
  /** Site-file YAML of one meter's connection. */
  connection(map: ModbusMapName): string;
  setup(site: Site): Promise<{ sim: Simulator; cleanup: () => Promise<void> }>;
  /** What the crc fault looks like to the collector: over TCP (no CRC) the simulator stays silent. */
  readonly crcKind: MeterReadError['kind'];
}

let pty: PtyPair | undefined;
const transports: Transport[] = [
  {
    name: 'modbus-tcp',
    connection: (map) => `{ protocol: modbus-tcp, host: 127.0.0.1, port: 5020, unit: ${UNIT[map]}, map: ${map}, timeout_ms: 300 }`,
    async setup(site) {
      const sim = await startSimulator({ site, tcp: { port: 0 }, now: () => T0, epoch: Date.UTC(2026, 5, 30) });
      return { sim, cleanup: () => sim.stop() };
    },
    crcKind: 'timeout',
  },
  {
    name: 'modbus-rtu (socat PTY)',
    connection: (map) => `{ protocol: modbus-rtu, port: /dev/ttyUSB0, baud: 9600, unit: ${UNIT[map]}, map: ${map}, timeout_ms: 300 }`,
    async setup(site) {
      pty = await openPtyPair();
      const sim = await startSimulator({ site, tcp: false, serial: pty.b, now: () => T0, epoch: Date.UTC(2026, 5, 30) });
      return {
        sim,
        cleanup: async () => {
          await sim.stop();
          await pty?.close();
        },
      };
    },
    crcKind: 'crc',
  },
];

for (const tr of transports) {
  describe(`collector vs simulator over ${tr.name}`, () => {
    const site = testSite(MAPS.map((map) => `  - { id: X-${map}, role: tenant, account: A1, connection: ${tr.connection(map)} }`).join('\n'));
    let sim: Simulator;
    let cleanup: () => Promise<void>;
    let buses: BusRegistry;
    let tcp: ModbusTcpPool;
    const inputs = new Map<string, MeterInput>();
    beforeAll(async () => {
      ({ sim, cleanup } = await tr.setup(site));
      buses = new BusRegistry({ backoffBaseMs: 20, backoffMaxMs: 50 });
      tcp = new ModbusTcpPool({ reconnectBaseMs: 50 });
      for (const m of site.meters) {
        if (!m.connection) continue;
        // The site file says 127.0.0.1:5020 and /dev/ttyUSB0; point them at the test's endpoints.
        const conn = m.connection.protocol === 'modbus-tcp' ? { ...m.connection, port: sim.tcpPort! } : m.connection.protocol === 'modbus-rtu' ? { ...m.connection, port: pty!.a } : m.connection;
        inputs.set(m.id, createInput({ ...m, connection: conn }, { buses, tcp }, () => T0));
      }
    });
    afterAll(async () => {
      await tcp?.close();
      await buses?.closeAll();
      await cleanup?.();
    });

    for (const map of MAPS) {
      it(`reads the ${map} map as the simulated meter shows it`, async () => {
        const s = await inputs.get(`X-${map}`)!.read();
        const truth = sim.read(`X-${map}`);
        expect(s.meter).toBe(`X-${map}`);
        expect(s.time).toBe(T0);
        expect(s.wh).toBe(expectedWh(map, truth.wh));
        expect(s.w).toBeCloseTo(truth.w, 0);
        const phases = truth.v.slice(0, map === 'sdm120' || map === 'ddsu666' ? 1 : 3);
        expect(s.v).toBeCloseTo(phases.reduce((a, b) => a + b, 0) / phases.length, 0);
      });
    }

    const faults: { name: string; fault: Parameters<Simulator['injectFault']>[1]; kind: MeterReadError['kind'] | 'value-passes' }[] = [
      { name: 'no answer', fault: { kind: 'no-answer', count: 2 }, kind: 'timeout' },
      { name: 'CRC error', fault: { kind: 'crc', count: 2 }, kind: tr.crcKind },
      { name: 'Modbus exception', fault: { kind: 'exception', code: 4, count: 2 }, kind: 'exception' },
    ];
    for (const f of faults) {
      it(`survives and flags: ${f.name}, while the other meters are read`, async () => {
        const victim = 'X-sdm630';
        const health: { ok: boolean; consecutiveErrors: number; lastError?: string }[] = [];
        const got: Sample[] = [];
        const sink = { sample: async (s: Sample) => void got.push(s), health: async (h: { ok: boolean; consecutiveErrors: number; lastError?: string }) => void health.push(h) };
        const poller = new MeterPoller({ input: inputs.get(victim)!, intervalMs: 1000, sink, now: () => T0 });
        sim.injectFault(victim, f.fault);
        const first = await poller.pollOnce();
        expect(first).toBeInstanceOf(MeterReadError);
        expect((first as MeterReadError).kind).toBe(f.kind);
        expect((first as MeterReadError).retryable).toBe(true);
        if (f.kind === 'exception') expect((first as MeterReadError).message).toMatch(/exception 4/);
        expect(health.at(-1)).toMatchObject({ ok: false, consecutiveErrors: 1 });
        expect(health.at(-1)!.lastError).toMatch(new RegExp(`^${f.kind}:`));
        // Another meter on the same bus / connection reads normally meanwhile.
        const other = await inputs.get('X-dtsu666')!.read();
        expect(other.wh).toBe(sim.read('X-dtsu666').wh);
        // The fault's count runs out (the in-read retry took the second); the meter recovers.
        sim.clearFaults(victim);
        await new Promise((r) => setTimeout(r, 60)); // past the bus back-off
        const again = await poller.pollOnce();
        expect(again).not.toBeInstanceOf(MeterReadError);
        expect(health.at(-1)).toMatchObject({ ok: true, consecutiveErrors: 0 });
        expect(poller.health()).toMatchObject({ errors: 1, reads: 2 });
        expect(got).toHaveLength(1);
      });
    }

    it('passes data faults (spike, reset, rollover) through unaltered for billing to flag', async () => {
      const id = 'X-dtsu666';
      const before = sim.read(id).wh;
      sim.injectFault(id, { kind: 'spike', wh: 500_000, count: 1 });
      expect((await inputs.get(id)!.read()).wh).toBe(before + 500_000);
      expect((await inputs.get(id)!.read()).wh).toBe(before);
      sim.injectFault(id, { kind: 'reset' });
      expect((await inputs.get(id)!.read()).wh).toBe(sim.read(id).wh);
      expect(sim.read(id).wh).toBeLessThan(before);
      sim.injectFault(id, { kind: 'rollover', marginWh: 100 });
      expect((await inputs.get(id)!.read()).wh).toBe(sim.read(id).wh);
    });
  });
}
