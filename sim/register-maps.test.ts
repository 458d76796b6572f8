import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MODBUS_MAPS } from '../core/index.ts';
import {
  decodeReading,
  encodeRegisters,
  energyStepWh,
  fieldWords,
  float32Text,
  isReadable,
  MODBUS_REGISTER_MAPS,
  registerMap,
} from '../collector/inputs/modbus/maps.ts';
import type { RegisterBlock, RegisterMap } from '../collector/inputs/modbus/maps.ts';

/** Reads the plan's blocks out of a register image, as a client would on the wire. */
function readPlan(map: RegisterMap, image: Map<number, number>): RegisterBlock[] {
  return map.plan.map((b) => ({ start: b.start, registers: Array.from({ length: b.count }, (_, i) => image.get(b.start + i) ?? 0) }));
}

describe('register maps', () => {
  it('cover every map name the site schema accepts', () => {
    expect(Object.keys(MODBUS_REGISTER_MAPS).sort()).toEqual([...MODBUS_MAPS].sort());
  });

  for (const name of MODBUS_MAPS) {
    const map = MODBUS_REGISTER_MAPS[name];
    describe(name, () => {
      it('plans reads that cover every field within the size limit and readable ranges', () => {
        for (const f of map.fields) {
          expect(map.plan.some((b) => f.address >= b.start && f.address + fieldWords(f) <= b.start + b.count)).toBe(true);
        }
        for (const b of map.plan) {
          expect(b.count).toBeLessThanOrEqual(map.maxRegistersPerRead);
          expect(b.functionCode).toBe(map.functionCode);
          expect(isReadable(map, b.start, b.count)).toBe(true);
        }
        // Fewer transactions than fields: the point of a plan.
        expect(map.plan.length).toBeLessThan(map.fields.length);
      });

      it('round-trips integer Wh exactly and instantaneous values closely', () => {
        // float32 kWh resolves 1 Wh only below 8192 kWh (2^13 kWh: ulp 2^-10 kWh < 1 Wh).
        const whMax = map.fields.find((f) => f.quantity === 'energy_import')!.type === 'float32' ? 8_191_999 : 2_000_000_000;
        const step = energyStepWh(name); // ADW300 and DDS238 count 0.01 kWh
        // int16 power registers (DDS238) hold at most 32767 W, as on the real single-phase meter.
        const wMax = map.fields.some((f) => f.quantity === 'power' && f.type === 'int16') ? 32_767 : 200_000;
        fc.assert(
          fc.property(fc.integer({ min: 0, max: whMax }), fc.integer({ min: 0, max: wMax }), fc.double({ min: 200, max: 250, noNaN: true }), (wh, w, v) => {
            const pf = 0.95;
            const a = map.phases === 3 ? [w / 3 / v / pf, w / 3 / v / pf, w / 3 / v / pf] : [w / v / pf];
            const r = decodeReading(name, readPlan(map, encodeRegisters(name, { wh, w, v, a, pf, hz: 50.02 })));
            expect(r.wh).toBe(Math.floor(wh / step) * step);
            expect(Number.isInteger(r.wh)).toBe(true);
            expect(Math.abs(r.w - w)).toBeLessThanOrEqual(Math.max(0.5, w * 1e-6));
            expect(Math.abs(r.v - v)).toBeLessThanOrEqual(0.051);
            const aSum = a.reduce((s, x) => s + x, 0);
            expect(Math.abs(r.a - aSum)).toBeLessThanOrEqual(name === 'adw300' || name === 'dds238' ? 0.016 : 1e-3 * Math.max(1, aSum));
            if (map.fields.some((f) => f.quantity === 'pf')) expect(r.pf).toBeCloseTo(pf, 5);
            if (map.fields.some((f) => f.quantity === 'frequency')) expect(r.hz).toBeCloseTo(50.02, 5);
          }),
          { numRuns: 300, seed: 42 },
        );
      });
    });
  }

  it('decodes the float32 of 123.456 kWh as 123456 Wh, not 123455 or 123457 (no float drift)', () => {
    for (const name of ['sdm630', 'sdm120', 'dtsu666', 'ddsu666'] as const) {
      const map = MODBUS_REGISTER_MAPS[name];
      expect(decodeReading(name, readPlan(map, encodeRegisters(name, { wh: 123_456, w: 0, v: 230, a: 0 }))).wh).toBe(123_456);
    }
    // 0.1 + 0.2 style: the double 0.3000000119 is the float32 "0.3".
    expect(float32Text(Math.fround(0.3))).toBe('0.3');
    expect(float32Text(Math.fround(8191.999))).toBe('8191.999');
  });

  it('above 8192 kWh a float32 register is off by at most half its resolution, never drifting', () => {
    const map = MODBUS_REGISTER_MAPS.sdm630;
    for (const wh of [8_192_000, 12_345_678, 99_999_999, 999_999_999]) {
      const r = decodeReading('sdm630', readPlan(map, encodeRegisters('sdm630', { wh, w: 0, v: 230, a: 0 })));
      const ulpWh = 2 ** (Math.floor(Math.log2(wh / 1000)) - 23) * 1000;
      expect(Math.abs(r.wh - wh)).toBeLessThanOrEqual(ulpWh / 2 + 1);
      expect(Number.isInteger(r.wh)).toBe(true);
    }
  });

  it('matches a captured SDM/CHINT frame: 43 66 33 34 is 230.2 V (Tasmota xnrg_11 comment)', () => {
    const r = decodeReading('ddsu666', [
      { start: 0x2000, registers: [0x4366, 0x3334, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] },
      { start: 0x4000, registers: [0, 0] },
    ]);
    expect(r.v).toBe(230.2);
  });

  it('puts words high first and the scaled units where the datasheets say', () => {
    const dt = encodeRegisters('dtsu666', { wh: 1000, w: 1234.5, v: 230, a: 1, pf: 1, hz: 50 });
    // DTSU666 power is float32 in 0.1 W: 12345 = 0x4640E400.
    expect([dt.get(0x2012), dt.get(0x2013)]).toEqual([0x4640, 0xe400]);
    // Import kWh at 0x401E and the firmware alias 0x101E: 1.0 = 0x3F800000.
    expect([dt.get(0x401e), dt.get(0x401f), dt.get(0x101e), dt.get(0x101f)]).toEqual([0x3f80, 0, 0x3f80, 0]);
    const adw = encodeRegisters('adw300', { wh: 12_345_678, w: 70_000, v: 230.1, a: 12.34 });
    // 12345.678 kWh in 0.01 kWh counts: floor(1234567.8) = 1234567 = 0x0012D687.
    expect([adw.get(62), adw.get(63)]).toEqual([0x0012, 0xd687]);
    expect([adw.get(36), adw.get(37)]).toEqual([0x0001, 0x1170]);
    expect(adw.get(20)).toBe(2301);
    expect(adw.get(26)).toBe(1234);
  });

  it('reads DTSU666 import at 0x101E when the map option says so', () => {
    const map = registerMap('dtsu666', { importAddress: 0x101e });
    expect(map.plan.some((b) => b.start === 0x101e)).toBe(true);
    const image = encodeRegisters('dtsu666', { wh: 42_000, w: 0, v: 230, a: 0 });
    expect(decodeReading('dtsu666', readPlan(map, image), { importAddress: 0x101e }).wh).toBe(42_000);
  });

  it('rejects unknown maps, missing registers and invalid energy with clear errors', () => {
    expect(() => registerMap('sdm72')).toThrow(/unknown Modbus register map 'sdm72'/);
    expect(() => decodeReading('sdm630', [{ start: 0, registers: new Array(12).fill(0) }])).toThrow(/register 0x0034/);
    const nan = encodeRegisters('sdm120', { wh: 0, w: 0, v: 230, a: 0 });
    nan.set(0x48, 0x7fc0);
    expect(() => decodeReading('sdm120', readPlan(MODBUS_REGISTER_MAPS.sdm120, nan))).toThrow(/import energy register/);
    expect(() => encodeRegisters('sdm120', { wh: 1.5, w: 0, v: 230, a: 0 })).toThrow(/non-negative integer/);
  });
});
