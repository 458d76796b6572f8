import type { FrameCheck } from '../../bus/index.ts';

/**
 * Modbus RTU framing for the read functions (03, 04) the register maps use. Our own
 * rather than modbus-serial's: the bus scheduler owns the port, and an RTU frame is
 * unit + PDU + CRC, small enough to write and test against pymodbus and the simulator.
 */

const CRC_TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let j = 0; j < 8; j++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
    t[i] = c;
  }
  return t;
})();

/** CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF), sent low byte first. */
export function crc16(bytes: Uint8Array, end = bytes.length): number {
  let crc = 0xffff;
  for (let i = 0; i < end; i++) crc = (crc >>> 8) ^ CRC_TABLE[(crc ^ bytes[i]) & 0xff];
  return crc;
}

export function readRequest(unit: number, functionCode: 3 | 4, start: number, count: number): Buffer {
  const b = Buffer.alloc(8);
  b[0] = unit;
  b[1] = functionCode;
  b.writeUInt16BE(start, 2);
  b.writeUInt16BE(count, 4);
  b.writeUInt16LE(crc16(b, 6), 6);
  return b;
}

/**
 * The frame predicate of a read reply from `unit`: normal reply unit, fc, byte count,
 * data, CRC (5 + n bytes); exception reply unit, fc | 0x80, code, CRC (5 bytes). Bytes
 * that cannot start such a frame (noise, another unit's late reply) are skipped one at
 * a time so a real reply behind them is still found. A complete frame is returned even
 * with a bad CRC: parseReadReply reports it as a CRC error.
 */
export function readReplyCheck(unit: number, functionCode: 3 | 4): FrameCheck {
  return (b) => {
    if (b[0] !== unit) return -1;
    if (b.length < 2) return 0;
    if (b[1] === (functionCode | 0x80)) return b.length >= 5 ? 5 : 0;
    if (b[1] !== functionCode) return -1;
    if (b.length < 3) return 0;
    const n = 5 + b[2];
    return b.length >= n ? n : 0;
  };
}

export type ReadReply =
  | { readonly ok: true; readonly registers: number[] }
  | { readonly ok: false; readonly kind: 'crc' | 'exception' | 'protocol'; readonly message: string; readonly code?: number };

/** Decodes a complete reply frame (as readReplyCheck delimited it). */
export function parseReadReply(frame: Buffer, functionCode: 3 | 4, count: number): ReadReply {
  const n = frame.length;
  if (n < 5) return { ok: false, kind: 'protocol', message: `reply of ${n} bytes is too short` };
  const crc = frame.readUInt16LE(n - 2);
  if (crc16(frame, n - 2) !== crc) return { ok: false, kind: 'crc', message: `CRC mismatch in ${n}-byte reply (got ${crc.toString(16).padStart(4, '0')}, expected ${crc16(frame, n - 2).toString(16).padStart(4, '0')})` };
  if (frame[1] === (functionCode | 0x80)) return { ok: false, kind: 'exception', code: frame[2], message: `exception ${frame[2]}` };
  if (frame[2] !== count * 2) return { ok: false, kind: 'protocol', message: `reply carries ${frame[2]} bytes, asked for ${count} registers` };
  const registers: number[] = [];
  for (let i = 0; i < count; i++) registers.push(frame.readUInt16BE(3 + 2 * i));
  return { ok: true, registers };
}
