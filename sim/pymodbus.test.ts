import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeReading, energyStepWh, MODBUS_REGISTER_MAPS } from '../collector/inputs/modbus/maps.ts';
import type { ModbusMapName } from '../core/index.ts';
import { startSimulator } from './simulator.ts';
import type { Simulator } from './simulator.ts';
import { openPtyPair, testSite } from './test-support.ts';
import type { PtyPair } from './test-support.ts';

/**
 * A second independent peer: Debian's python3-pymodbus (3.0) client reads the simulator
 * over Modbus TCP and RTU. Debian's python, not pyenv's `python3` on PATH.
 */
const PYTHON = '/usr/bin/python3';

const CLIENT = `
import json, sys
from pymodbus.client import ModbusTcpClient, ModbusSerialClient
req = json.loads(sys.argv[1])
if req['mode'] == 'tcp':
    c = ModbusTcpClient('127.0.0.1', port=req['port'], timeout=2)
else:
    c = ModbusSerialClient(port=req['device'], baudrate=9600, parity='N', stopbits=1, bytesize=8, timeout=2)
c.connect()
out = []
for r in req['reads']:
    fn = c.read_input_registers if r['fc'] == 4 else c.read_holding_registers
    rr = fn(r['start'], r['count'], slave=r['unit'])
    out.append({'error': getattr(rr, 'exception_code', -1)} if rr.isError() else {'registers': rr.registers})
c.close()
print(json.dumps(out))
`;

interface Read {
  unit: number;
  fc: number;
  start: number;
  count: number;
}
type Result = { registers: number[] } | { error: number };

function pymodbus(req: { mode: 'tcp'; port: number; reads: Read[] } | { mode: 'rtu'; device: string; reads: Read[] }): Promise<Result[]> {
  return new Promise((resolve, reject) => {
    execFile(PYTHON, ['-c', CLIENT, JSON.stringify(req)], { timeout: 20_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`pymodbus client failed: ${stderr || err.message}`));
      else resolve(JSON.parse(stdout.trim().split('\n').pop()!) as Result[]);
    });
  });
}

const UNITS: Record<ModbusMapName, number> = { sdm630: 1, sdm120: 2, dtsu666: 3, ddsu666: 4, adw300: 5, dds238: 6 };
const site = testSite(
  (Object.entries(UNITS) as [ModbusMapName, number][])
    .flatMap(([map, unit]) => [
      `  - { id: T-${map}, role: tenant, account: A1, connection: { protocol: modbus-tcp, host: 127.0.0.1, port: 5020, unit: ${unit}, map: ${map} } }`,
      `  - { id: R-${map}, role: tenant, account: A1, connection: { protocol: modbus-rtu, port: /dev/ttyUSB0, unit: ${unit}, map: ${map} } }`,
    ])
    .join('\n'),
);
const t = Date.UTC(2026, 6, 1, 6);

let pty: PtyPair;
let sim: Simulator;
beforeAll(async () => {
  pty = await openPtyPair();
  sim = await startSimulator({ site, tcp: { port: 0 }, serial: pty.b, now: () => t, epoch: Date.UTC(2026, 5, 30) });
});
afterAll(async () => {
  await sim?.stop();
  await pty?.close();
});

const plannedReads = (): Read[] =>
  (Object.entries(UNITS) as [ModbusMapName, number][]).flatMap(([map, unit]) => MODBUS_REGISTER_MAPS[map].plan.map((b) => ({ unit, fc: b.functionCode, start: b.start, count: b.count })));

function check(prefix: 'T' | 'R', reads: Read[], results: Result[]): void {
  let i = 0;
  for (const [map] of Object.entries(UNITS) as [ModbusMapName, number][]) {
    const blocks = MODBUS_REGISTER_MAPS[map].plan.map((b) => {
      const r = results[i++];
      expect('registers' in r, `${map} block ${b.start}: ${JSON.stringify(r)}`).toBe(true);
      return { start: b.start, registers: (r as { registers: number[] }).registers };
    });
    const truth = sim.read(`${prefix}-${map}`);
    expect(decodeReading(map, blocks).wh).toBe(Math.floor(truth.wh / energyStepWh(map)) * energyStepWh(map));
  }
  expect(i).toBe(reads.length);
}

describe('simulator read by python3-pymodbus', () => {
  it('over Modbus TCP, every map, plus an illegal-address exception', async () => {
    const reads = plannedReads();
    const results = await pymodbus({ mode: 'tcp', port: sim.tcpPort!, reads: [...reads, { unit: 1, fc: 4, start: 0x300, count: 2 }] });
    check('T', reads, results.slice(0, reads.length));
    expect(results[reads.length]).toEqual({ error: 2 });
  });

  it('over Modbus RTU on a socat PTY, every map', async () => {
    const reads = plannedReads();
    check('R', reads, await pymodbus({ mode: 'rtu', device: pty.a, reads }));
  });
});
