import type { FrameCheck } from '../bus/index.ts';
import { crc16 } from '../inputs/modbus-rtu/rtu-frame.ts';

/**
 * Modbus RTU single-register writes for relay commands (Modbus Application Protocol
 * v1.1b3 6.6 write single register, 6.12 write multiple registers): the request, the
 * frame predicate of its reply and the reply check. Beside rtu-frame.ts (reads), with the
 * same CRC.
 */

/** 06: unit 06 addr value CRC; 16: unit 10 addr 0001 02 value CRC. */
export function writeRequest(unit: number, functionCode: 6 | 16, address: number, value: number): Buffer {
  const b = functionCode === 6 ? Buffer.alloc(8) : Buffer.alloc(11);
  b[0] = unit;
  b[1] = functionCode;
  b.writeUInt16BE(address, 2);
  if (functionCode === 6) b.writeUInt16BE(value, 4);
  else {
    b.writeUInt16BE(1, 4);
    b[6] = 2;
    b.writeUInt16BE(value, 7);
  }
  b.writeUInt16LE(crc16(b, b.length - 2), b.length - 2);
  return b;
}

/** Replies: 8 bytes (06 echoes address and value, 16 echoes address and count), or a 5-byte exception. */
export function writeReplyCheck(unit: number, functionCode: 6 | 16): FrameCheck {
  return (b) => {
    if (b[0] !== unit) return -1;
    if (b.length < 2) return 0;
    if (b[1] === (functionCode | 0x80)) return b.length >= 5 ? 5 : 0;
    if (b[1] !== functionCode) return -1;
    return b.length >= 8 ? 8 : 0;
  };
}

export type WriteReply = { readonly ok: true } | { readonly ok: false; readonly kind: 'crc' | 'exception' | 'protocol'; readonly message: string; readonly code?: number };

export function parseWriteReply(frame: Buffer, functionCode: 6 | 16, address: number): WriteReply {
  const n = frame.length;
  if (n < 5) return { ok: false, kind: 'protocol', message: `write reply of ${n} bytes is too short` };
  if (crc16(frame, n - 2) !== frame.readUInt16LE(n - 2)) return { ok: false, kind: 'crc', message: `CRC mismatch in the ${n}-byte write reply` };
  if (frame[1] === (functionCode | 0x80)) return { ok: false, kind: 'exception', code: frame[2], message: `exception ${frame[2]}` };
  if (n !== 8 || frame.readUInt16BE(2) !== address) return { ok: false, kind: 'protocol', message: `write reply does not echo register ${address}` };
  return { ok: true };
}
