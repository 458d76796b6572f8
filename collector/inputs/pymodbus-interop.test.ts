import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BusRegistry } from '../bus/index.ts';
import { MeterReadError } from '../input.ts';
import type { Sample } from '../sample.ts';
import { openPtyPair } from '../test-support/socat.ts';
import type { PtyPair } from '../test-support/socat.ts';
import { startPymodbusRtu, startPymodbusTcp } from '../test-support/pymodbus.ts';
import type { PymodbusServer, PymodbusSpec } from '../test-support/pymodbus.ts';
import { testMeter } from '../test-support/meters.ts';
import { createInput } from './index.ts';
import { ModbusTcpPool } from './modbus-tcp/index.ts';

/**
 * Interoperability (issue 2, "the collector reads a python3-pymodbus server correctly"):
 * values packed by pymodbus' side with struct, read and decoded by the collector.
 */
const SPEC: PymodbusSpec = {
  // SDM630: function 04, plain units.
  13: { fc: 4, floats: { 0: 230.1, 2: 230.2, 4: 230.3, 6: 1.5, 8: 2.5, 10: 3.5, 0x34: 1234.5, 0x3e: 0.95, 0x46: 50.01, 0x48: 12345.67 } },
  // DTSU666: function 03, scaled (V x0.1, A x0.001, W x0.1, PF x0.001, Hz x0.01), kWh unscaled at 0x401E.
  11: { fc: 3, floats: { 0x2006: 2301, 0x2008: 2302, 0x200a: 2303, 0x200c: 1500, 0x200e: 2500, 0x2010: 3500, 0x2012: 12345, 0x202a: 950, 0x2044: 5001, 0x401e: 12345.67 } },
};

function expectKnownValues(s: Sample, meter: string): void {
  expect(s.meter).toBe(meter);
  // 12345.67 kWh as float32 is 12345.669921875; the meter means 12345.67 (shortest text).
  expect(s.wh).toBe(12_345_670);
  expect(s.w).toBeCloseTo(1234.5, 3);
  expect(s.v).toBeCloseTo(230.2, 3);
  expect(s.a).toBeCloseTo(7.5, 3);
  expect(s.pf).toBeCloseTo(0.95, 4);
  expect(s.hz).toBeCloseTo(50.01, 3);
}

describe('collector vs python3-pymodbus over Modbus TCP', () => {
  let server: PymodbusServer;
  const tcp = new ModbusTcpPool();
  const buses = new BusRegistry();
  beforeAll(async () => {
    server = await startPymodbusTcp(SPEC);
  });
  afterAll(async () => {
    await tcp.close();
    await buses.closeAll();
    await server?.stop();
  });

  it('reads SDM630 and DTSU666 maps on one connection, a missing unit fails alone', async () => {
    const conn = (unit: number, map: 'sdm630' | 'dtsu666') => ({ protocol: 'modbus-tcp' as const, host: '127.0.0.1', port: server.port!, unit, map, timeout_ms: 500 });
    const sdm = createInput(testMeter('T103', conn(13, 'sdm630')), { tcp, buses }, () => 1_700_000_000_000);
    const dtsu = createInput(testMeter('M0', conn(11, 'dtsu666')), { tcp, buses }, () => 1_700_000_000_000);
    const missing = createInput(testMeter('GONE', conn(99, 'dtsu666')), { tcp, buses });
    const [a, b, c] = await Promise.allSettled([sdm.read(), dtsu.read(), missing.read()]);
    expect(a.status).toBe('fulfilled');
    expect(b.status).toBe('fulfilled');
    expectKnownValues((a as PromiseFulfilledResult<Sample>).value, 'T103');
    expectKnownValues((b as PromiseFulfilledResult<Sample>).value, 'M0');
    expect((a as PromiseFulfilledResult<Sample>).value.time).toBe(1_700_000_000_000);
    expect(c.status).toBe('rejected');
    expect((c as PromiseRejectedResult).reason).toBeInstanceOf(MeterReadError);
    // And the connection still serves the good meters afterwards.
    expectKnownValues(await sdm.read(), 'T103');
  });
});

describe('collector vs python3-pymodbus over Modbus RTU on a socat PTY pair', () => {
  let pty: PtyPair;
  let server: PymodbusServer;
  const tcp = new ModbusTcpPool();
  const buses = new BusRegistry({ backoffBaseMs: 50, backoffMaxMs: 200 });
  beforeAll(async () => {
    pty = await openPtyPair();
    server = await startPymodbusRtu(pty.b, 9600, SPEC);
  });
  afterAll(async () => {
    await tcp.close();
    await buses.closeAll();
    await server?.stop();
    await pty?.close();
  });

  it('reads both maps through the bus scheduler; a silent unit times out without stalling the bus', async () => {
    const conn = (unit: number, map: 'sdm630' | 'dtsu666') => ({ protocol: 'modbus-rtu' as const, port: pty.a, baud: 9600, parity: 'none' as const, unit, map, timeout_ms: 300 });
    const sdm = createInput(testMeter('T103', conn(13, 'sdm630')), { tcp, buses });
    const dtsu = createInput(testMeter('T101', conn(11, 'dtsu666')), { tcp, buses });
    const silent = createInput(testMeter('GONE', conn(42, 'sdm630')), { tcp, buses });
    const [a, b, c] = await Promise.allSettled([sdm.read(), silent.read(), dtsu.read()]);
    expect(a.status, String((a as PromiseRejectedResult).reason)).toBe('fulfilled');
    expect(c.status, String((c as PromiseRejectedResult).reason)).toBe('fulfilled');
    expectKnownValues((a as PromiseFulfilledResult<Sample>).value, 'T103');
    expectKnownValues((c as PromiseFulfilledResult<Sample>).value, 'T101');
    expect(b.status).toBe('rejected');
    expect((b as PromiseRejectedResult).reason).toMatchObject({ kind: 'timeout', retryable: true });
    const st = buses.get(pty.a).stats();
    expect(st.clients.GONE.consecutiveFailures).toBe(1);
    expect(st.clients.T103.failures).toBe(0);
    expect(st.utilisation).toBeGreaterThan(0);
  });
});
