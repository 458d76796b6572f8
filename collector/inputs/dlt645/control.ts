/**
 * DL/T 645-2007 remote control (跳合闸、报警、保电, control code 1CH) and the relay read-back
 * of meter status word 3 (DI 04 00 05 03). Pure like codec.ts, whose frame layer it uses:
 * no I/O, no clock; decoders return a `Result`, encoders throw RangeError only on
 * programmer errors.
 *
 * Facts (docs/protocols.md, "DL/T 645-2007 remote control", with sources):
 * - Request `68 A0..A5 68 1C L PA P0 P1 P2 C0 C1 C2 C3 N1 N2 N3..N8 CS 16`, L = 10H for a
 *   plaintext command: PA the password level, P0..P2 the 6-digit password, C0..C3 the
 *   operator code, N1 the action, N2 reserved (00), N3..N8 the deadline ss mm hh DD MM YY
 *   after which the meter must refuse the command. Every data item goes low byte first and
 *   +33H like any DL/T 645 data.
 * - N1: 1AH trip (拉闸), 1BH close permitted (合闸允许: the tenant closes at the meter),
 *   1CH close now (直接合闸), 2AH alarm, 2BH alarm off, 3AH protect on (保电), 3BH protect off.
 * - Levels 02H and 04H carry the command in plaintext; 96H/98H are the ESAM (security
 *   module) levels whose N1..Nm are ciphertext: we never build those.
 * - Normal reply 9CH with L = 0 (State Grid 2013 meters may add a 2-byte execution status
 *   word); error reply DCH with one error byte ERR (clause 7 error word: bit 2 password or
 *   unauthorised), or on State Grid 2013 meters a 2-byte control error word (bit 4 deadline
 *   passed, bit 5 trip refused while protected, ...).
 * - Status word 3: 2 bytes binary, low byte first: bit 4 relay state (0 closed, 1 open),
 *   bit 6 relay command state (0 close, 1 trip), bit 7 pre-trip alarm, bits 8-9 meter type;
 *   bit 12 protect (保电) is the State Grid 2013 extension (reserved in the 2007 text).
 */
import {
  addressMatches,
  decodeBcd,
  decodeControl,
  decodeDi,
  encodeControl,
  encodeFrame,
  err,
  hex,
  ok,
  readReply,
  readRequest,
  DEFAULT_WAKEUP_COUNT,
} from './codec.ts';
import type { CodecError, DataId, EncodeOptions, Frame, MeterDateTime, Result } from './codec.ts';


/** Control code of the remote control command (跳合闸、报警、保电). */
export const FN_CONTROL = 0x1c;

/** N1 of the control command. */
export const CONTROL_ACTION = {
  trip: 0x1a,
  closePermit: 0x1b,
  closeNow: 0x1c,
  alarm: 0x2a,
  alarmOff: 0x2b,
  protectOn: 0x3a,
  protectOff: 0x3b,
} as const;
export type ControlAction = keyof typeof CONTROL_ACTION;

const ACTION_BY_CODE = new Map<number, ControlAction>(Object.entries(CONTROL_ACTION).map(([k, v]) => [v, k as ControlAction]));

/** What each action means, for logs and the CLI. */
export const ACTION_TEXT: Readonly<Record<ControlAction, string>> = {
  trip: 'trip (拉闸)',
  closePermit: 'close permitted (合闸允许)',
  closeNow: 'close now (直接合闸)',
  alarm: 'alarm (报警)',
  alarmOff: 'alarm off (报警解除)',
  protectOn: 'protect on (保电)',
  protectOff: 'protect off (保电解除)',
};

/** Password levels whose command data is plaintext (02: remote, 04: local programming). */
export const PLAINTEXT_LEVELS: readonly number[] = [0x02, 0x04];
/** Levels whose command data is ESAM ciphertext: a meter that demands them is not driven by us. */
export const ESAM_LEVELS: readonly number[] = [0x96, 0x98];

/** Meter status word 3 (电表运行状态字3). */
export const DI_STATUS_WORD_3: DataId = 0x04000503;

/** Data length of a plaintext control command: PA P0-P2, C0-C3, N1, N2, N3-N8. */
export const CONTROL_DATA_LENGTH = 16;

export interface ControlPassword {
  /** PA: 02 or 04 for plaintext commands. */
  readonly level: number;
  /** Six decimal digits as printed (P2 P1 P0), e.g. "123456". */
  readonly password: string;
}

export interface ControlCommand {
  readonly password: ControlPassword;
  /** C3..C0 as 8 hex digits, most significant first (sent C0 first). */
  readonly operator: string;
  readonly action: ControlAction;
  /** N3..N8: the meter refuses the command once its clock is past this local time. */
  readonly deadline: MeterDateTime;
}

const fail = (kind: CodecError['kind'], message: string, offset?: number): { ok: false; error: CodecError } => err({ kind, message, ...(offset !== undefined ? { offset } : {}) });

const bcdByte = (n: number): number => {
  if (!Number.isInteger(n) || n < 0 || n > 99) throw new RangeError(`${n} is not a 2-digit BCD value`);
  return (Math.floor(n / 10) << 4) | n % 10;
};

/**
 * Parses the password form the environment and secrets files use: 8 hex digits, the level
 * byte then the 6-digit password, e.g. `02123456` (level 02, password 123456). Only the
 * plaintext levels are accepted; the text never appears in the error (it is a secret).
 */
export function parseControlPassword(text: string): Result<ControlPassword> {
  const t = text.trim();
  if (!/^[0-9A-Fa-f]{2}\d{6}$/.test(t)) return fail('unexpected-reply', 'a DL/T 645 control password is 8 digits: the level byte (02 or 04) then the 6-digit password, e.g. 02123456');
  const level = parseInt(t.slice(0, 2), 16);
  if (ESAM_LEVELS.includes(level)) return fail('unexpected-reply', `password level ${hex(level)} is an ESAM (encrypted) level; submeter sends plaintext commands only (levels 02, 04)`);
  if (!PLAINTEXT_LEVELS.includes(level)) return fail('unexpected-reply', `password level ${hex(level)} is not a plaintext control level (02 or 04)`);
  return ok({ level, password: t.slice(2) });
}

/** `12345678` (C3..C0) -> bytes C0..C3. */
function operatorBytes(op: string): number[] {
  if (!/^[0-9A-Fa-f]{8}$/.test(op)) throw new RangeError(`operator code must be 8 hex digits, got ${JSON.stringify(op)}`);
  const out: number[] = [];
  for (let i = 3; i >= 0; i--) out.push(parseInt(op.slice(i * 2, i * 2 + 2), 16));
  return out;
}

/** The 16 plain data bytes (before +33H) of a control command. */
export function controlData(cmd: ControlCommand): Uint8Array {
  const { level, password } = cmd.password;
  if (!PLAINTEXT_LEVELS.includes(level)) throw new RangeError(`password level ${hex(level)} is not a plaintext level`);
  if (!/^\d{6}$/.test(password)) throw new RangeError('password must be 6 digits');
  const d = cmd.deadline;
  if (d.month < 1 || d.month > 12 || d.day < 1 || d.day > 31 || d.hour > 23 || d.minute > 59 || d.second > 59 || d.year < 2000 || d.year > 2099) {
    throw new RangeError(`deadline ${JSON.stringify(d)} is not a meter date-time`);
  }
  // Password digits P2 P1 P0 as printed; sent low byte first (P0 = the last two digits).
  const p = [password.slice(4, 6), password.slice(2, 4), password.slice(0, 2)].map((x) => (Number(x[0]) << 4) | Number(x[1]));
  return Uint8Array.from([
    level,
    ...p,
    ...operatorBytes(cmd.operator),
    CONTROL_ACTION[cmd.action],
    0x00,
    bcdByte(d.second),
    bcdByte(d.minute),
    bcdByte(d.hour),
    bcdByte(d.day),
    bcdByte(d.month),
    bcdByte(d.year % 100),
  ]);
}

/** The control request frame (C = 1C), with FE wake-up bytes like every request. */
export function controlRequest(address: string, cmd: ControlCommand, opts: EncodeOptions = {}): Uint8Array {
  return encodeFrame({ address, control: FN_CONTROL, data: controlData(cmd) }, { wakeup: opts.wakeup ?? DEFAULT_WAKEUP_COUNT });
}

/**
 * Decodes a control request (the simulated meter's side). A frame whose level is an ESAM
 * level is reported as such (`encrypted: true`, no command): its data is ciphertext.
 */
export function decodeControlRequest(frame: Frame): Result<{ readonly encrypted: false; readonly command: ControlCommand } | { readonly encrypted: true; readonly level: number }> {
  const c = decodeControl(frame.control);
  if (c.fromMeter || c.fn !== FN_CONTROL) return fail('unexpected-reply', `control ${hex(frame.control)} is not a control request`);
  if (frame.data.length < 8) return fail('truncated', `control data of ${frame.data.length} byte(s); at least PA P0-P2 C0-C3 needed`);
  const level = frame.data[0];
  if (ESAM_LEVELS.includes(level)) return ok({ encrypted: true, level });
  if (frame.data.length !== CONTROL_DATA_LENGTH) return fail('unexpected-reply', `plaintext control data is ${CONTROL_DATA_LENGTH} bytes, got ${frame.data.length}`);
  const digits: string[] = [];
  for (const k of [3, 2, 1]) {
    const b = decodeBcd(frame.data, k, 1);
    if (!b.ok) return b;
    digits.push(String(b.value).padStart(2, '0'));
  }
  const operator = [7, 6, 5, 4].map((k) => hex(frame.data[k])).join('');
  const action = ACTION_BY_CODE.get(frame.data[8]);
  if (!action) return fail('unexpected-reply', `unknown control action N1 = ${hex(frame.data[8])}`, 8);
  const parts: number[] = [];
  for (let k = 10; k < 16; k++) {
    const b = decodeBcd(frame.data, k, 1);
    if (!b.ok) return b;
    parts.push(b.value);
  }
  const [second, minute, hour, day, month, yy] = parts;
  return ok({ encrypted: false, command: { password: { level, password: digits.join('') }, operator, action, deadline: { year: 2000 + yy, month, day, hour, minute, second } } });
}

// ---------------------------------------------------------------------------------------
// Replies

/**
 * Why a meter refused a control command. The one-byte form is the DL/T 645-2007 error word
 * (clause 7; State Grid meters answer every control refusal with bit 2 in this form); the
 * two-byte form is the State Grid 2013 control error word.
 */
export type ControlRefusalReason =
  | 'other'
  | 'no-data'
  | 'unauthorised'
  | 'baud-fixed'
  | 'year-zones'
  | 'day-periods'
  | 'tariffs'
  | 'suspended'
  | 'mac'
  | 'auth-timeout'
  | 'deadline'
  | 'trip-while-protected'
  | 'pre-trip-while-protected'
  | 'pre-trip-duration'
  | 'pre-trip-while-tripped';

const ONE_BYTE: readonly (ControlRefusalReason | undefined)[] = ['other', 'no-data', 'unauthorised', 'baud-fixed', 'year-zones', 'day-periods', 'tariffs', undefined];
const TWO_BYTE: readonly (ControlRefusalReason | undefined)[] = ['suspended', 'mac', 'unauthorised', 'auth-timeout', 'deadline', 'trip-while-protected', 'pre-trip-while-protected', 'pre-trip-duration', 'pre-trip-while-tripped'];

export const REFUSAL_TEXT: Readonly<Record<ControlRefusalReason, string>> = {
  other: 'other error',
  'no-data': 'no such data',
  unauthorised: 'password wrong or unauthorised',
  'baud-fixed': 'baud rate cannot be changed',
  'year-zones': 'too many year time zones',
  'day-periods': 'too many day periods',
  tariffs: 'too many tariffs',
  suspended: 'meter suspended',
  mac: 'MAC check failed',
  'auth-timeout': 'security authentication timed out',
  deadline: 'command deadline has passed',
  'trip-while-protected': 'trip refused: the meter is protected (保电)',
  'pre-trip-while-protected': 'pre-trip refused: the meter is protected (保电)',
  'pre-trip-duration': 'pre-trip duration invalid',
  'pre-trip-while-tripped': 'pre-trip refused: already tripped',
};

export interface ControlRefusal {
  /** The error word as sent (one byte, or two bytes low byte first). */
  readonly raw: number;
  readonly bytes: 1 | 2;
  readonly reasons: readonly ControlRefusalReason[];
  readonly text: string;
}

export type ControlReply = { readonly accepted: true; readonly status?: number } | { readonly accepted: false; readonly refusal: ControlRefusal };

export function decodeRefusal(raw: number, bytes: 1 | 2): ControlRefusal {
  const table = bytes === 1 ? ONE_BYTE : TWO_BYTE;
  const reasons: ControlRefusalReason[] = [];
  table.forEach((r, bit) => {
    if (r && raw & (1 << bit)) reasons.push(r);
  });
  const text = reasons.length ? reasons.map((r) => REFUSAL_TEXT[r]).join(', ') : `error word ${raw.toString(16).toUpperCase().padStart(bytes * 2, '0')}`;
  return { raw, bytes, reasons, text };
}

/** The bits of a refusal reason in its error-word form (the simulated meter's side). */
export function refusalWord(reasons: readonly ControlRefusalReason[], bytes: 1 | 2): number {
  const table = bytes === 1 ? ONE_BYTE : TWO_BYTE;
  let w = 0;
  for (const r of reasons) {
    const bit = table.indexOf(r);
    if (bit < 0) throw new RangeError(`reason ${r} has no bit in the ${bytes}-byte error word`);
    w |= 1 << bit;
  }
  return w;
}

/** Normal reply 9C: no data, or the 2-byte execution status word of State Grid 2013 meters. */
export function controlReply(address: string, status?: number): Uint8Array {
  const data = status === undefined ? new Uint8Array(0) : Uint8Array.from([status & 0xff, (status >> 8) & 0xff]);
  return encodeFrame({ address, control: encodeControl({ fromMeter: true, error: false, more: false, fn: FN_CONTROL }), data });
}

/** Error reply DC with a one-byte (DL/T 645-2007) or two-byte (State Grid 2013) error word. */
export function controlErrorReply(address: string, word: number, bytes: 1 | 2 = 1): Uint8Array {
  const data = bytes === 1 ? Uint8Array.from([word & 0xff]) : Uint8Array.from([word & 0xff, (word >> 8) & 0xff]);
  return encodeFrame({ address, control: encodeControl({ fromMeter: true, error: true, more: false, fn: FN_CONTROL }), data });
}

/**
 * Checks that `frame` answers a control command sent to `address`: 9C accepted, DC
 * refused with the decoded error word. Anything else (another function's reply, another
 * meter, our own request echoed) is 'unexpected-reply', which the caller skips.
 */
export function parseControlReply(frame: Frame, address: string): Result<ControlReply> {
  const c = decodeControl(frame.control);
  if (!c.fromMeter) return fail('unexpected-reply', `control ${hex(frame.control)} is a request, not a reply`);
  if (c.fn !== FN_CONTROL) return fail('unexpected-reply', `reply to function ${hex(c.fn)}, expected ${hex(FN_CONTROL)}`);
  if (!addressMatches(address, frame.address)) return fail('unexpected-reply', `reply from ${frame.address}, expected ${address}`);
  if (c.error) {
    if (frame.data.length === 1) return ok({ accepted: false, refusal: decodeRefusal(frame.data[0], 1) });
    if (frame.data.length === 2) return ok({ accepted: false, refusal: decodeRefusal(frame.data[0] | (frame.data[1] << 8), 2) });
    return fail('unexpected-reply', `control error reply with ${frame.data.length} data bytes, expected 1 or 2`);
  }
  if (frame.data.length === 0) return ok({ accepted: true });
  if (frame.data.length === 2) return ok({ accepted: true, status: frame.data[0] | (frame.data[1] << 8) });
  return fail('unexpected-reply', `control reply with ${frame.data.length} data bytes, expected 0 or 2`);
}

// ---------------------------------------------------------------------------------------
// Status word 3: the relay read-back

export interface StatusWord3 {
  readonly raw: number;
  /** Bit 4: the relay is open (power off). */
  readonly relayOpen: boolean;
  /** Bit 6: the last relay command was a trip. */
  readonly commandTrip: boolean;
  /** Bit 7: pre-trip alarm. */
  readonly preTripAlarm: boolean;
  /** Bit 12 (State Grid 2013 extension): protected (保电). */
  readonly protect: boolean;
  /** Bits 8-9. */
  readonly meterType: 'non-prepaid' | 'energy-prepaid' | 'money-prepaid' | 'reserved';
  /** Bits 1-2. */
  readonly supply: 'main' | 'auxiliary' | 'battery' | 'reserved';
}

export const STATUS3_BIT = { relayOpen: 4, commandTrip: 6, preTripAlarm: 7, protect: 12 } as const;

export function decodeStatusWord3Value(raw: number): StatusWord3 {
  const bit = (n: number) => (raw & (1 << n)) !== 0;
  const type = (raw >> 8) & 0x3;
  const supply = (raw >> 1) & 0x3;
  return {
    raw,
    relayOpen: bit(STATUS3_BIT.relayOpen),
    commandTrip: bit(STATUS3_BIT.commandTrip),
    preTripAlarm: bit(STATUS3_BIT.preTripAlarm),
    protect: bit(STATUS3_BIT.protect),
    meterType: (['non-prepaid', 'energy-prepaid', 'money-prepaid', 'reserved'] as const)[type],
    supply: (['main', 'auxiliary', 'battery', 'reserved'] as const)[supply],
  };
}

/** The value bytes of a status word 3 reply (after the DI): 2 bytes binary, low byte first. */
export function decodeStatusWord3(payload: Uint8Array): Result<StatusWord3> {
  if (payload.length !== 2) return fail('unexpected-reply', `status word 3: expected 2 data bytes, got ${payload.length}`);
  return ok(decodeStatusWord3Value(payload[0] | (payload[1] << 8)));
}

export function encodeStatusWord3(raw: number): Uint8Array {
  if (!Number.isInteger(raw) || raw < 0 || raw > 0xffff) throw new RangeError(`status word must be 0..FFFF, got ${raw}`);
  return Uint8Array.from([raw & 0xff, raw >> 8]);
}

/** Read request of status word 3 (a plain read, C = 11). */
export function statusWord3Request(address: string, opts: EncodeOptions = {}): Uint8Array {
  return readRequest(address, DI_STATUS_WORD_3, opts);
}

/** Read reply with status word 3 (the simulated meter's side). */
export function statusWord3Reply(address: string, raw: number): Uint8Array {
  return readReply(address, DI_STATUS_WORD_3, encodeStatusWord3(raw));
}

/** True for a read-reply frame's DI being status word 3 (helps callers pick the decoder). */
export function isStatusWord3(data: Uint8Array): boolean {
  return data.length >= 4 && decodeDi(data, 0) === DI_STATUS_WORD_3;
}

/** One line for logs and the CLI: what the status word says about the relay. */
export function describeStatusWord3(s: StatusWord3): string {
  return `relay ${s.relayOpen ? 'open (power off)' : 'closed (power on)'}, last command ${s.commandTrip ? 'trip' : 'close'}${s.protect ? ', protected (保电)' : ''}${s.preTripAlarm ? ', pre-trip alarm' : ''} [status word 3 = ${s.raw.toString(16).toUpperCase().padStart(4, '0')}]`;
}

/** The meter clock as a deadline `minutes` after `wall` (site-local wall-clock fields). */
export function deadlineAfter(wall: MeterDateTime, seconds: number): MeterDateTime {
  const ms = Date.UTC(wall.year, wall.month - 1, wall.day, wall.hour, wall.minute, wall.second) + seconds * 1000;
  const d = new Date(ms);
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds() };
}

/** Orders two meter date-times (wall clock): negative when a is earlier. */
export function compareMeterTime(a: MeterDateTime, b: MeterDateTime): number {
  const v = (t: MeterDateTime) => Date.UTC(t.year, t.month - 1, t.day, t.hour, t.minute, t.second);
  return v(a) - v(b);
}
