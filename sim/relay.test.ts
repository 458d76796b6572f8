import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeFrame, parseReadReply } from '../collector/inputs/dlt645/codec.ts';
import { controlRequest, decodeStatusWord3, DI_STATUS_WORD_3, parseControlReply, statusWord3Request } from '../collector/inputs/dlt645/control.ts';
import type { ControlAction, ControlReply } from '../collector/inputs/dlt645/control.ts';
import { parseSiteYaml } from '../core/site/index.ts';
import { dlt645Handler } from './dlt645/handler.ts';
import { SimRelay } from './relay.ts';
import { startSimulator } from './simulator.ts';
import type { Simulator } from './simulator.ts';
import { testSite } from './test-support.ts';

const HOUR = 3_600_000;

describe('SimRelay', () => {
  it('an open relay stops the energy the model keeps counting; closing resumes it', () => {
    // A model drawing 1 kW: 1000 Wh per hour.
    const total = (t: number) => Math.floor(t / 3600);
    const r = new SimRelay(total);
    expect(r.command('trip', 2 * HOUR)).toEqual({ ok: true });
    expect(r.closedAt(3 * HOUR)).toBe(false);
    expect(r.missingWh(3 * HOUR, total(3 * HOUR))).toBe(1000);
    r.command('close-now', 5 * HOUR);
    expect(r.missingWh(6 * HOUR, total(6 * HOUR))).toBe(3000);
    // Reads before and inside the outage, out of order, agree.
    expect(r.missingWh(1 * HOUR, total(1 * HOUR))).toBe(0);
    expect(r.missingWh(4 * HOUR, total(4 * HOUR))).toBe(2000);
    expect(r.switches).toBe(2);
  });

  it('protected (保电) refuses trips; close permitted waits for the button; a stuck relay never moves', () => {
    const r = new SimRelay();
    r.command('protect-on', 0);
    expect(r.command('trip', 1)).toEqual({ ok: false, reason: 'trip-while-protected' });
    expect(r.state().closed).toBe(true);
    r.command('protect-off', 2);
    r.command('trip', 3);
    r.command('close-permit', 4);
    expect(r.state()).toMatchObject({ closed: false, commandTrip: false, closePermitted: true });
    expect(r.pressButton(5)).toBe(true);
    expect(r.state().closed).toBe(true);
    r.stuck = true;
    r.command('trip', 6);
    expect(r.state()).toMatchObject({ closed: true, commandTrip: true });
  });

  it('a trip delay: the command state at once, the contacts after delayMs or when a test lets them move', () => {
    let now = 10 * HOUR;
    const r = new SimRelay(() => 0, () => now);
    r.delayMs = 3_600_000; // held: only finishMove moves them in this test
    expect(r.finishMove()).toBe(false);
    r.command('trip', now);
    expect(r.state()).toMatchObject({ closed: true, commandTrip: true });
    now += 1000;
    expect(r.finishMove()).toBe(true);
    expect(r.state()).toMatchObject({ closed: false, commandTrip: true });
    expect(r.closedAt(now - 1)).toBe(true);
    expect(r.closedAt(now)).toBe(false);
    expect(r.finishMove()).toBe(false);
    expect(r.switches).toBe(1);
  });
});

describe('simulated DL/T 645 meter: remote control as a State Grid meter answers it', () => {
  const site = parseSiteYaml(`
site: { id: relay-sim, timezone: Asia/Shanghai }
meters:
  - { id: M0, role: master }
  - { id: T102, role: tenant, account: A102, relay: plain, connection: { protocol: dlt645, port: /dev/null, parity: none, address: "000000001102" } }
  - { id: T103, role: tenant, account: A103, relay: esam, connection: { protocol: dlt645, port: /dev/null, parity: none, address: "000000001103" } }
accounts:
  - { id: A102, tariff: t }
  - { id: A103, tariff: t }
tariffs:
  - { id: t, versions: [{ effective_from: 2026-01-01, prices: { flat: "1.000000" }, schedule: [{ periods: [{ from: "00:00", to: "24:00", period: flat }] }] }] }
`);
  // Friday 2026-11-20 14:00 in Shanghai.
  let t = Date.UTC(2026, 10, 20, 6);
  let sim: Simulator;
  const handler = dlt645Handler({ site, control: { password: '02123456' } });
  beforeAll(async () => {
    sim = await startSimulator({ site, tcp: false, now: () => t, epoch: Date.UTC(2026, 10, 19) });
  });
  afterAll(async () => {
    await sim?.stop();
  });

  const send = async (address: string, bytes: Uint8Array): Promise<ReturnType<typeof decodeFrame> | undefined> => {
    const reply = await handler.handle(Buffer.from(bytes), { sitePort: '/dev/null', device: '/dev/null', meters: site.meters.map((m) => sim.meter(m.id)), log: undefined as never });
    return reply ? decodeFrame(reply) : undefined;
  };
  const deadline = (minutes: number) => {
    const d = new Date(t + 8 * HOUR + minutes * 60_000);
    return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds() };
  };
  const control = async (address: string, action: ControlAction, opts: { password?: string; minutes?: number } = {}): Promise<ControlReply> => {
    const f = await send(address, controlRequest(address, { password: { level: 2, password: opts.password ?? '123456' }, operator: '00000001', action, deadline: deadline(opts.minutes ?? 5) }));
    if (!f?.ok) throw new Error('no reply');
    const r = parseControlReply(f.value, address);
    if (!r.ok) throw new Error(r.error.message);
    return r.value;
  };
  const status = async (address: string) => {
    const f = await send(address, statusWord3Request(address));
    if (!f?.ok) throw new Error('no reply');
    const r = parseReadReply(f.value, address, DI_STATUS_WORD_3);
    if (!r.ok) throw new Error(r.error.message);
    const s = decodeStatusWord3(r.value.payload);
    if (!s.ok) throw new Error(s.error.message);
    return s.value;
  };

  it('trips: status word 3 reads open, the energy register stops and power reads 0; a close resumes it', async () => {
    const before = sim.read('T102');
    expect(before.w).toBeGreaterThan(0);
    expect(await control('000000001102', 'trip')).toMatchObject({ accepted: true });
    expect(await status('000000001102')).toMatchObject({ relayOpen: true, commandTrip: true });
    const wh0 = sim.read('T102').wh;
    t += 2 * HOUR;
    expect(sim.read('T102')).toMatchObject({ wh: wh0, w: 0 });
    expect(await control('000000001102', 'closeNow')).toMatchObject({ accepted: true });
    t += HOUR;
    expect(sim.read('T102').wh).toBeGreaterThan(wh0);
    expect(await status('000000001102')).toMatchObject({ relayOpen: false, commandTrip: false });
  });

  it('refuses a wrong password, a passed deadline and a trip while protected, each with its reason', async () => {
    const wrong = await control('000000001102', 'trip', { password: '654321' });
    expect(wrong).toMatchObject({ accepted: false, refusal: { reasons: ['unauthorised'], bytes: 2 } });
    const late = await control('000000001102', 'trip', { minutes: -1 });
    expect(late).toMatchObject({ accepted: false, refusal: { reasons: ['deadline'] } });
    await control('000000001102', 'protectOn');
    expect(await status('000000001102')).toMatchObject({ protect: true, relayOpen: false });
    expect(await control('000000001102', 'trip')).toMatchObject({ accepted: false, refusal: { reasons: ['trip-while-protected'] } });
    await control('000000001102', 'protectOff');
    expect((await status('000000001102')).relayOpen).toBe(false);
  });

  it('an ESAM-only meter refuses plaintext commands and does not switch', async () => {
    const r = await control('000000001103', 'trip');
    expect(r).toMatchObject({ accepted: false, refusal: { reasons: ['unauthorised'] } });
    expect(sim.meter('T103').relay.state().closed).toBe(true);
  });

  it('counts every control frame addressed to a meter, accepted or not', () => {
    expect(sim.meter('T102').relay.controlFrames).toBe(7);
    expect(sim.meter('T103').relay.controlFrames).toBe(1);
  });

  it("with the standard one-byte error word every refusal is bit 2, as State Grid firmware answers", async () => {
    const std = dlt645Handler({ site, control: { password: '02123456', errorWord: 'standard' } });
    const bytes = controlRequest('000000001102', { password: { level: 2, password: '123456' }, operator: '00000001', action: 'trip', deadline: deadline(-1) });
    const reply = await std.handle(Buffer.from(bytes), { sitePort: '/dev/null', device: '/dev/null', meters: site.meters.map((m) => sim.meter(m.id)), log: undefined as never });
    const f = decodeFrame(reply!);
    const r = f.ok ? parseControlReply(f.value, '000000001102') : undefined;
    expect(r?.ok && r.value).toMatchObject({ accepted: false, refusal: { raw: 0x04, bytes: 1, reasons: ['unauthorised'] } });
  });
});

describe('simulated Modbus relay (DDS238 over TCP)', () => {
  const site = testSite('  - { id: T-dds, role: tenant, account: A1, relay: plain, connection: { protocol: modbus-tcp, host: 127.0.0.1, port: 5020, unit: 7, map: dds238 } }');
  let t = Date.UTC(2026, 6, 1, 6);
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({ site, tcp: { port: 0 }, now: () => t, epoch: Date.UTC(2026, 5, 30) });
  });
  afterAll(async () => {
    await sim?.stop();
  });

  const pdu = (bytes: number[]) => sim.meter('T-dds').modbus(Buffer.from(bytes));

  it('function 16 of 0 at 0x001A trips, 1 closes; the state reads back at 0x001A; 06 is refused as on the real meter', () => {
    expect(pdu([16, 0x00, 0x1a, 0, 1, 2, 0, 0])).toEqual({ kind: 'reply', pdu: Buffer.from([16, 0x00, 0x1a, 0, 1]) });
    const read = pdu([3, 0x00, 0x1a, 0, 1]);
    expect(read).toEqual({ kind: 'reply', pdu: Buffer.from([3, 2, 0, 0]) });
    const wh0 = sim.read('T-dds').wh;
    t += HOUR;
    expect(sim.read('T-dds')).toMatchObject({ wh: wh0, w: 0 });
    expect(pdu([16, 0x00, 0x1a, 0, 1, 2, 0, 1]).kind).toBe('reply');
    expect(pdu([3, 0x00, 0x1a, 0, 1])).toEqual({ kind: 'reply', pdu: Buffer.from([3, 2, 0, 1]) });
    expect(pdu([6, 0x00, 0x1a, 0, 0])).toEqual({ kind: 'reply', pdu: Buffer.from([0x86, 1]) });
    expect(pdu([16, 0x00, 0x1a, 0, 1, 2, 0, 7])).toEqual({ kind: 'reply', pdu: Buffer.from([0x90, 3]) });
    expect(sim.meter('T-dds').relay.controlFrames).toBe(3);
  });

  it('a stuck relay accepts the write and stays closed', () => {
    sim.injectFault('T-dds', { kind: 'relay-stuck' });
    pdu([16, 0x00, 0x1a, 0, 1, 2, 0, 0]);
    expect(pdu([3, 0x00, 0x1a, 0, 1])).toEqual({ kind: 'reply', pdu: Buffer.from([3, 2, 0, 1]) });
    sim.clearFaults('T-dds');
  });
});
