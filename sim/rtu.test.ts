import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeReading, energyStepWh, MODBUS_REGISTER_MAPS } from '../collector/inputs/modbus/maps.ts';
import type { RegisterBlock } from '../collector/inputs/modbus/maps.ts';
import type { ModbusMapName } from '../core/index.ts';
import { crc16 } from './modbus-pdu.ts';
import { replyDelayMs } from './serial-server.ts';
import type { SerialFrameHandler } from './serial-server.ts';
import { startSimulator } from './simulator.ts';
import type { Simulator } from './simulator.ts';
import { mbpoll, openPtyPair, testSite } from './test-support.ts';
import type { PtyPair } from './test-support.ts';
import { SerialPort } from 'serialport';

// One meter per map on one RS485 bus (site port /dev/ttyUSB0), served on a socat PTY.
const UNITS: Record<ModbusMapName, number> = { sdm630: 11, sdm120: 12, dtsu666: 13, ddsu666: 14, adw300: 15, dds238: 16 };
const site = testSite(
  Object.entries(UNITS)
    .map(([map, unit]) => `  - { id: R-${map}, role: tenant, account: A1, connection: { protocol: modbus-rtu, port: /dev/ttyUSB0, baud: 9600, unit: ${unit}, map: ${map} } }`)
    .join('\n'),
);
let t = Date.UTC(2026, 6, 1, 6);

let pty: PtyPair;
let sim: Simulator;
beforeAll(async () => {
  pty = await openPtyPair();
  sim = await startSimulator({ site, tcp: false, serial: pty.b, now: () => t, epoch: Date.UTC(2026, 5, 30) });
});
afterAll(async () => {
  await sim?.stop();
  await pty?.close();
});

const rtu = (unit: number, extra: string[]) => mbpoll(['-m', 'rtu', '-b', '9600', '-P', 'none', '-a', String(unit), '-0', '-o', '2', ...extra, pty.a]);

async function readWithMbpoll(map: ModbusMapName): Promise<RegisterBlock[]> {
  const blocks: RegisterBlock[] = [];
  for (const b of MODBUS_REGISTER_MAPS[map].plan) {
    const r = await rtu(UNITS[map], ['-r', String(b.start), '-c', String(b.count), '-t', b.functionCode === 4 ? '3:hex' : '4:hex']);
    expect(r.stderr, `mbpoll ${map} block ${b.start}`).toBe('');
    blocks.push({ start: b.start, registers: Array.from({ length: b.count }, (_, i) => parseInt(r.values.get(b.start + i) ?? 'NaN', 16)) });
  }
  return blocks;
}

describe('simulator over Modbus RTU on a socat PTY, read by mbpoll', () => {
  for (const map of Object.keys(UNITS) as ModbusMapName[]) {
    it(`serves ${map} (unit ${UNITS[map]})`, async () => {
      const truth = sim.read(`R-${map}`);
      const r = decodeReading(map, await readWithMbpoll(map));
      expect(r.wh).toBe(Math.floor(truth.wh / energyStepWh(map)) * energyStepWh(map));
      expect(r.w).toBeCloseTo(truth.w, 0);
    });
  }

  it('answers exceptions as the meter and stays silent for absent units', async () => {
    expect((await rtu(11, ['-r', '768', '-c', '2', '-t', '3'])).stderr).toMatch(/Illegal data address/);
    expect((await rtu(99, ['-r', '0', '-c', '2', '-t', '3', '-o', '0.2'])).stderr).toMatch(/timed out/i);
  });
});

describe('serial bus internals', () => {
  it('computes RS485 wire time: 8N1 10 bits, 8E1 11 bits a character, plus turnaround', () => {
    // protocols.md: reading 2 registers at 9600 8N1 is 8 + 9 = 17 characters = 17.7 ms on the wire.
    expect(replyDelayMs({ baud: 9600, parity: 'none', turnaroundMs: 0 }, 8, 9)).toBeCloseTo(17.708, 2);
    // DL/T 645 at 2400 8E1: 20-byte request + 24-byte reply = 44 x 11 bits = 201.7 ms (protocols.md: ~202 ms).
    expect(replyDelayMs({ baud: 2400, parity: 'even', turnaroundMs: 0 }, 20, 24)).toBeCloseTo(201.67, 1);
    expect(replyDelayMs({ baud: 9600, parity: 'none' }, 8, 9)).toBeCloseTo(22.708, 2);
  });
});

describe('mixed bus: a registered serial protocol shares the line with Modbus RTU, with line timing', () => {
  it('routes 68-frames to the handler, Modbus frames to Modbus, and delays replies by the wire time', async () => {
    const pty2 = await openPtyPair();
    // A toy protocol standing in for DL/T 645: frames "68 xx 16", answered "68 xx+1 16".
    // Named like the connection protocol, so line timing uses that meter's 2400 8E1.
    const toy: SerialFrameHandler = {
      name: 'dlt645',
      match: (buf) => (buf[0] !== 0x68 ? 'none' : buf.length < 3 ? 'incomplete' : buf[2] === 0x16 ? { length: 3 } : 'none'),
      handle: (frame) => Buffer.from([0x68, frame[1] + 1, 0x16]),
    };
    const mixed = testSite(
      `  - { id: R-sdm120, role: tenant, account: A1, connection: { protocol: modbus-rtu, port: /dev/ttyUSB0, baud: 9600, unit: 12, map: sdm120 } }
  - { id: D1, role: tenant, account: A1, connection: { protocol: dlt645, port: /dev/ttyUSB0, baud: 2400, parity: even, address: "000000001102" } }`,
    );
    const sim2 = await startSimulator({ site: mixed, tcp: false, serial: { '/dev/ttyUSB0': pty2.b }, now: () => t, epoch: Date.UTC(2026, 5, 30), lineTiming: { turnaroundMs: 20 } });
    sim2.registerSerialProtocol(toy);
    const port = new SerialPort({ path: pty2.a, baudRate: 9600 });
    try {
      await new Promise<void>((r) => port.once('open', () => r()));
      let rx = Buffer.alloc(0);
      port.on('data', (c: Buffer) => (rx = Buffer.concat([rx, c])));
      const exchange = async (req: Buffer, want: number, maxMs = 2000): Promise<{ bytes: Buffer; ms: number }> => {
        rx = Buffer.alloc(0);
        const t0 = performance.now();
        port.write(req);
        while (rx.length < want && performance.now() - t0 < maxMs) await new Promise((r) => setTimeout(r, 2));
        return { bytes: rx, ms: performance.now() - t0 };
      };
      const toyReply = await exchange(Buffer.from([0x68, 0x41, 0x16]), 3);
      expect([...toyReply.bytes]).toEqual([0x68, 0x42, 0x16]);
      // 6 characters x 11 bits at 2400 (the DL/T 645 meter's 8E1) = 27.5 ms + 20 ms turnaround.
      expect(toyReply.ms).toBeGreaterThanOrEqual(47);
      // A Modbus read of 2 registers from unit 12 (SDM120 voltage), CRC appended.
      const req = Buffer.from([12, 4, 0, 0, 0, 2, 0, 0]);
      req.writeUInt16LE(crc16(req, 6), 6);
      const mb = await exchange(req, 9);
      expect(mb.bytes.length).toBe(9);
      expect(mb.bytes.subarray(0, 3)).toEqual(Buffer.from([12, 4, 4]));
      expect(crc16(mb.bytes, 7)).toBe(mb.bytes.readUInt16LE(7));
      // 17 characters at 9600 8N1 = 17.7 ms + 20 ms turnaround.
      expect(mb.ms).toBeGreaterThanOrEqual(37);
      // Line noise right before a request: the request is still answered, without waiting for silence.
      const noisy = await exchange(Buffer.concat([Buffer.from([0xff, 0x0b, 0x00]), req]), 9);
      expect(noisy.bytes.subarray(0, 3)).toEqual(Buffer.from([12, 4, 4]));
      // A request with a bad CRC is ignored, as every slave does.
      const bad = Buffer.from(req);
      bad[7] ^= 0xff;
      expect((await exchange(bad, 1, 300)).bytes.length).toBe(0);
    } finally {
      await new Promise<void>((r) => (port.isOpen ? port.close(() => r()) : r()));
      await sim2.stop();
      await pty2.close();
    }
  });
});
