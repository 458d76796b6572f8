import { Point } from '@influxdata/influxdb-client';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FastPoint } from './fast-point.ts';

/**
 * FastPoint must write exactly what Point writes: same escaping, same tag and field
 * order, same number formatting. Random names and values include every character line
 * protocol escapes, repeated keys and empty tag values.
 */
const text = fc.string({ unit: fc.constantFrom('a', 'b', 'z', 'A', '_', '0', ',', ' ', '=', '"', '\\', '\n', '\r', '\t', 'é', '电'), maxLength: 6 });
const op = fc.oneof(
  fc.record({ kind: fc.constant('tag' as const), name: text, value: text }),
  fc.record({ kind: fc.constant('int' as const), name: text, value: fc.integer({ min: -(2 ** 53) + 1, max: 2 ** 53 - 1 }) }),
  fc.record({ kind: fc.constant('float' as const), name: text, value: fc.double({ noNaN: true, noDefaultInfinity: true }) }),
  fc.record({ kind: fc.constant('bool' as const), name: text, value: fc.boolean() }),
  fc.record({ kind: fc.constant('string' as const), name: text, value: text }),
);

describe('FastPoint', () => {
  it('writes the same line as Point for random tags, fields and times', () => {
    fc.assert(
      fc.property(text, fc.array(op, { maxLength: 12 }), fc.integer({ min: 0, max: 2 ** 50 }), (measurement, ops, time) => {
        const p = new Point(measurement);
        const f = new FastPoint(measurement);
        for (const o of ops) {
          if (o.kind === 'tag') (p.tag(o.name, o.value), f.tag(o.name, o.value));
          else if (o.kind === 'int') (p.intField(o.name, o.value), f.intField(o.name, o.value));
          else if (o.kind === 'float') (p.floatField(o.name, o.value), f.floatField(o.name, o.value));
          else if (o.kind === 'bool') (p.booleanField(o.name, o.value), f.booleanField(o.name, o.value));
          else (p.stringField(o.name, o.value), f.stringField(o.name, o.value));
        }
        p.timestamp(time);
        f.timestamp(time);
        expect(f.toLineProtocol()).toBe(p.toLineProtocol());
      }),
      { numRuns: 5000 },
    );
  });

  it('refuses what Point refuses, and a line without a time', () => {
    expect(() => new FastPoint('m').floatField('x', Number.NaN)).toThrow(/invalid float value for field 'x'/);
    expect(() => new FastPoint('m').floatField('x', Infinity)).toThrow(/invalid float/);
    expect(() => new FastPoint('m').intField('x', 2 ** 64)).toThrow(/invalid integer value for field 'x'/);
    expect(new FastPoint('m').tag('a', 'b').toLineProtocol()).toBeUndefined();
    expect(() => new FastPoint('m').intField('x', 1).toLineProtocol()).toThrow(/no timestamp/);
  });
});
