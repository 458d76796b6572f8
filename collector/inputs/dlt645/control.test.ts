import { describe, expect, it } from 'vitest';
import { decodeFrame, fromHex, hexBytes, parseReadReply, DI } from './codec.ts';
import {
  compareMeterTime,
  controlErrorReply,
  controlReply,
  controlRequest,
  deadlineAfter,
  decodeControlRequest,
  decodeStatusWord3,
  DI_STATUS_WORD_3,
  parseControlPassword,
  parseControlReply,
  refusalWord,
  statusWord3Reply,
  statusWord3Request,
} from './control.ts';
import type { ControlAction, ControlCommand } from './control.ts';

/**
 * docs/protocols.md, "DL/T 645-2007 remote control": every vector there, byte for byte.
 * They were built by an independent script (the frame rule of protocols.md, not this
 * codec); `PUBLIC_9C` is a meter's reply quoted in a public implementation.
 */
const CONTROL_VECTORS = {
  trip: 'FE FE FE FE 68 02 11 00 00 00 00 68 1C 10 35 89 67 45 AB 89 67 45 4D 33 8C 8C 56 53 44 59 37 16',
  closePermit: 'FE FE FE FE 68 02 11 00 00 00 00 68 1C 10 35 89 67 45 AB 89 67 45 4E 33 8C 8C 56 53 44 59 38 16',
  closeNow: 'FE FE FE FE 68 02 11 00 00 00 00 68 1C 10 35 89 67 45 AB 89 67 45 4F 33 8C 8C 56 53 44 59 39 16',
  protectOn: 'FE FE FE FE 68 02 11 00 00 00 00 68 1C 10 35 89 67 45 AB 89 67 45 6D 33 8C 8C 56 53 44 59 57 16',
  protectOff: 'FE FE FE FE 68 02 11 00 00 00 00 68 1C 10 35 89 67 45 AB 89 67 45 6E 33 8C 8C 56 53 44 59 58 16',
  replyAccepted: '68 02 11 00 00 00 00 68 9C 00 7F 16',
  replyUnauthorised: '68 02 11 00 00 00 00 68 DC 01 37 F7 16',
  replyDeadline2: '68 02 11 00 00 00 00 68 DC 02 43 33 37 16',
  replyProtected2: '68 02 11 00 00 00 00 68 DC 02 53 33 47 16',
  status3Read: 'FE FE FE FE 68 02 11 00 00 00 00 68 11 04 36 38 33 37 D0 16',
  status3Open: '68 02 11 00 00 00 00 68 91 06 36 38 33 37 83 33 08 16',
  status3Closed: '68 02 11 00 00 00 00 68 91 06 36 38 33 37 33 33 B8 16',
  status3Protect: '68 02 11 00 00 00 00 68 91 06 36 38 33 37 33 43 C8 16',
  status3Stuck: '68 02 11 00 00 00 00 68 91 06 36 38 33 37 73 33 F8 16',
  PUBLIC_9C: '68 11 11 11 11 11 11 68 9C 00 D2 16',
} as const;

const ADDRESS = '000000001102';
const DEADLINE = { year: 2026, month: 11, day: 20, hour: 23, minute: 59, second: 59 };
const cmd = (action: ControlAction): ControlCommand => ({ password: { level: 0x02, password: '123456' }, operator: '12345678', action, deadline: DEADLINE });

const frameOf = (text: string) => {
  const r = decodeFrame(fromHex(text));
  if (!r.ok) throw new Error(`${text}: ${r.error.message}`);
  return r.value;
};

describe('control command (1C) vectors', () => {
  for (const action of ['trip', 'closePermit', 'closeNow', 'protectOn', 'protectOff'] as const) {
    it(`${action}: encodes byte for byte and decodes back`, () => {
      expect(hexBytes(controlRequest(ADDRESS, cmd(action)))).toBe(CONTROL_VECTORS[action]);
      const d = decodeControlRequest(frameOf(CONTROL_VECTORS[action]));
      expect(d).toEqual({ ok: true, value: { encrypted: false, command: cmd(action) } });
    });
  }

  it('the password goes low byte first (P0 = the last two digits), the operator C0 first', () => {
    const f = frameOf(CONTROL_VECTORS.trip);
    expect(Array.from(f.data.subarray(0, 8))).toEqual([0x02, 0x56, 0x34, 0x12, 0x78, 0x56, 0x34, 0x12]);
    expect(f.data[8]).toBe(0x1a);
    expect(Array.from(f.data.subarray(10))).toEqual([0x59, 0x59, 0x23, 0x20, 0x11, 0x26]);
  });

  it('an ESAM-level (98H) command is recognised as ciphertext, never decoded as plaintext', () => {
    // PA = 98, P0-P2 = 000000, operator 12345678, 20 bytes of ciphertext (the shape of a
    // State Grid encrypted trip; the payload here is arbitrary).
    const data = Uint8Array.from([0x98, 0, 0, 0, 0x78, 0x56, 0x34, 0x12, ...Array.from({ length: 20 }, (_, i) => i * 7)]);
    const d = decodeControlRequest({ address: ADDRESS, control: 0x1c, data });
    expect(d).toEqual({ ok: true, value: { encrypted: true, level: 0x98 } });
  });

  it('refuses to build commands at an ESAM or unknown level', () => {
    expect(() => controlRequest(ADDRESS, { ...cmd('trip'), password: { level: 0x98, password: '000000' } })).toThrow(RangeError);
    expect(() => controlRequest(ADDRESS, { ...cmd('trip'), deadline: { ...DEADLINE, month: 13 } })).toThrow(RangeError);
  });
});

describe('control replies (9C / DC) vectors', () => {
  it('9C with no data: accepted', () => {
    expect(hexBytes(controlReply(ADDRESS))).toBe(CONTROL_VECTORS.replyAccepted);
    expect(parseControlReply(frameOf(CONTROL_VECTORS.replyAccepted), ADDRESS)).toEqual({ ok: true, value: { accepted: true } });
  });

  it('the public 9C vector decodes (meter 111111111111)', () => {
    expect(hexBytes(controlReply('111111111111'))).toBe(CONTROL_VECTORS.PUBLIC_9C);
    expect(parseControlReply(frameOf(CONTROL_VECTORS.PUBLIC_9C), '111111111111')).toEqual({ ok: true, value: { accepted: true } });
  });

  it('DC with the one-byte error word: password wrong / unauthorised', () => {
    expect(hexBytes(controlErrorReply(ADDRESS, refusalWord(['unauthorised'], 1)))).toBe(CONTROL_VECTORS.replyUnauthorised);
    const r = parseControlReply(frameOf(CONTROL_VECTORS.replyUnauthorised), ADDRESS);
    expect(r.ok && !r.value.accepted && r.value.refusal).toEqual({ raw: 0x04, bytes: 1, reasons: ['unauthorised'], text: 'password wrong or unauthorised' });
  });

  it('DC with the two-byte State Grid word: deadline passed; trip refused while protected', () => {
    expect(hexBytes(controlErrorReply(ADDRESS, refusalWord(['deadline'], 2), 2))).toBe(CONTROL_VECTORS.replyDeadline2);
    const d = parseControlReply(frameOf(CONTROL_VECTORS.replyDeadline2), ADDRESS);
    expect(d.ok && !d.value.accepted && d.value.refusal.reasons).toEqual(['deadline']);
    expect(hexBytes(controlErrorReply(ADDRESS, refusalWord(['trip-while-protected'], 2), 2))).toBe(CONTROL_VECTORS.replyProtected2);
    const p = parseControlReply(frameOf(CONTROL_VECTORS.replyProtected2), ADDRESS);
    expect(p.ok && !p.value.accepted && p.value.refusal.text).toBe('trip refused: the meter is protected (保电)');
  });

  it('a reply of another function, another meter or our own request is unexpected (the caller skips it)', () => {
    expect(parseControlReply(frameOf(CONTROL_VECTORS.replyAccepted), '000000001103')).toMatchObject({ ok: false, error: { kind: 'unexpected-reply' } });
    expect(parseControlReply(frameOf(CONTROL_VECTORS.status3Open), ADDRESS)).toMatchObject({ ok: false, error: { kind: 'unexpected-reply' } });
    expect(parseControlReply(frameOf(CONTROL_VECTORS.trip), ADDRESS)).toMatchObject({ ok: false, error: { kind: 'unexpected-reply' } });
  });
});

describe('status word 3 (04 00 05 03) vectors', () => {
  it('read request', () => {
    expect(hexBytes(statusWord3Request(ADDRESS))).toBe(CONTROL_VECTORS.status3Read);
  });

  const cases = [
    ['status3Open', 0x0050, { relayOpen: true, commandTrip: true, protect: false }],
    ['status3Closed', 0x0000, { relayOpen: false, commandTrip: false, protect: false }],
    ['status3Protect', 0x1000, { relayOpen: false, commandTrip: false, protect: true }],
    // Commanded to trip but the contacts still closed: what a stuck relay reports.
    ['status3Stuck', 0x0040, { relayOpen: false, commandTrip: true, protect: false }],
  ] as const;
  for (const [name, raw, bits] of cases) {
    it(`${name}: ${raw.toString(16)}`, () => {
      expect(hexBytes(statusWord3Reply(ADDRESS, raw))).toBe(CONTROL_VECTORS[name]);
      const r = parseReadReply(frameOf(CONTROL_VECTORS[name]), ADDRESS, DI_STATUS_WORD_3);
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      const s = decodeStatusWord3(r.value.payload);
      expect(s.ok && s.value).toMatchObject({ raw, ...bits });
    });
  }

  it('a 1-byte or 3-byte payload is not a status word', () => {
    expect(decodeStatusWord3(Uint8Array.of(1)).ok).toBe(false);
    expect(decodeStatusWord3(Uint8Array.of(1, 2, 3)).ok).toBe(false);
    expect(DI_STATUS_WORD_3).not.toBe(DI.date);
  });
});

describe('password form and deadlines', () => {
  it('parses level + 6 digits and refuses ESAM levels and malformed text without echoing it', () => {
    expect(parseControlPassword('02123456')).toEqual({ ok: true, value: { level: 2, password: '123456' } });
    expect(parseControlPassword(' 04000000 ')).toEqual({ ok: true, value: { level: 4, password: '000000' } });
    const esam = parseControlPassword('98123456');
    expect(esam.ok).toBe(false);
    expect(!esam.ok && esam.error.message).toMatch(/ESAM/);
    const bad = parseControlPassword('02ab3456');
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.error.message).not.toContain('ab3456');
    expect(parseControlPassword('03123456').ok).toBe(false);
  });

  it('deadline arithmetic on wall-clock fields crosses midnight and months', () => {
    const d = deadlineAfter({ year: 2026, month: 11, day: 30, hour: 23, minute: 59, second: 30 }, 300);
    expect(d).toEqual({ year: 2026, month: 12, day: 1, hour: 0, minute: 4, second: 30 });
    expect(compareMeterTime(d, DEADLINE)).toBeGreaterThan(0);
  });
});
