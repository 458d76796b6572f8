import { describe, expect, it } from 'vitest';
import {
  DI,
  FN,
  decodeFrame,
  decodeValue,
  energyWh,
  parseReadAddressReply,
  parseReadReply,
  readAddressRequest,
  readRequest,
  timeSyncBroadcast,
} from '../../collector/inputs/dlt645/codec.ts';
import { Dlt645Line } from './line.ts';
import { SimDlt645Meter } from './meter.ts';
import type { MeterState } from './meter.ts';
import { TariffRegisters } from './tariff-registers.ts';
import { dlt645TestSite } from './test-site.ts';

const site = dlt645TestSite({ port: '/dev/null' });
/** 2026-03-02 00:00 Asia/Shanghai (a Monday in March: the non-summer layout). */
const MAR2 = Date.UTC(2026, 2, 1, 16, 0, 0);
const HOUR = 3_600_000;

/** A constant load of `w` watts from `t0`, with the register at `wh0`. */
function constantLoad(w: number, t0: number, wh0 = 0): (ms: number) => MeterState {
  return (ms) => ({ totalWh: wh0 + Math.floor((w * (ms - t0)) / HOUR), w, v: [230.1, 229.9, 231], a: [1.5, 1.5, 1.5] });
}

function reply(meter: SimDlt645Meter, request: Uint8Array, alone = true) {
  const f = decodeFrame(request);
  if (!f.ok) throw new Error('bad request');
  const r = meter.handle(f.value, alone);
  return r && { ...r, frame: decodeFrame(r.bytes) };
}

describe('tariff registers', () => {
  it('split a day at constant power by the site TOU periods (T1 sharp, T2 peak, T3 flat, T4 valley)', () => {
    const load = constantLoad(1000, MAR2);
    for (const stepH of [24, 1, 0.25]) {
      const regs = new TariffRegisters(site, undefined, MAR2);
      for (let t = MAR2 + stepH * HOUR; t <= MAR2 + 24 * HOUR; t += stepH * HOUR) regs.advance(t, load(t).totalWh);
      expect(regs.snapshot()).toEqual({ totalWh: 24_000, tariffWh: [0, 8000, 8000, 8000] });
    }
  });
  it('use the meter programming from the site file, and put July evenings in sharp', () => {
    const jul1 = Date.UTC(2026, 5, 30, 16);
    const regs = new TariffRegisters(site, { valley: 1, flat: 2, peak: 3, sharp: 4 }, jul1);
    regs.advance(jul1 + 24 * HOUR, 24_000);
    expect(regs.snapshot().tariffWh).toEqual([8000, 8000, 6000, 2000]);
  });
  it('never run backwards and count whole 0.01 kWh that add up to the total', () => {
    const regs = new TariffRegisters(site, undefined, MAR2);
    regs.advance(MAR2 + 7.5 * HOUR, 1009);
    regs.advance(MAR2 + 8 * HOUR, 900);
    const s = regs.snapshot();
    // The registers show XXXXXX.XX kWh: 1009 Wh is 100 steps of 10 Wh, so 1000 Wh.
    expect(s.totalWh).toBe(1000);
    expect(s.tariffWh.reduce((a, b) => a + b, 0)).toBe(1000);
    expect(s.tariffWh[3]).toBe(930); // 7 of 7.5 h in valley: 93.3 of 100 steps
  });

  it('do not depend on when they are read: a walk through the period changes equals hourly reads', () => {
    // A load that is not constant: what each period gets depends on when energy was drawn.
    const uneven = (ms: number) => 1_000_000 + Math.floor(((ms - MAR2) / HOUR) ** 2 * 137);
    const hourly = new TariffRegisters(site, undefined, MAR2, { totalWh: 1_000_000, tariffWh: [0, 0, 0, 0] });
    for (let t = MAR2 + HOUR; t <= MAR2 + 48 * HOUR; t += HOUR) hourly.advance(t, uneven(t));
    // Read once, two days later, walking the changes first (what the simulated meter does).
    const once = new TariffRegisters(site, undefined, MAR2, { totalWh: 1_000_000, tariffWh: [0, 0, 0, 0] });
    const changes = once.changesUntil(MAR2 + 48 * HOUR);
    expect(changes.length).toBeGreaterThan(4);
    for (const c of changes) once.advance(c, uneven(c));
    once.advance(MAR2 + 48 * HOUR, uneven(MAR2 + 48 * HOUR));
    expect(once.snapshot()).toEqual(hourly.snapshot());
    // Without the walk, the two days' energy would be spread by time alone.
    const blind = new TariffRegisters(site, undefined, MAR2, { totalWh: 1_000_000, tariffWh: [0, 0, 0, 0] });
    blind.advance(MAR2 + 48 * HOUR, uneven(MAR2 + 48 * HOUR));
    expect(blind.snapshot()).not.toEqual(hourly.snapshot());
  });
});

describe('simulated DL/T 645 meter', () => {
  it('starts with its total spread over the tariffs by the day\'s layout, adding up exactly', () => {
    const m = new SimDlt645Meter({ address: '000000001103', site, source: constantLoad(0, MAR2, 1_000_000), now: () => MAR2 });
    const r = m.readRegisters();
    expect(r.totalWh).toBe(1_000_000);
    expect(r.tariffWh.reduce((a, b) => a + b, 0)).toBe(1_000_000);
    // March layout: 8 h each of valley, flat and peak, no sharp; whole 0.01 kWh each.
    expect(r.tariffWh[0]).toBe(0);
    for (const t of r.tariffWh.slice(1)) expect(Math.abs(t - 333_333)).toBeLessThanOrEqual(10);
    expect(r.tariffWh.every((t) => t % 10 === 0)).toBe(true);
  });

  it('counted from an epoch: created later, it shows the registers one created at the epoch shows', () => {
    const uneven = (ms: number) => ({ totalWh: 2_000_000 + Math.floor(((ms - MAR2) / HOUR) ** 2 * 59) });
    let t = MAR2;
    const early = new SimDlt645Meter({ address: '000000001104', site, source: uneven, now: () => t });
    for (; t <= MAR2 + 30 * HOUR; t += 15 * 60_000) early.readRegisters();
    t = MAR2 + 30 * HOUR;
    const late = new SimDlt645Meter({ address: '000000001105', site, source: uneven, now: () => t, epoch: MAR2 });
    expect(late.readRegisters()).toEqual(early.readRegisters());
  });

  let now = MAR2;
  const meter = new SimDlt645Meter({ address: '000000001102', site, source: constantLoad(2000, MAR2, 1_000_000), now: () => now, initial: { totalWh: 1_000_000, tariffWh: [0, 0, 0, 0] } });

  it('answers forward active total and the block from the load model, in whole 10 Wh steps', () => {
    now = MAR2 + 12 * HOUR + 1;
    const r = reply(meter, readRequest('000000001102', DI.forwardActiveTotal));
    expect(r?.frame.ok).toBe(true);
    if (!r?.frame.ok) return;
    const p = parseReadReply(r.frame.value, '000000001102', DI.forwardActiveTotal);
    const v = p.ok ? decodeValue(DI.forwardActiveTotal, p.value.payload) : undefined;
    expect(v?.ok && v.value.kind === 'fixed' && energyWh(v.value)).toBe(1_024_000);
    const b = reply(meter, readRequest('000000001102', DI.forwardActiveBlock));
    const pb = b?.frame.ok ? parseReadReply(b.frame.value, '000000001102', DI.forwardActiveBlock) : undefined;
    const vb = pb?.ok ? decodeValue(DI.forwardActiveBlock, pb.value.payload) : undefined;
    expect(vb?.ok && vb.value.kind === 'block' && vb.value.items.map(energyWh)).toEqual([1_024_000, 0, 6000, 4000, 14_000]);
  });

  it('answers voltage, current, power, date and time', () => {
    const get = (di: number) => {
      const r = reply(meter, readRequest('000000001102', di));
      const p = r?.frame.ok ? parseReadReply(r.frame.value, '000000001102', di) : undefined;
      return p?.ok ? decodeValue(di, p.value.payload) : undefined;
    };
    expect(get(DI.voltage(2))).toMatchObject({ ok: true, value: { units: 2299 } });
    expect(get(DI.current(3))).toMatchObject({ ok: true, value: { units: 1500 } });
    expect(get(DI.activePowerTotal)).toMatchObject({ ok: true, value: { units: 20_000, decimals: 4 } });
    expect(get(DI.date)).toEqual({ ok: true, value: { kind: 'date', year: 2026, month: 3, day: 2, weekday: 1 } });
    expect(get(DI.time)).toEqual({ ok: true, value: { kind: 'time', hour: 12, minute: 0, second: 0 } });
  });

  it('sends "no such data" for identifiers it does not have', () => {
    const r = reply(meter, readRequest('000000001102', DI.forwardActiveTariff(9)));
    expect(r?.frame.ok && r.frame.value.control).toBe(0xd1);
    const p = r?.frame.ok ? parseReadReply(r.frame.value, '000000001102', DI.forwardActiveTariff(9)) : undefined;
    expect(p).toMatchObject({ ok: false, error: { kind: 'meter-error', meterError: { noData: true } } });
    expect(reply(meter, readRequest('000000001102', 0x04000401))?.frame).toMatchObject({ ok: true, value: { control: 0xd1 } });
  });

  it('answers the wildcard and read-address only when alone; never broadcasts or other addresses', () => {
    expect(reply(meter, readRequest('AAAAAAAAAAAA', DI.forwardActiveTotal))?.frame.ok).toBe(true);
    expect(reply(meter, readRequest('AAAAAAAAAAAA', DI.forwardActiveTotal), false)).toBeUndefined();
    const a = reply(meter, readAddressRequest());
    expect(a?.frame.ok && parseReadAddressReply(a.frame.value)).toEqual({ ok: true, value: '000000001102' });
    expect(reply(meter, readRequest('000000001103', DI.forwardActiveTotal))).toBeUndefined();
    // Within the standard's +-5 min of the meter's clock (12:00 local), so the meter takes it.
    expect(reply(meter, timeSyncBroadcast({ year: 2026, month: 3, day: 2, hour: 12, minute: 3, second: 0 }))).toBeUndefined();
    const t = reply(meter, readRequest('000000001102', DI.time));
    const p = t?.frame.ok ? parseReadReply(t.frame.value, '000000001102', DI.time) : undefined;
    expect(p?.ok && decodeValue(DI.time, p.value.payload)).toEqual({ ok: true, value: { kind: 'time', hour: 12, minute: 3, second: 0 } });
  });

  it('faults: slow, corrupt, silent', () => {
    meter.faults.delayMs = 700;
    expect(reply(meter, readRequest('000000001102', DI.forwardActiveTotal))?.delayMs).toBe(700);
    meter.faults.delayMs = 0;
    meter.faults.corrupt = true;
    expect(reply(meter, readRequest('000000001102', DI.forwardActiveTotal))?.frame).toMatchObject({ ok: false, error: { kind: 'bad-checksum' } });
    meter.faults.corrupt = false;
    meter.faults.silent = true;
    expect(reply(meter, readRequest('000000001102', DI.forwardActiveTotal))).toBeUndefined();
    meter.faults.silent = false;
  });

  it('a line hears requests between Modbus traffic and noise', () => {
    const line = new Dlt645Line([meter]);
    const modbus = [0x0b, 0x04, 0x00, 0x00, 0x00, 0x02, 0x71, 0x68]; // a Modbus request ending in 68
    const req = readRequest('000000001102', DI.forwardActiveTotal);
    const replies = [...line.receive(Uint8Array.from(modbus)), ...line.receive(req.slice(0, 9)), ...line.receive(req.slice(9))];
    expect(replies).toHaveLength(1);
    expect(decodeFrame(replies[0].bytes)).toMatchObject({ ok: true, value: { control: 0x91 } });
    expect(FN.read).toBe(0x11);
  });
});
