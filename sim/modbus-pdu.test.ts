import { describe, expect, it } from 'vitest';
import { MODBUS_REGISTER_MAPS } from '../collector/inputs/modbus/maps.ts';
import { answerPdu, crc16, rtuCrcOk, rtuFrame } from './modbus-pdu.ts';
import { modbusRtuHandler } from './serial-server.ts';
import type { SerialBusContext } from './serial-server.ts';

const sdm630 = MODBUS_REGISTER_MAPS.sdm630;
const image = () => new Map([[0x48, 0x4142], [0x49, 0x4344]]);
const pdu = (...b: number[]) => Buffer.from(b);

describe('Modbus PDU answers', () => {
  it('reads registers with the meter function code, big-endian words', () => {
    expect([...answerPdu(sdm630, pdu(4, 0, 0x48, 0, 2), image)]).toEqual([4, 4, 0x41, 0x42, 0x43, 0x44]);
  });

  it('answers exceptions 01, 02, 03 as the meters do', () => {
    expect([...answerPdu(sdm630, pdu(3, 0, 0, 0, 2), image)]).toEqual([0x83, 1]); // holding regs: not on an SDM630
    expect([...answerPdu(sdm630, pdu(6, 0, 0, 0, 1), image)]).toEqual([0x86, 1]); // writes: not supported
    expect([...answerPdu(sdm630, pdu(4, 0x03, 0x00, 0, 2), image)]).toEqual([0x84, 2]); // no register 0x0300
    expect([...answerPdu(sdm630, pdu(4, 0x00, 0xfe, 0, 4), image)]).toEqual([0x84, 2]); // runs past the last range
    expect([...answerPdu(sdm630, pdu(4, 0, 0, 0, 0), image)]).toEqual([0x84, 3]); // count 0
    expect([...answerPdu(sdm630, pdu(4, 0, 0, 0, 41), image)]).toEqual([0x84, 3]); // above the 40-register limit
    expect([...answerPdu(sdm630, pdu(4, 0, 0), image)]).toEqual([0x84, 3]); // truncated
  });

  it('answers a DDSU666 on 03 and on 04 (CHINT units accept both)', () => {
    const m = MODBUS_REGISTER_MAPS.ddsu666;
    expect(answerPdu(m, pdu(3, 0x40, 0, 0, 2), image)[0]).toBe(3);
    expect(answerPdu(m, pdu(4, 0x40, 0, 0, 2), image)[0]).toBe(4);
  });
});

describe('RTU framing', () => {
  it('computes the Modbus CRC (01 03 00 00 00 0A -> C5 CD on the wire)', () => {
    const f = rtuFrame(1, pdu(3, 0, 0, 0, 0x0a));
    expect([...f.subarray(6)]).toEqual([0xc5, 0xcd]);
    expect(rtuCrcOk(f)).toBe(true);
    expect(crc16(Buffer.from('123456789'))).toBe(0x4b37); // CRC-16/MODBUS check value
  });

  it('frames requests by function code, waits for the rest, skips noise', () => {
    const bus = {} as SerialBusContext;
    const read = rtuFrame(11, pdu(4, 0, 0, 0, 2));
    expect(modbusRtuHandler.match(read.subarray(0, 5), bus)).toBe('incomplete');
    expect(modbusRtuHandler.match(read, bus)).toEqual({ length: 8 });
    const write = rtuFrame(11, pdu(16, 0, 0, 0, 2, 4, 1, 2, 3, 4));
    expect(modbusRtuHandler.match(write, bus)).toEqual({ length: 13 });
    expect(modbusRtuHandler.match(Buffer.from([0x00, 0x00, 0x11]), bus)).toBe('none');
    const ident = rtuFrame(11, pdu(0x2b, 0x0e, 1, 0));
    expect(modbusRtuHandler.match(ident, bus)).toEqual({ length: ident.length });
  });
});
