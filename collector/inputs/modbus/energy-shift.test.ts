import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Dec } from '../../../core/index.ts';
import { MODBUS_REGISTER_MAPS, decodeReading, encodeRegisters, float32Text, shiftRoundHalfUp } from './maps.ts';

/**
 * Energy registers to integer Wh by moving decimal digits (shiftRoundHalfUp) must give
 * exactly what Decimal gives (x 10^k, rounded half up), on the shortest float32 texts the
 * decoder produces and on toPrecision texts with exponents.
 */
const viaDecimal = (text: string, k: number) => new Dec(text).times(new Dec(10).pow(k)).toDecimalPlaces(0, Dec.ROUND_HALF_UP).toNumber();

describe('shiftRoundHalfUp', () => {
  it('equals Decimal on float32 register values', () => {
    fc.assert(
      fc.property(fc.float({ min: 0, max: 3e9, noNaN: true }), fc.integer({ min: 0, max: 4 }), (v, k) => {
        const text = float32Text(Math.fround(v));
        expect(shiftRoundHalfUp(text, k)).toBe(viaDecimal(text, k));
      }),
      { numRuns: 5000 },
    );
  });

  it('equals Decimal on texts with exponents, halves and leading zeros', () => {
    const texts = fc.oneof(
      fc.tuple(fc.double({ min: 0, max: 1e12, noNaN: true }), fc.integer({ min: 1, max: 12 })).map(([v, p]) => v.toPrecision(p)),
      fc.constantFrom('0', '0.5', '0.0005', '0.00049', '1.5', '2.4999', '12345.6785', '1e+5', '1.23e+5', '9.99995e+3', '0.001234'),
    );
    fc.assert(
      fc.property(texts, fc.integer({ min: 0, max: 4 }), (text, k) => {
        expect(shiftRoundHalfUp(text, k)).toBe(viaDecimal(text, k));
      }),
      { numRuns: 5000 },
    );
  });

  it('decodes every map’s energy register as before: encoded Wh read back', () => {
    for (const name of Object.keys(MODBUS_REGISTER_MAPS)) {
      for (const wh of [0, 1, 999, 1_000, 123_456_789, 9_876_543_210]) {
        const regs = encodeRegisters(name, { wh, w: 0, v: 230, a: 0, pf: 1, hz: 50 });
        const map = MODBUS_REGISTER_MAPS[name as keyof typeof MODBUS_REGISTER_MAPS];
        const blocks = map.plan.map((b) => ({ start: b.start, registers: Array.from({ length: b.count }, (_, i) => regs.get(b.start + i) ?? 0) }));
        const got = decodeReading(name, blocks).wh;
        // Integer registers count whole steps (floor); float registers hold the nearest float32 of kWh.
        const f = map.fields.find((x) => x.quantity === 'energy_import')!;
        const expected = f.type === 'float32' ? viaDecimal(float32Text(Math.fround(wh / 1000)), 3) : Math.floor(wh / (f.scale * (f.unit === 'kWh' ? 1000 : 1))) * new Dec(String(f.scale)).times(f.unit === 'kWh' ? 1000 : 1).toNumber();
        expect(got, `${name} ${wh}`).toBe(expected);
      }
    }
  });
});
