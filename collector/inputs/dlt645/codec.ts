/**
 * DL/T 645-2007 codec: frames, addresses, control bytes, data identifiers and their BCD
 * value formats. Pure: no I/O, no clock. Nothing in here throws on bad input bytes; every
 * decoder returns a `Result` whose error is a typed `CodecError` (style.md practice 5: the
 * caller decides retries from the kind). Encoders throw `RangeError` only on programmer
 * errors (an address that is not 12 BCD digits, a value that does not fit its format).
 *
 * Facts and test vectors: docs/protocols.md, section "DL/T 645-2007".
 */

// ---------------------------------------------------------------------------------------
// Results and errors

export type Result<T, E = CodecError> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: E };

export const ok = <T>(value: T): { ok: true; value: T } => ({ ok: true, value });
export const err = <E>(error: E): { ok: false; error: E } => ({ ok: false, error });

export type CodecErrorKind =
  /** The bytes end before the frame does. */
  | 'truncated'
  /** Bytes before a frame start that belong to no frame (not FE wake-up bytes). */
  | 'garbage'
  /** A `68` not followed by a second `68` after the address. */
  | 'bad-start'
  /** L above the standard's 200-byte maximum for data. */
  | 'bad-length'
  | 'bad-checksum'
  /** The byte after CS is not `16`. */
  | 'bad-end'
  /** An address byte that is neither BCD nor the AA wildcard. */
  | 'bad-address'
  /** Bytes after a complete frame where exactly one frame was expected. */
  | 'trailing'
  /** A nibble above 9 in a BCD value. */
  | 'bad-bcd'
  /** The reply does not match the request: direction, function, address, DI or data length. */
  | 'unexpected-reply'
  /** The meter answered with an error reply (bit 6 of C set); `meterError` says why. */
  | 'meter-error';

export interface CodecError {
  readonly kind: CodecErrorKind;
  readonly message: string;
  /** Byte offset in the input where the problem was found, when it applies. */
  readonly offset?: number;
  /** Decoded error byte of an error reply (kind 'meter-error'). */
  readonly meterError?: MeterErrorBits;
}

const fail = (kind: CodecErrorKind, message: string, extra: Partial<CodecError> = {}): { ok: false; error: CodecError } =>
  err({ kind, message, ...extra });

// ---------------------------------------------------------------------------------------
// Frame layout (protocols.md): [FE...] 68 A0..A5 68 C L DATA CS 16

export const WAKEUP = 0xfe;
export const START = 0x68;
export const END = 0x16;
/** Every data byte is sent +33H (mod 256); 33H is subtracted on receipt. */
export const DATA_OFFSET = 0x33;
/** DL/T 645-2007 clause 6.2 (frame format): L <= 200 for reads; anything longer is not a frame. */
export const MAX_DATA_LENGTH = 200;
/** 68 + 6 address + 68 + C + L + CS + 16: a frame with no data. */
export const FRAME_OVERHEAD = 12;
/** Wake-up bytes we send before each request: most meters need some to wake the UART; 4 is what the standard shows. */
export const DEFAULT_WAKEUP_COUNT = 4;

/** Point-to-point wildcard (read-address and any command with a single meter on the bus). */
export const WILDCARD_ADDRESS = 'AAAAAAAAAAAA';
/** Broadcast: time sync, freeze. Meters never answer it. */
export const BROADCAST_ADDRESS = '999999999999';

export interface Frame {
  /** 12 characters, most significant digit first as printed on the meter: digits, or `AA` wildcard bytes. */
  readonly address: string;
  readonly control: number;
  /** The data field with 33H already subtracted. */
  readonly data: Uint8Array;
}

// ---------------------------------------------------------------------------------------
// Control byte (protocols.md): bit7 direction, bit6 error reply, bit5 follow-up, bits4..0 function

export const FN = {
  broadcastTimeSync: 0x08,
  read: 0x11,
  readFollowUp: 0x12,
  readAddress: 0x13,
} as const;

export interface Control {
  /** Bit 7: 1 = the meter is answering (slave to master). */
  readonly fromMeter: boolean;
  /** Bit 6: 1 = error reply (one error byte of data). */
  readonly error: boolean;
  /** Bit 5: 1 = more frames follow (read them with function 12). */
  readonly more: boolean;
  /** Bits 4..0. */
  readonly fn: number;
}

export function decodeControl(c: number): Control {
  return { fromMeter: (c & 0x80) !== 0, error: (c & 0x40) !== 0, more: (c & 0x20) !== 0, fn: c & 0x1f };
}

export function encodeControl(c: Control): number {
  if (!Number.isInteger(c.fn) || c.fn < 0 || c.fn > 0x1f) throw new RangeError(`function code must be 0..1F, got ${c.fn}`);
  return (c.fromMeter ? 0x80 : 0) | (c.error ? 0x40 : 0) | (c.more ? 0x20 : 0) | c.fn;
}

/**
 * Error byte of an error reply (DL/T 645-2007 clause 7.1, table "error information word"):
 * bit0 other error, bit1 no requested data, bit2 password wrong / unauthorised,
 * bit3 baud rate cannot be changed, bit4 too many year time zones, bit5 too many day
 * periods, bit6 too many tariffs; bit7 reserved.
 */
export interface MeterErrorBits {
  readonly raw: number;
  readonly other: boolean;
  readonly noData: boolean;
  readonly unauthorised: boolean;
  readonly baudRateFixed: boolean;
  readonly tooManyYearZones: boolean;
  readonly tooManyDayPeriods: boolean;
  readonly tooManyTariffs: boolean;
}

export function decodeMeterError(raw: number): MeterErrorBits {
  return {
    raw,
    other: (raw & 0x01) !== 0,
    noData: (raw & 0x02) !== 0,
    unauthorised: (raw & 0x04) !== 0,
    baudRateFixed: (raw & 0x08) !== 0,
    tooManyYearZones: (raw & 0x10) !== 0,
    tooManyDayPeriods: (raw & 0x20) !== 0,
    tooManyTariffs: (raw & 0x40) !== 0,
  };
}

export const METER_ERROR = { other: 0x01, noData: 0x02, unauthorised: 0x04 } as const;

function describeMeterError(bits: MeterErrorBits): string {
  const names: string[] = [];
  if (bits.other) names.push('other error');
  if (bits.noData) names.push('no such data');
  if (bits.unauthorised) names.push('password/unauthorised');
  if (bits.baudRateFixed) names.push('baud rate cannot be changed');
  if (bits.tooManyYearZones) names.push('too many year time zones');
  if (bits.tooManyDayPeriods) names.push('too many day periods');
  if (bits.tooManyTariffs) names.push('too many tariffs');
  return names.length ? names.join(', ') : `error byte ${hex(bits.raw)}`;
}

// ---------------------------------------------------------------------------------------
// Addresses: 6 bytes, lowest byte first on the wire; each byte two BCD digits or AA.

const ADDRESS_TEXT = /^(?:[0-9]{2}|AA){6}$/;

export function isAddress(text: string): boolean {
  return ADDRESS_TEXT.test(text);
}

/** `000000000161` -> wire `61 01 00 00 00 00`. */
export function encodeAddress(address: string): Uint8Array {
  if (!isAddress(address)) throw new RangeError(`DL/T 645 address must be 12 digits (or AA wildcard bytes), got ${JSON.stringify(address)}`);
  const out = new Uint8Array(6);
  for (let i = 0; i < 6; i++) {
    const pair = address.slice(10 - 2 * i, 12 - 2 * i);
    out[i] = pair === 'AA' ? 0xaa : (Number(pair[0]) << 4) | Number(pair[1]);
  }
  return out;
}

export function decodeAddress(wire: Uint8Array, offset = 0): Result<string> {
  if (offset < 0 || wire.length < offset + 6) return fail('truncated', `an address needs 6 bytes, ${Math.max(0, wire.length - offset)} given`, { offset: wire.length });
  let text = '';
  for (let i = 5; i >= 0; i--) {
    const b = wire[offset + i];
    if (b === 0xaa) text += 'AA';
    else if (isBcdByte(b)) text += b.toString(16).padStart(2, '0');
    else return fail('bad-address', `address byte A${i} is ${hex(b)}: neither BCD nor AA`, { offset: offset + i });
  }
  return ok(text);
}

// ---------------------------------------------------------------------------------------
// Frames

export interface EncodeOptions {
  /** FE bytes before the frame. @defaultValue 0 for replies; requests use DEFAULT_WAKEUP_COUNT */
  readonly wakeup?: number;
}

/** Builds the wire bytes of a frame; `frame.data` is plain (the +33H is applied here). */
export function encodeFrame(frame: Frame, opts: EncodeOptions = {}): Uint8Array {
  const wakeup = opts.wakeup ?? 0;
  if (frame.data.length > MAX_DATA_LENGTH) throw new RangeError(`data of ${frame.data.length} bytes exceeds ${MAX_DATA_LENGTH}`);
  if (!Number.isInteger(frame.control) || frame.control < 0 || frame.control > 0xff) throw new RangeError(`control byte must be 0..FF, got ${frame.control}`);
  const out = new Uint8Array(wakeup + FRAME_OVERHEAD + frame.data.length);
  out.fill(WAKEUP, 0, wakeup);
  let p = wakeup;
  out[p++] = START;
  out.set(encodeAddress(frame.address), p);
  p += 6;
  out[p++] = START;
  out[p++] = frame.control;
  out[p++] = frame.data.length;
  for (const b of frame.data) out[p++] = (b + DATA_OFFSET) & 0xff;
  out[p] = checksum(out, wakeup, p);
  out[p + 1] = END;
  return out;
}

/** CS: sum mod 256 of bytes [from, to), i.e. from the first 68 through the last data byte. */
export function checksum(bytes: Uint8Array, from: number, to: number): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum += bytes[i];
  return sum & 0xff;
}

/** One step of the scanner over a buffer (see `scanFrame`). */
export type ScanStep =
  /** A valid frame at [start, end). `wakeup` counts the FE bytes just before it. */
  | { readonly kind: 'frame'; readonly frame: Frame; readonly start: number; readonly end: number }
  /** A typed problem; skip to `resume` and scan again. */
  | { readonly kind: 'error'; readonly error: CodecError; readonly resume: number }
  /** Nothing decidable yet: wait for more bytes. `from` is where the undecided bytes begin. */
  | { readonly kind: 'need-more'; readonly from: number };

/**
 * Looks for the next frame in `buf` from `from`. FE wake-up bytes are skipped silently
 * (they may precede any frame); other bytes before a `68` are reported once as
 * 'garbage'. Resynchronisation: a checksum error with a good end byte skips the whole
 * (corrupt) frame, since its length byte was plausible; any other failure skips only the
 * `68` it started from, so a real frame starting inside the junk is still found.
 */
export function scanFrame(buf: Uint8Array, from = 0): ScanStep {
  let i = from;
  while (i < buf.length && buf[i] === WAKEUP) i++;
  let s = i;
  while (s < buf.length && buf[s] !== START) s++;
  if (s > i) {
    // Wake-up bytes after the garbage belong to the next frame, not to the garbage.
    let g = s;
    while (g > i && buf[g - 1] === WAKEUP) g--;
    if (g > i) return { kind: 'error', error: { kind: 'garbage', message: `${g - i} byte(s) outside any frame`, offset: i }, resume: g };
  }
  if (s >= buf.length) return { kind: 'need-more', from: s };
  if (buf.length - s < 10) return { kind: 'need-more', from: s };
  if (buf[s + 7] !== START) {
    return { kind: 'error', error: { kind: 'bad-start', message: `no second 68 after the address (found ${hex(buf[s + 7])})`, offset: s + 7 }, resume: s + 1 };
  }
  const len = buf[s + 9];
  if (len > MAX_DATA_LENGTH) {
    return { kind: 'error', error: { kind: 'bad-length', message: `data length ${len} exceeds ${MAX_DATA_LENGTH}`, offset: s + 9 }, resume: s + 1 };
  }
  const end = s + FRAME_OVERHEAD + len;
  if (buf.length < end) return { kind: 'need-more', from: s };
  if (buf[end - 1] !== END) {
    return { kind: 'error', error: { kind: 'bad-end', message: `frame does not end in 16 (found ${hex(buf[end - 1])})`, offset: end - 1 }, resume: s + 1 };
  }
  const cs = checksum(buf, s, end - 2);
  if (cs !== buf[end - 2]) {
    return { kind: 'error', error: { kind: 'bad-checksum', message: `checksum ${hex(buf[end - 2])}, computed ${hex(cs)}`, offset: end - 2 }, resume: end };
  }
  const address = decodeAddress(buf, s + 1);
  if (!address.ok) return { kind: 'error', error: address.error, resume: end };
  const data = new Uint8Array(len);
  for (let k = 0; k < len; k++) data[k] = (buf[s + 10 + k] - DATA_OFFSET) & 0xff;
  return { kind: 'frame', frame: { address: address.value, control: buf[s + 8], data }, start: s, end };
}

/** Decodes a buffer that must hold exactly one frame (optionally preceded by FE bytes). */
export function decodeFrame(buf: Uint8Array): Result<Frame> {
  const step = scanFrame(buf, 0);
  if (step.kind === 'need-more') return fail('truncated', `frame incomplete after ${buf.length} byte(s)`, { offset: buf.length });
  if (step.kind === 'error') return err(step.error);
  if (step.end !== buf.length) return fail('trailing', `${buf.length - step.end} byte(s) after the frame`, { offset: step.end });
  return ok(step.frame);
}

export type ScanEvent = { readonly kind: 'frame'; readonly frame: Frame } | { readonly kind: 'error'; readonly error: CodecError };

/**
 * Streaming scanner: push bytes as they arrive, get frames and typed errors out. Keeps at
 * most one frame's worth of undecided bytes (212 + wake-up bytes are bounded by the
 * skipping rules), so a babbling line cannot grow it without bound.
 */
export class FrameScanner {
  private buf: Uint8Array = new Uint8Array(0);

  push(chunk: Uint8Array): ScanEvent[] {
    let joined = chunk;
    if (this.buf.length > 0) {
      joined = new Uint8Array(this.buf.length + chunk.length);
      joined.set(this.buf, 0);
      joined.set(chunk, this.buf.length);
    }
    const events: ScanEvent[] = [];
    let pos = 0;
    for (;;) {
      const step = scanFrame(joined, pos);
      if (step.kind === 'frame') {
        events.push({ kind: 'frame', frame: step.frame });
        pos = step.end;
      } else if (step.kind === 'error') {
        events.push({ kind: 'error', error: step.error });
        pos = step.resume;
      } else {
        // Only undecided bytes from a 68 on are kept (FE wake-up bytes carry nothing).
        this.buf = step.from >= joined.length ? new Uint8Array(0) : joined.slice(step.from);
        return events;
      }
    }
  }

  /** Bytes waiting for the rest of a frame. */
  get pending(): number {
    return this.buf.length;
  }

  /** End of stream: whatever is still buffered is a truncated frame. */
  end(): ScanEvent[] {
    const n = this.buf.length;
    this.buf = new Uint8Array(0);
    return n > 0 ? [{ kind: 'error', error: { kind: 'truncated', message: `stream ended inside a frame (${n} byte(s))` } }] : [];
  }
}

/**
 * The bus scheduler's frame-complete predicate: true once `buf` holds a whole frame, valid
 * or with a bad checksum (waiting longer would not fix it), so a reply is never cut short
 * and a transaction never waits out its timeout for a frame that has fully arrived.
 */
export function isFrameComplete(buf: Uint8Array): boolean {
  let pos = 0;
  for (;;) {
    const step = scanFrame(buf, pos);
    if (step.kind === 'frame') return true;
    if (step.kind === 'need-more') return false;
    if (step.error.kind === 'bad-checksum' || step.error.kind === 'bad-address') return true;
    pos = step.resume;
  }
}

/**
 * The bus scheduler's FrameCheck (collector/bus): `0` need more, `n > 0` a complete frame
 * is the first n bytes (wake-up bytes included; a frame with a bad checksum counts as
 * complete, so the input can report it as a CRC fault at once instead of waiting out its
 * timeout), `-n` drop n bytes of garbage and look again.
 */
export function frameCheck(buf: Uint8Array): number {
  const step = scanFrame(buf, 0);
  if (step.kind === 'frame') return step.end;
  if (step.kind === 'need-more') return 0;
  if (step.error.kind === 'bad-checksum' || step.error.kind === 'bad-address') return step.resume;
  return -step.resume;
}

// ---------------------------------------------------------------------------------------
// Data identifiers: DI3 DI2 DI1 DI0 held as one uint32 (DI3 most significant), sent DI0 first.

export type DataId = number;

export const DI = {
  /** Forward active energy, total, current period: 00 01 00 00. */
  forwardActiveTotal: 0x00010000,
  /** Forward active energy, tariff n (1..63), current period: 00 01 nn 00. */
  forwardActiveTariff: (n: number): DataId => tariffDi(0x01, n),
  /** Total followed by every tariff register: 00 01 FF 00. */
  forwardActiveBlock: 0x0001ff00,
  reverseActiveTotal: 0x00020000,
  reverseActiveTariff: (n: number): DataId => tariffDi(0x02, n),
  reverseActiveBlock: 0x0002ff00,
  /** Phase voltage, 1 = A, 2 = B, 3 = C: 02 01 0p 00. */
  voltage: (phase: 1 | 2 | 3): DataId => 0x02010000 | (phase << 8),
  /** Phase current: 02 02 0p 00. */
  current: (phase: 1 | 2 | 3): DataId => 0x02020000 | (phase << 8),
  /** Instantaneous total active power: 02 03 00 00. */
  activePowerTotal: 0x02030000,
  /** Date and weekday, YYMMDDWW: 04 00 01 01. */
  date: 0x04000101,
  /** Time, hhmmss: 04 00 01 02. */
  time: 0x04000102,
  /**
   * Daily frozen data, n = 1 (the last freeze) .. 62 (0x3E) (DL/T 645-2007 appendix A,
   * table A.6 "freeze data identifiers", 日冻结 05 06 xx NN): the freeze time, YYMMDDhhmm,
   * 5 bytes: 05 06 00 NN.
   */
  dailyFreezeTime: (n: number): DataId => freezeDi(0x00, n),
  /** Forward active energy at the n-th last daily freeze, total then tariffs 1..k (as the 00 01 FF 00 block): 05 06 01 NN. */
  dailyFreezeForward: (n: number): DataId => freezeDi(0x01, n),
} as const;

/** Daily freezes a meter keeps (NN = 01..3E): 62 days. */
export const DAILY_FREEZE_DEPTH = 0x3e;

function freezeDi(item: number, n: number): DataId {
  if (!Number.isInteger(n) || n < 1 || n > DAILY_FREEZE_DEPTH) throw new RangeError(`daily freeze number must be 1..${DAILY_FREEZE_DEPTH}, got ${n}`);
  return (0x0506 << 16) | (item << 8) | n;
}

function tariffDi(kind: number, n: number): DataId {
  if (!Number.isInteger(n) || n < 1 || n > 0x3f) throw new RangeError(`tariff number must be 1..63, got ${n}`);
  return (kind << 16) | (n << 8);
}

export function encodeDi(di: DataId): Uint8Array {
  return new Uint8Array([di & 0xff, (di >>> 8) & 0xff, (di >>> 16) & 0xff, (di >>> 24) & 0xff]);
}

export function decodeDi(data: Uint8Array, offset = 0): DataId {
  return (data[offset] | (data[offset + 1] << 8) | (data[offset + 2] << 16) | (data[offset + 3] << 24)) >>> 0;
}

/** `00 01 00 00` style text of a DI, DI3 first, as the standard prints it. */
export function diText(di: DataId): string {
  return [24, 16, 8, 0].map((s) => hex((di >>> s) & 0xff)).join(' ');
}

/**
 * Value format of an identifier (DL/T 645-2007 appendix A):
 * - 'fixed': `bytes` of BCD, low byte first, with `decimals` implied decimals; `signed`
 *   formats carry the sign in bit 7 of the most significant (last) byte, which then holds
 *   one digit less (current and power can run backwards on a bidirectional meter).
 * - 'block': a run of 'fixed' values (total, then tariff 1, 2, ...).
 * - 'date' YYMMDDWW, 'time' hhmmss.
 */
export type ValueFormat =
  | { readonly kind: 'fixed'; readonly bytes: number; readonly decimals: number; readonly signed: boolean; readonly unit: string }
  | { readonly kind: 'block'; readonly item: { readonly bytes: number; readonly decimals: number; readonly signed: boolean; readonly unit: string } }
  | { readonly kind: 'date' }
  | { readonly kind: 'time' }
  /** YYMMDDhhmm (freeze times), 5 bytes sent mm hh DD MM YY. */
  | { readonly kind: 'datetime' };

const ENERGY = { kind: 'fixed', bytes: 4, decimals: 2, signed: false, unit: 'kWh' } as const; // XXXXXX.XX
const VOLTAGE = { kind: 'fixed', bytes: 2, decimals: 1, signed: false, unit: 'V' } as const; // XXX.X
const CURRENT = { kind: 'fixed', bytes: 3, decimals: 3, signed: true, unit: 'A' } as const; // XXX.XXX
const POWER = { kind: 'fixed', bytes: 3, decimals: 4, signed: true, unit: 'kW' } as const; // XX.XXXX

/** The format of a supported identifier, or undefined if this codec does not know it. */
export function formatOf(di: DataId): ValueFormat | undefined {
  const d3 = (di >>> 24) & 0xff;
  const d2 = (di >>> 16) & 0xff;
  const d1 = (di >>> 8) & 0xff;
  const d0 = di & 0xff;
  if (d3 === 0x00 && (d2 === 0x01 || d2 === 0x02) && d0 <= 0x0c) {
    // DI0 = 00 current, 01..0C previous settlement periods: same format.
    if (d1 <= 0x3f) return ENERGY;
    if (d1 === 0xff) return { kind: 'block', item: ENERGY };
    return undefined;
  }
  if (d3 === 0x02 && d2 === 0x01 && d1 >= 1 && d1 <= 3 && d0 === 0) return VOLTAGE;
  if (d3 === 0x02 && d2 === 0x02 && d1 >= 1 && d1 <= 3 && d0 === 0) return CURRENT;
  if (di === DI.activePowerTotal) return POWER;
  if (di === DI.date) return { kind: 'date' };
  if (di === DI.time) return { kind: 'time' };
  if (d3 === 0x05 && d2 === 0x06 && d0 >= 1 && d0 <= DAILY_FREEZE_DEPTH) {
    if (d1 === 0x00) return { kind: 'datetime' };
    if (d1 === 0x01) return { kind: 'block', item: ENERGY };
  }
  return undefined;
}

export function isSupportedDi(di: DataId): boolean {
  return formatOf(di) !== undefined;
}

/** A BCD value as an exact integer of its smallest unit: `units / 10^decimals` in `unit`. */
export interface FixedValue {
  readonly kind: 'fixed';
  readonly units: number;
  readonly decimals: number;
  readonly unit: string;
}

export type Value =
  | FixedValue
  | { readonly kind: 'block'; readonly items: readonly FixedValue[] }
  | { readonly kind: 'date'; readonly year: number; readonly month: number; readonly day: number; readonly weekday: number }
  | { readonly kind: 'time'; readonly hour: number; readonly minute: number; readonly second: number }
  | { readonly kind: 'datetime'; readonly year: number; readonly month: number; readonly day: number; readonly hour: number; readonly minute: number };

function isBcdByte(b: number): boolean {
  return (b & 0x0f) <= 9 && b >> 4 <= 9;
}

/** Decodes `bytes` BCD bytes at `offset`, low byte first, to an integer (digits only, no scale). */
export function decodeBcd(data: Uint8Array, offset: number, bytes: number, signed = false): Result<number> {
  if (offset < 0 || bytes < 1 || bytes > 7 || data.length < offset + bytes) return fail('truncated', `${bytes} BCD byte(s) at ${offset} do not fit ${data.length} byte(s) of data`, { offset });
  let units = 0;
  let negative = false;
  for (let i = bytes - 1; i >= 0; i--) {
    let b = data[offset + i];
    if (signed && i === bytes - 1) {
      negative = (b & 0x80) !== 0;
      b &= 0x7f;
    }
    if (!isBcdByte(b)) return fail('bad-bcd', `byte ${hex(data[offset + i])} is not BCD`, { offset: offset + i });
    // At most 14 digits (7 bytes): exact in a double (2^53 is 16 digits).
    units = units * 100 + (b >> 4) * 10 + (b & 0x0f);
  }
  // -0 is a meter's way of saying 0 with the sign bit set; report plain 0.
  return ok(negative && units !== 0 ? -units : units);
}

export function encodeBcd(units: number, bytes: number, signed = false): Uint8Array {
  const negative = units < 0;
  let rest = Math.abs(units);
  const max = signed ? 80 * 100 ** (bytes - 1) : 100 ** bytes; // signed: the top byte holds 0..79 below the sign bit
  if (!Number.isSafeInteger(units) || rest >= max) throw new RangeError(`${units} does not fit ${bytes} BCD byte(s)${signed ? ' (signed)' : ''}`);
  if (negative && !signed) throw new RangeError(`${units} is negative in an unsigned format`);
  const out = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) {
    const two = rest % 100;
    out[i] = (Math.floor(two / 10) << 4) | two % 10;
    rest = Math.floor(rest / 100);
  }
  if (negative) out[bytes - 1] |= 0x80;
  return out;
}

function fixedAt(data: Uint8Array, offset: number, f: { bytes: number; decimals: number; signed: boolean; unit: string }): Result<FixedValue> {
  const n = decodeBcd(data, offset, f.bytes, f.signed);
  return n.ok ? ok({ kind: 'fixed', units: n.value, decimals: f.decimals, unit: f.unit }) : n;
}

/** Decodes the value part of a read reply (after the 4 DI bytes) for a known identifier. */
export function decodeValue(di: DataId, payload: Uint8Array): Result<Value> {
  const f = formatOf(di);
  if (!f) return fail('unexpected-reply', `identifier ${diText(di)} is not supported by this codec`);
  switch (f.kind) {
    case 'fixed':
      if (payload.length !== f.bytes) return fail('unexpected-reply', `${diText(di)}: expected ${f.bytes} data byte(s), got ${payload.length}`);
      return fixedAt(payload, 0, f);
    case 'block': {
      const n = f.item.bytes;
      if (payload.length === 0 || payload.length % n !== 0) return fail('unexpected-reply', `${diText(di)}: block of ${payload.length} byte(s) is not a whole number of ${n}-byte values`);
      const items: FixedValue[] = [];
      for (let p = 0; p < payload.length; p += n) {
        const v = fixedAt(payload, p, f.item);
        if (!v.ok) return v;
        items.push(v.value);
      }
      return ok({ kind: 'block', items });
    }
    case 'date': {
      if (payload.length !== 4) return fail('unexpected-reply', `${diText(di)}: expected 4 data bytes, got ${payload.length}`);
      // Sent low byte first: WW DD MM YY.
      const [ww, dd, mm, yy] = [0, 1, 2, 3].map((k) => decodeBcd(payload, k, 1));
      for (const x of [ww, dd, mm, yy]) if (!x.ok) return x;
      const v = { kind: 'date', year: 2000 + val(yy), month: val(mm), day: val(dd), weekday: val(ww) } as const;
      if (v.month < 1 || v.month > 12 || v.day < 1 || v.day > 31 || v.weekday > 6) return fail('unexpected-reply', `${diText(di)}: not a date: ${hexBytes(payload)}`);
      return ok(v);
    }
    case 'time': {
      if (payload.length !== 3) return fail('unexpected-reply', `${diText(di)}: expected 3 data bytes, got ${payload.length}`);
      const [ss, mi, hh] = [0, 1, 2].map((k) => decodeBcd(payload, k, 1));
      for (const x of [ss, mi, hh]) if (!x.ok) return x;
      const v = { kind: 'time', hour: val(hh), minute: val(mi), second: val(ss) } as const;
      if (v.hour > 23 || v.minute > 59 || v.second > 59) return fail('unexpected-reply', `${diText(di)}: not a time: ${hexBytes(payload)}`);
      return ok(v);
    }
    case 'datetime': {
      if (payload.length !== 5) return fail('unexpected-reply', `${diText(di)}: expected 5 data bytes, got ${payload.length}`);
      // Sent low byte first: mm hh DD MM YY.
      const parts = [0, 1, 2, 3, 4].map((k) => decodeBcd(payload, k, 1));
      for (const x of parts) if (!x.ok) return x;
      const [mi, hh, dd, mm, yy] = parts.map(val);
      const v = { kind: 'datetime', year: 2000 + yy, month: mm, day: dd, hour: hh, minute: mi } as const;
      if (mm < 1 || mm > 12 || dd < 1 || dd > 31 || hh > 23 || mi > 59) return fail('unexpected-reply', `${diText(di)}: not a date and time: ${hexBytes(payload)}`);
      return ok(v);
    }
  }
}

const val = (r: Result<number>): number => (r.ok ? r.value : 0);

/** The inverse of `decodeValue` (the simulated meter's side). */
export function encodeValue(di: DataId, value: Value): Uint8Array {
  const f = formatOf(di);
  if (!f) throw new RangeError(`identifier ${diText(di)} is not supported by this codec`);
  if (f.kind === 'fixed' && value.kind === 'fixed') return encodeBcd(value.units, f.bytes, f.signed);
  if (f.kind === 'block' && value.kind === 'block') {
    const out = new Uint8Array(value.items.length * f.item.bytes);
    value.items.forEach((it, k) => out.set(encodeBcd(it.units, f.item.bytes, f.item.signed), k * f.item.bytes));
    return out;
  }
  if (f.kind === 'date' && value.kind === 'date') return new Uint8Array([bcd(value.weekday), bcd(value.day), bcd(value.month), bcd(value.year % 100)]);
  if (f.kind === 'time' && value.kind === 'time') return new Uint8Array([bcd(value.second), bcd(value.minute), bcd(value.hour)]);
  if (f.kind === 'datetime' && value.kind === 'datetime') return new Uint8Array([bcd(value.minute), bcd(value.hour), bcd(value.day), bcd(value.month), bcd(value.year % 100)]);
  throw new RangeError(`a ${value.kind} value does not fit identifier ${diText(di)} (${f.kind})`);
}

const bcd = (n: number): number => encodeBcd(n, 1)[0];

/** Energy in kWh with 2 decimals -> integer Wh, on the integer digits: 0.01 kWh = 10 Wh. */
export function energyWh(v: FixedValue): number {
  if (v.unit !== 'kWh' || v.decimals !== 2) throw new RangeError(`not an XXXXXX.XX kWh value: ${v.unit}/${v.decimals}`);
  return v.units * 10;
}

/** Wh -> the XXXXXX.XX kWh register (the meter truncates: it only shows whole 10 Wh steps). */
export function whToEnergy(wh: number): FixedValue {
  return { kind: 'fixed', units: Math.floor(wh / 10), decimals: 2, unit: 'kWh' };
}

// ---------------------------------------------------------------------------------------
// Requests (master -> meter)

/** Read data (C = 11): DI, 4 bytes. */
export function readRequest(address: string, di: DataId, opts: EncodeOptions = {}): Uint8Array {
  return encodeFrame({ address, control: FN.read, data: encodeDi(di) }, { wakeup: opts.wakeup ?? DEFAULT_WAKEUP_COUNT });
}

/** Read follow-up data (C = 12): DI and the frame sequence number SEQ (1, 2, ...). */
export function readFollowUpRequest(address: string, di: DataId, seq: number, opts: EncodeOptions = {}): Uint8Array {
  if (!Number.isInteger(seq) || seq < 0 || seq > 0xff) throw new RangeError(`SEQ must be 0..255, got ${seq}`);
  const data = new Uint8Array(5);
  data.set(encodeDi(di), 0);
  data[4] = seq;
  return encodeFrame({ address, control: FN.readFollowUp, data }, { wakeup: opts.wakeup ?? DEFAULT_WAKEUP_COUNT });
}

/** Read communication address (C = 13): always to the wildcard, no data; only with one meter on the bus. */
export function readAddressRequest(opts: EncodeOptions = {}): Uint8Array {
  return encodeFrame({ address: WILDCARD_ADDRESS, control: FN.readAddress, data: new Uint8Array(0) }, { wakeup: opts.wakeup ?? DEFAULT_WAKEUP_COUNT });
}

export interface MeterDateTime {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
}

/** Broadcast time sync (C = 08) to 999999999999, data ssmmhhDDMMYY (low byte first); meters do not answer. */
export function timeSyncBroadcast(t: MeterDateTime, opts: EncodeOptions = {}): Uint8Array {
  const data = new Uint8Array([bcd(t.second), bcd(t.minute), bcd(t.hour), bcd(t.day), bcd(t.month), bcd(t.year % 100)]);
  return encodeFrame({ address: BROADCAST_ADDRESS, control: FN.broadcastTimeSync, data }, { wakeup: opts.wakeup ?? DEFAULT_WAKEUP_COUNT });
}

export function decodeTimeSync(frame: Frame): Result<MeterDateTime> {
  if (frame.control !== FN.broadcastTimeSync || frame.data.length !== 6) return fail('unexpected-reply', 'not a time-sync broadcast');
  const parts: number[] = [];
  for (let k = 0; k < 6; k++) {
    const d = decodeBcd(frame.data, k, 1);
    if (!d.ok) return d;
    parts.push(d.value);
  }
  const [second, minute, hour, day, month, yy] = parts;
  return ok({ year: 2000 + yy, month, day, hour, minute, second });
}

// ---------------------------------------------------------------------------------------
// Replies (meter -> master)

/** Normal read reply (91, or B1 when more frames follow): DI + value. */
export function readReply(address: string, di: DataId, payload: Uint8Array, more = false): Uint8Array {
  const data = new Uint8Array(4 + payload.length);
  data.set(encodeDi(di), 0);
  data.set(payload, 4);
  return encodeFrame({ address, control: encodeControl({ fromMeter: true, error: false, more, fn: FN.read }), data });
}

/** Follow-up reply (92, or B2 when still more follow): DI + value + SEQ. */
export function readFollowUpReply(address: string, di: DataId, payload: Uint8Array, seq: number, more = false): Uint8Array {
  const data = new Uint8Array(5 + payload.length);
  data.set(encodeDi(di), 0);
  data.set(payload, 4);
  data[4 + payload.length] = seq & 0xff;
  return encodeFrame({ address, control: encodeControl({ fromMeter: true, error: false, more, fn: FN.readFollowUp }), data });
}

/** Error reply (C1 + function, e.g. D1): one error byte. */
export function errorReply(address: string, fn: number, errorByte: number): Uint8Array {
  return encodeFrame({ address, control: encodeControl({ fromMeter: true, error: true, more: false, fn }), data: new Uint8Array([errorByte & 0xff]) });
}

/** Read-address reply (93): the meter's own address as data. */
export function readAddressReply(address: string): Uint8Array {
  return encodeFrame({ address, control: encodeControl({ fromMeter: true, error: false, more: false, fn: FN.readAddress }), data: encodeAddress(address) });
}

export interface ReadReply {
  readonly di: DataId;
  /** Value bytes (33H removed), without DI and SEQ. */
  readonly payload: Uint8Array;
  /** Bit 5: more frames follow; fetch them with `readFollowUpRequest`. */
  readonly more: boolean;
  /** Follow-up replies only. */
  readonly seq?: number;
}

/** Whether a reply from `got` answers a request to `expected` (AA bytes are wildcards). */
export function addressMatches(expected: string, got: string): boolean {
  // A reply carries the meter's real address; when we asked the wildcard any address answers.
  if (expected === got) return true;
  for (let i = 0; i < 12; i += 2) {
    const e = expected.slice(i, i + 2);
    if (e !== 'AA' && e !== got.slice(i, i + 2)) return false;
  }
  return true;
}

/**
 * Checks that `frame` answers a read (fn 11) or read follow-up (fn 12) of `di` sent to
 * `address` and returns its value bytes; an error reply comes back as kind 'meter-error'
 * with the decoded error bits.
 */
export function parseReadReply(frame: Frame, address: string, di: DataId, fn: number = FN.read): Result<ReadReply> {
  const c = decodeControl(frame.control);
  if (!c.fromMeter) return fail('unexpected-reply', `control ${hex(frame.control)} is a request, not a reply`);
  if (c.fn !== fn) return fail('unexpected-reply', `reply to function ${hex(c.fn)}, expected ${hex(fn)}`);
  if (!addressMatches(address, frame.address)) return fail('unexpected-reply', `reply from ${frame.address}, expected ${address}`);
  if (c.error) {
    if (frame.data.length !== 1) return fail('unexpected-reply', `error reply with ${frame.data.length} data bytes, expected 1`);
    const bits = decodeMeterError(frame.data[0]);
    return fail('meter-error', `meter ${frame.address} refused ${diText(di)}: ${describeMeterError(bits)}`, { meterError: bits });
  }
  const tail = fn === FN.readFollowUp ? 1 : 0;
  if (frame.data.length < 4 + tail) return fail('unexpected-reply', `reply data of ${frame.data.length} byte(s) holds no identifier`);
  const got = decodeDi(frame.data, 0);
  if (got !== di) return fail('unexpected-reply', `reply for ${diText(got)}, expected ${diText(di)}`);
  const payload = frame.data.slice(4, frame.data.length - tail);
  return ok({ di, payload, more: c.more, ...(tail ? { seq: frame.data[frame.data.length - 1] } : {}) });
}

/** The address in a read-address reply (93). */
export function parseReadAddressReply(frame: Frame): Result<string> {
  const c = decodeControl(frame.control);
  if (!c.fromMeter || c.fn !== FN.readAddress) return fail('unexpected-reply', `control ${hex(frame.control)} is not a read-address reply`);
  if (c.error) {
    const bits = decodeMeterError(frame.data[0] ?? 0);
    return fail('meter-error', `read-address refused: ${describeMeterError(bits)}`, { meterError: bits });
  }
  if (frame.data.length !== 6) return fail('unexpected-reply', `read-address reply with ${frame.data.length} data bytes, expected 6`);
  return decodeAddress(frame.data, 0);
}

// ---------------------------------------------------------------------------------------

export function hex(b: number): string {
  return (b ?? 0).toString(16).toUpperCase().padStart(2, '0');
}

export function hexBytes(bytes: Uint8Array): string {
  return Array.from(bytes, hex).join(' ');
}

/** `"68 AA ..."` -> bytes (tests, docs and logs write frames this way). */
export function fromHex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, '');
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(clean)) throw new RangeError(`not hex bytes: ${JSON.stringify(text)}`);
  return Uint8Array.from(clean.match(/../g) ?? [], (h) => parseInt(h, 16));
}
