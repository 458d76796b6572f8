import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dlt645Handler } from '../../sim/dlt645/handler.ts';
import { startSimulator } from '../../sim/simulator.ts';
import type { Simulator } from '../../sim/simulator.ts';
import { openPtyPair, testSite } from '../../sim/test-support.ts';
import type { PtyPair } from '../../sim/test-support.ts';
import { BusRegistry } from '../bus/index.ts';
import { MeterReadError } from '../input.ts';
import { ModbusTcpPool } from '../inputs/modbus-tcp/tcp-pool.ts';
import { createRelayDriver, relayUnsupported } from './driver.ts';
import type { RelayResources } from './driver.ts';
import { loadRelaySecrets, RelaySecretsError } from './secrets.ts';

/**
 * Protocol tier: the relay drivers against the simulator, DL/T 645 and Modbus RTU on one
 * socat PTY (through the bus scheduler) and Modbus TCP, including the refusals a real
 * meter gives.
 */
const HOUR = 3_600_000;
let t = Date.UTC(2026, 10, 18, 6); // Wed 2026-11-18 14:00 Shanghai
let pty: PtyPair;
let sim: Simulator;
let site: ReturnType<typeof testSite>;
let res: RelayResources;

beforeAll(async () => {
  pty = await openPtyPair();
  site = testSite(
    [
      `  - { id: D, role: tenant, account: A1, relay: plain, connection: { protocol: dlt645, port: ${pty.a}, parity: none, address: "000000000001", timeout_ms: 2000 } }`,
      `  - { id: E, role: tenant, account: A1, relay: esam, connection: { protocol: dlt645, port: ${pty.a}, parity: none, address: "000000000002" } }`,
      `  - { id: N, role: tenant, account: A1, connection: { protocol: dlt645, port: ${pty.a}, parity: none, address: "000000000003" } }`,
      `  - { id: R, role: tenant, account: A1, relay: plain, connection: { protocol: modbus-rtu, port: ${pty.a}, unit: 5, map: dds238, timeout_ms: 2000 } }`,
      `  - { id: T, role: tenant, account: A1, relay: plain, connection: { protocol: modbus-tcp, host: 127.0.0.1, port: 5020, unit: 6, map: dds238 } }`,
    ].join('\n'),
  );
  sim = await startSimulator({ site, tcp: { port: 0 }, serial: pty.b, now: () => t, epoch: Date.UTC(2026, 10, 17), serialProtocols: [dlt645Handler({ site, control: { password: { D: '02123456', E: '02123456' } } })] });
  const tcpSite = { ...site, meters: site.meters.map((m) => (m.id === 'T' && m.connection?.protocol === 'modbus-tcp' ? { ...m, connection: { ...m.connection, port: sim.tcpPort! } } : m)) };
  site = tcpSite;
  res = {
    site,
    buses: new BusRegistry(),
    tcp: new ModbusTcpPool(),
    secrets: loadRelaySecrets({ SUBMETER_DLT645_PASSWORD: '02123456' }),
    now: () => t,
  };
});

afterAll(async () => {
  await res?.buses.closeAll();
  await res?.tcp.close();
  await sim?.stop();
  await pty?.close();
});

const meter = (id: string) => site.meters.find((m) => m.id === id)!;

describe('relay drivers against the simulator', () => {
  for (const id of ['D', 'R', 'T']) {
    it(`${id}: trip stops the load, the read-back says open; close restores it`, async () => {
      const d = createRelayDriver(meter(id), res);
      expect((await d.readState()).state).toBe('closed');
      expect(await d.send('trip')).toMatchObject({ accepted: true });
      expect((await d.readState()).state).toBe('open');
      const wh = sim.read(id).wh;
      t += HOUR;
      expect(sim.read(id)).toMatchObject({ wh, w: 0 });
      expect(await d.send('close')).toMatchObject({ accepted: true });
      const back = await d.readState();
      expect(back.state).toBe('closed');
      t += HOUR;
      expect(sim.read(id).wh).toBeGreaterThan(wh);
    });
  }

  it('DL/T 645: the read-back decodes status word 3 (command state, protection)', async () => {
    const d = createRelayDriver(meter('D'), res);
    expect(await d.send('protect-on')).toMatchObject({ accepted: true });
    expect(await d.readState()).toMatchObject({ state: 'closed', protect: true, commandTrip: false });
    const refused = await d.send('trip');
    expect(refused).toMatchObject({ accepted: false, reasons: ['trip-while-protected'] });
    expect(refused.text).toMatch(/protected/);
    await d.send('protect-off');
  });

  it('DL/T 645: a wrong password is refused and reported, the relay untouched', async () => {
    const wrong = { ...res, secrets: loadRelaySecrets({ SUBMETER_DLT645_PASSWORD: '02999999' }) };
    const d = createRelayDriver(meter('D'), wrong);
    const r = await d.send('trip');
    expect(r).toMatchObject({ accepted: false, reasons: ['unauthorised'] });
    expect(r.text).not.toContain('999999');
    expect((await d.readState()).state).toBe('closed');
  });

  it("DL/T 645: a command whose deadline the meter's clock has passed is refused", async () => {
    // Our clock 10 minutes behind the meter's: the 5-minute deadline is already past for it.
    const behind = { ...res, now: () => t - 10 * 60_000 };
    const r = await createRelayDriver(meter('D'), behind).send('trip');
    expect(r).toMatchObject({ accepted: false, reasons: ['deadline'] });
    expect(sim.meter('D').relay.state().closed).toBe(true);
  });

  it('an ESAM-only meter, a meter without a relay and a missing password are unsupported, nothing sent', () => {
    const frames = sim.meter('E').relay.controlFrames;
    expect(relayUnsupported(meter('E'))).toMatch(/ESAM/);
    expect(() => createRelayDriver(meter('E'), res)).toThrow(/ESAM-encrypted control/);
    expect(() => createRelayDriver(meter('N'), res)).toThrow(/no relay/);
    expect(relayUnsupported(meter('D'), loadRelaySecrets({}))).toMatch(/no DL\/T 645 control password/);
    expect(sim.meter('E').relay.controlFrames).toBe(frames);
  });

  it('Modbus has no protection command: reported, not sent', async () => {
    const d = createRelayDriver(meter('T'), res);
    const before = sim.meter('T').relay.controlFrames;
    expect(await d.send('protect-on')).toMatchObject({ accepted: false, reasons: ['unsupported'] });
    expect(sim.meter('T').relay.controlFrames).toBe(before);
  });

  it('a silent meter is a timeout error, not an outcome', async () => {
    sim.injectFault('D', { kind: 'no-answer', count: 1 });
    const quick = { ...res, site: { ...site, meters: site.meters.map((m) => (m.id === 'D' ? { ...m, connection: { ...(m.connection as object), timeout_ms: 300 } } : m)) } } as RelayResources;
    const d = createRelayDriver(quick.site.meters.find((m) => m.id === 'D')!, quick);
    await expect(d.send('trip')).rejects.toBeInstanceOf(MeterReadError);
    expect(sim.meter('D').relay.state().closed).toBe(true);
  });
});

describe('relay secrets', () => {
  it('come from the environment or a per-meter file, validated without echoing a secret', () => {
    const dir = mkdtempSync(join(tmpdir(), 'relay-secrets-'));
    try {
      const file = join(dir, 'secrets.yaml');
      writeFileSync(file, 'meters:\n  D: "04111111"\n  R: { password: "02222222", operator: "0000ABCD" }\n');
      const s = loadRelaySecrets({ SUBMETER_RELAY_SECRETS: file, SUBMETER_DLT645_PASSWORD: '02123456', SUBMETER_DLT645_OPERATOR: '00000001' });
      expect(s.forMeter('D')).toEqual({ password: { level: 4, password: '111111' }, operator: '00000001' });
      expect(s.forMeter('R')).toEqual({ password: { level: 2, password: '222222' }, operator: '0000ABCD' });
      expect(s.forMeter('X')).toEqual({ password: { level: 2, password: '123456' }, operator: '00000001' });
      expect(s.source).not.toMatch(/\d{6}/);
      writeFileSync(file, 'meters:\n  D: "98123456"\n');
      expect(() => loadRelaySecrets({ SUBMETER_RELAY_SECRETS: file })).toThrow(RelaySecretsError);
      expect(() => loadRelaySecrets({ SUBMETER_RELAY_SECRETS: file })).toThrow(/meters\.D: .*ESAM/);
      expect(() => loadRelaySecrets({ SUBMETER_DLT645_PASSWORD: '02x23456' })).toThrow(/^SUBMETER_DLT645_PASSWORD: /);
      try {
        loadRelaySecrets({ SUBMETER_DLT645_PASSWORD: '02x23456' });
      } catch (e) {
        expect((e as Error).message).not.toContain('x23456');
      }
      expect(() => loadRelaySecrets({ SUBMETER_RELAY_SECRETS: join(dir, 'missing.yaml') })).toThrow(/cannot read it \(ENOENT\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
