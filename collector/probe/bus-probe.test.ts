import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSiteYaml } from '../../core/site/index.ts';
import { dlt645Handler } from '../../sim/dlt645/handler.ts';
import { dlt645TestSite } from '../../sim/dlt645/test-site.ts';
import { startSimulator } from '../../sim/simulator.ts';
import type { Simulator } from '../../sim/simulator.ts';
import { openPtyPair } from '../../sim/test-support.ts';
import type { PtyPair } from '../../sim/test-support.ts';
import { BusRegistry } from '../bus/index.ts';
import { runCli } from '../test-support/site.ts';
import { tempDir } from '../test-support/socat.ts';
import { parseUnits, probeBus } from './bus-probe.ts';
import { siteSnippet } from './site-snippet.ts';

/**
 * Issue 16: `submeter probe` finds what is on an RS485 bus. The simulator serves a mixed
 * bus on a socat PTY pair: a DL/T 645 meter (000000001102, 2400) and a Modbus RTU DDSU666
 * (unit 11, 9600). Parity none: PTYs.
 */
const T0 = Date.UTC(2026, 2, 2, 4, 0, 0);
let pty: PtyPair;
let sim: Simulator;

beforeAll(async () => {
  pty = await openPtyPair();
  const site = dlt645TestSite({ port: pty.a, modbusPort: pty.a });
  sim = await startSimulator({ site, now: () => T0, epoch: T0 - 3_600_000, serial: pty.b, tcp: false, serialProtocols: [dlt645Handler({ site })] });
});

afterAll(async () => {
  await sim?.stop();
  await pty?.close();
});

const S2400 = { baudRate: 2400, parity: 'none', dataBits: 8, stopBits: 1 } as const;
const S9600 = { baudRate: 9600, parity: 'none', dataBits: 8, stopBits: 1 } as const;

describe('probeBus on a mixed DL/T 645 + Modbus RTU bus', () => {
  it('finds the DL/T 645 meter by the read-address wildcard and the Modbus unit by a scan', async () => {
    const buses = new BusRegistry({ backoffBaseMs: 0, backoffMaxMs: 0 });
    try {
      const r = await probeBus(buses.get(pty.a), { dlt645: { settings: S2400 }, modbus: [{ map: 'ddsu666', settings: S9600, units: parseUnits('9-13') }], timeoutMs: 300 });
      expect(r.notes).toEqual([]);
      expect(r.findings).toHaveLength(2);
      const [dlt, rtu] = r.findings;
      expect(dlt).toMatchObject({ protocol: 'dlt645', address: '000000001102', via: 'read-address' });
      // The reading is the meter's register (0.01 kWh steps).
      expect(dlt.wh).toBe(Math.floor(sim.read('T102').wh / 10) * 10);
      expect(rtu).toMatchObject({ protocol: 'modbus-rtu', unit: 11, map: 'ddsu666' });
      expect(Math.abs(rtu.wh! - sim.read('T101').wh)).toBeLessThan(100);

      const { yaml, known } = siteSnippet(pty.a, r.findings);
      expect(known).toEqual([]);
      const lines = parseSiteYaml(
        `site: { id: s, timezone: Asia/Shanghai }\n${yaml.replace(/CHANGE-ME/g, 'A1').replace('meters:\n', 'meters:\n  - { id: M, role: master }\n')}accounts:\n  - { id: A1, tariff: t }\ntariffs:\n  - id: t\n    versions:\n      - { effective_from: 2026-01-01, prices: { flat: "1" }, schedule: [ { periods: [ { from: "00:00", to: "24:00", period: flat } ] } ] }\n`,
      );
      // The snippet is a valid site file once the placeholders are filled in.
      expect(lines.meters.slice(1).map((m) => m.connection)).toEqual([
        expect.objectContaining({ protocol: 'dlt645', port: pty.a, baud: 2400, parity: 'none', address: '000000001102' }),
        expect.objectContaining({ protocol: 'modbus-rtu', port: pty.a, baud: 9600, parity: 'none', unit: 11, map: 'ddsu666' }),
      ]);
    } finally {
      await buses.closeAll();
    }
  });

  it('submeter probe --site --bus prints what answered and which site-file meters they are', async () => {
    const dir = tempDir('probe');
    const site = join(dir, 'site.yaml');
    // The test site file names both meters on the bus: the probe confirms them and has nothing new.
    const yaml = dlt645TestSite({ port: pty.a, modbusPort: pty.a });
    writeFileSync(
      site,
      `site: { id: probe-test, timezone: Asia/Shanghai }
meters:
  - { id: M0, role: master }
  - { id: T102, role: tenant, account: A102, connection: { protocol: dlt645, port: ${JSON.stringify(pty.a)}, parity: none, address: "000000001102" } }
  - { id: T101, role: tenant, account: A101, connection: { protocol: modbus-rtu, port: ${JSON.stringify(pty.a)}, unit: 11, map: ddsu666 } }
accounts:
  - { id: A101, tariff: t }
  - { id: A102, tariff: t }
tariffs:
  - id: t
    versions:
      - { effective_from: 2026-01-01, prices: { flat: "1" }, schedule: [ { periods: [ { from: "00:00", to: "24:00", period: flat } ] } ] }
`,
    );
    expect(yaml.meters).toHaveLength(3);
    const r = await runCli(['probe', '--site', site, '--bus', pty.a, '--units', '10-12', '--timeout', '300']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/2 device\(s\) answered/);
    expect(r.stdout).toMatch(/DL\/T 645 meter 000000001102 at 2400 8N1, [\d.]+ kWh \(read-address\) \(site file: T102\)/);
    expect(r.stdout).toMatch(/Modbus unit 11 at 9600 8N1, ddsu666 map, [\d.]+ kWh, [\d.]+ V \(site file: T101\)/);
    expect(r.stdout).toMatch(/nothing new to add/);
  }, 60_000);

  it('submeter probe --device prints a paste-ready snippet for a bus the site file does not know', async () => {
    const r = await runCli(['probe', '--device', pty.a, '--dlt645-parity', 'none', '--map', 'ddsu666', '--units', '11', '--timeout', '300']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/connection: \{ protocol: dlt645, port: "[^"]+", parity: none, address: "000000001102" \}/);
    expect(r.stdout).toMatch(/connection: \{ protocol: modbus-rtu, port: "[^"]+", unit: 11, map: ddsu666 \}/);
  }, 60_000);

  it('reads unit lists and refuses bad ones', () => {
    expect(parseUnits('1-3,7,5-5')).toEqual([1, 2, 3, 5, 7]);
    expect(() => parseUnits('0-3')).toThrow(/1\.\.247/);
    expect(() => parseUnits('x')).toThrow(/not a unit id/);
  });
});
