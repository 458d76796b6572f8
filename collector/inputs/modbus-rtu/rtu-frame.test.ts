import { describe, expect, it } from 'vitest';
import { crc16, parseReadReply, readReplyCheck, readRequest } from './rtu-frame.ts';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('Modbus RTU framing', () => {
  it('builds the textbook request (unit 1, fc 03, 0x0000, 10 registers -> CRC C5 CD)', () => {
    expect(readRequest(1, 3, 0, 10).toString('hex')).toBe('01030000000ac5cd');
    // Modbus over Serial Line v1.02 appendix B example: 02 07 -> CRC 41 12.
    expect(crc16(hex('0207')) & 0xff).toBe(0x41);
    expect(crc16(hex('0207')) >> 8).toBe(0x12);
  });

  it('delimits replies, skips noise and another unit, reports CRC and exceptions', () => {
    const body = hex('0b 03 04 43 66 19 9a');
    const good = Buffer.concat([body, Buffer.from([crc16(body) & 0xff, crc16(body) >> 8])]);
    const check = readReplyCheck(11, 3);
    expect(check(good.subarray(0, 4))).toBe(0);
    expect(check(good)).toBe(9);
    expect(check(hex('ff'))).toBe(-1);
    expect(check(hex('0c 03'))).toBe(-1);
    expect(parseReadReply(good, 3, 2)).toEqual({ ok: true, registers: [0x4366, 0x199a] });
    const bad = Buffer.from(good);
    bad[4] ^= 1;
    expect(parseReadReply(bad, 3, 2)).toMatchObject({ ok: false, kind: 'crc' });
    const exBody = hex('0b 83 02');
    const ex = Buffer.concat([exBody, Buffer.from([crc16(exBody) & 0xff, crc16(exBody) >> 8])]);
    expect(check(ex)).toBe(5);
    expect(parseReadReply(ex, 3, 2)).toMatchObject({ ok: false, kind: 'exception', code: 2 });
    expect(parseReadReply(good, 3, 4)).toMatchObject({ ok: false, kind: 'protocol' });
  });
});
