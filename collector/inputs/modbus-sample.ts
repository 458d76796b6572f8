import type { Meter } from '../../core/index.ts';
import type { RegisterBlock } from './modbus/maps.ts';
import { decodeReading } from './modbus/maps.ts';
import type { Sample } from '../sample.ts';
import { MeterReadError } from '../input.ts';

/**
 * One Sample from the register blocks of a meter's read plan. A register that decodes
 * to no valid energy count (NaN, negative) is a bad value: flagged as MeterReadError
 * kind `value` and kept out of the data, never written as a number.
 */
export function modbusSample(meter: Meter, mapName: string, blocks: readonly RegisterBlock[], time: number): Sample {
  let d;
  try {
    d = decodeReading(mapName, blocks);
  } catch (err) {
    throw new MeterReadError(meter.id, 'value', (err as Error).message);
  }
  const s: { -readonly [K in keyof Sample]: Sample[K] } = { meter: meter.id, time, wh: d.wh, w: d.w, v: d.v, a: d.a };
  if (d.pf !== undefined) s.pf = d.pf;
  if (d.hz !== undefined) s.hz = d.hz;
  if (d.phases) s.phases = d.phases;
  return s;
}

/** Text of a Modbus exception code (Modbus Application Protocol v1.1b3, 7). */
export function exceptionText(code: number): string {
  const names: Record<number, string> = {
    1: 'illegal function',
    2: 'illegal data address',
    3: 'illegal data value',
    4: 'server device failure',
    5: 'acknowledge',
    6: 'server device busy',
    10: 'gateway path unavailable',
    11: 'gateway target device failed to respond',
  };
  return `exception ${code} (${names[code] ?? 'unknown'})`;
}
