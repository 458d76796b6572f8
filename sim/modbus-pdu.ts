import type { RegisterMap } from '../collector/wire.ts';
import { isReadable, crc16 } from '../collector/wire.ts';

/**
 * Modbus PDU handling shared by the TCP and RTU servers, written out by hand (not a
 * library server) because the simulator must misbehave on purpose: exceptions on demand,
 * silence, corrupted CRCs (Modbus Application Protocol V1.1b3 sections 6.3, 6.4, 7).
 */

export const EXCEPTION = {
  ILLEGAL_FUNCTION: 0x01,
  ILLEGAL_DATA_ADDRESS: 0x02,
  ILLEGAL_DATA_VALUE: 0x03,
  SERVER_DEVICE_FAILURE: 0x04,
  SERVER_DEVICE_BUSY: 0x06,
  GATEWAY_PATH_UNAVAILABLE: 0x0a,
  GATEWAY_TARGET_FAILED: 0x0b,
} as const;

/** Exception response PDU: function code with the high bit set, then the code. */
export function exceptionPdu(functionCode: number, code: number): Buffer {
  return Buffer.from([(functionCode | 0x80) & 0xff, code & 0xff]);
}

/**
 * Answers a request PDU for one meter: function 03/04 reads as the real meter (its own
 * function code and the ones it also answers), exceptions otherwise: 01 for other
 * functions, 03 for a count of 0 or above the meter's limit, 02 for registers the meter
 * does not have. `image` is called only for a valid read.
 */
export function answerPdu(map: RegisterMap, pdu: Buffer, image: () => ReadonlyMap<number, number>): Buffer {
  const fc = pdu[0];
  if (fc !== map.functionCode && !map.alsoAnswers.includes(fc as 3 | 4)) return exceptionPdu(fc, EXCEPTION.ILLEGAL_FUNCTION);
  if (pdu.length !== 5) return exceptionPdu(fc, EXCEPTION.ILLEGAL_DATA_VALUE);
  const start = pdu.readUInt16BE(1);
  const count = pdu.readUInt16BE(3);
  // Spec limit 125 registers per read (0x7D); the meter's own limit may be lower.
  if (count < 1 || count > 125 || count > map.maxRegistersPerRead) return exceptionPdu(fc, EXCEPTION.ILLEGAL_DATA_VALUE);
  if (start + count > 0x10000 || !isReadable(map, start, count)) return exceptionPdu(fc, EXCEPTION.ILLEGAL_DATA_ADDRESS);
  const regs = image();
  const out = Buffer.alloc(2 + count * 2);
  out[0] = fc;
  out[1] = count * 2;
  for (let i = 0; i < count; i++) out.writeUInt16BE(regs.get(start + i) ?? 0, 2 + i * 2);
  return out;
}

/** True if a read request [start, start+count) covers the register at `address`. */
export function requestCovers(pdu: Buffer, address: number): boolean {
  if (pdu.length < 5 || (pdu[0] !== 3 && pdu[0] !== 4)) return false;
  const start = pdu.readUInt16BE(1);
  const count = pdu.readUInt16BE(3);
  return address >= start && address < start + count;
}

// One CRC-16/MODBUS for the collector and the simulator; the independent check of both
// is mbpoll and pymodbus talking to them (sim/pymodbus.test.ts, collector interop tests).
export { crc16 };

/** An RTU ADU: unit, PDU, CRC (low byte first). */
export function rtuFrame(unit: number, pdu: Buffer): Buffer {
  const out = Buffer.alloc(pdu.length + 3);
  out[0] = unit;
  pdu.copy(out, 1);
  out.writeUInt16LE(crc16(out, out.length - 2), out.length - 2);
  return out;
}

export function rtuCrcOk(frame: Buffer): boolean {
  return frame.length >= 4 && crc16(frame, frame.length - 2) === frame.readUInt16LE(frame.length - 2);
}
