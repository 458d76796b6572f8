import { describe, expect, it } from 'vitest';
import {
  DI,
  FN,
  FrameScanner,
  decodeAddress,
  decodeBcd,
  decodeControl,
  decodeFrame,
  decodeTimeSync,
  decodeValue,
  encodeAddress,
  encodeBcd,
  encodeFrame,
  encodeValue,
  energyWh,
  errorReply,
  frameCheck,
  fromHex,
  hexBytes,
  isFrameComplete,
  parseReadAddressReply,
  parseReadReply,
  readAddressReply,
  readAddressRequest,
  readFollowUpReply,
  readFollowUpRequest,
  readReply,
  readRequest,
  scanFrame,
  timeSyncBroadcast,
  whToEnergy,
} from './codec.ts';

/** protocols.md, DL/T 645-2007, "Test vectors (checksums verified)": the exact wire bytes. */
const VECTORS = {
  wildcardReadTotal: 'FE FE FE FE 68 AA AA AA AA AA AA 68 11 04 33 33 34 33 AE 16',
  readTotal161: '68 61 01 00 00 00 00 68 11 04 33 33 34 33 14 16',
  reply006kWh: '68 14 01 00 31 82 21 68 91 08 33 33 34 33 39 33 33 33 F1 16',
  reply12345_67kWh: '68 61 01 00 00 00 00 68 91 08 33 33 34 33 9A 78 56 34 34 16',
  errorNoData: '68 61 01 00 00 00 00 68 D1 01 35 39 16',
  voltageC220: '68 11 11 00 00 00 00 68 91 06 33 36 34 35 33 55 E3 16',
};

function decoded(text: string) {
  const r = decodeFrame(fromHex(text));
  if (!r.ok) throw new Error(`vector did not decode: ${r.error.kind} ${r.error.message}`);
  return r.value;
}

describe('protocols.md test vectors', () => {
  it('request with FE wake-up bytes to the wildcard, forward active total', () => {
    const f = decoded(VECTORS.wildcardReadTotal);
    expect(f.address).toBe('AAAAAAAAAAAA');
    expect(f.control).toBe(0x11);
    expect(decodeControl(f.control)).toEqual({ fromMeter: false, error: false, more: false, fn: FN.read });
    expect(Array.from(f.data)).toEqual([0x00, 0x00, 0x01, 0x00]);
    expect(hexBytes(readRequest('AAAAAAAAAAAA', DI.forwardActiveTotal))).toBe(VECTORS.wildcardReadTotal);
  });

  it('request to 000000000161 without wake-up bytes', () => {
    const f = decoded(VECTORS.readTotal161);
    expect(f.address).toBe('000000000161');
    expect(hexBytes(readRequest('000000000161', DI.forwardActiveTotal, { wakeup: 0 }))).toBe(VECTORS.readTotal161);
    expect(hexBytes(encodeFrame(f))).toBe(VECTORS.readTotal161);
  });

  it('tariff register requests (protocols.md, "Tariff registers as billing reads them"): the block and tariffs 1 and 4', () => {
    const tariffs = {
      block: ['68 61 01 00 00 00 00 68 11 04 33 32 34 33 13 16', DI.forwardActiveBlock, [0x00, 0xff, 0x01, 0x00]],
      t1: ['68 61 01 00 00 00 00 68 11 04 33 34 34 33 15 16', DI.forwardActiveTariff(1), [0x00, 0x01, 0x01, 0x00]],
      t4: ['68 61 01 00 00 00 00 68 11 04 33 37 34 33 18 16', DI.forwardActiveTariff(4), [0x00, 0x04, 0x01, 0x00]],
    } as const;
    for (const [vector, di, data] of Object.values(tariffs)) {
      // DI0 first: DI0 = 00, DI1 = FF (block) or the tariff number, DI2 = 01 forward active, DI3 = 00.
      expect(Array.from(decoded(vector).data)).toEqual(data);
      expect(hexBytes(readRequest('000000000161', di, { wakeup: 0 }))).toBe(vector);
    }
  });

  it('reply of 0.06 kWh from 218231000114 is 60 Wh', () => {
    const f = decoded(VECTORS.reply006kWh);
    expect(f.address).toBe('218231000114');
    const r = parseReadReply(f, '218231000114', DI.forwardActiveTotal);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const v = decodeValue(r.value.di, r.value.payload);
    expect(v).toEqual({ ok: true, value: { kind: 'fixed', units: 6, decimals: 2, unit: 'kWh' } });
    if (v.ok && v.value.kind === 'fixed') expect(energyWh(v.value)).toBe(60);
    expect(hexBytes(readReply('218231000114', DI.forwardActiveTotal, encodeValue(DI.forwardActiveTotal, whToEnergy(60))))).toBe(VECTORS.reply006kWh);
  });

  it('reply of 12 345.67 kWh is 12 345 670 Wh, also when asked via the wildcard', () => {
    const f = decoded(VECTORS.reply12345_67kWh);
    const r = parseReadReply(f, 'AAAAAAAAAAAA', DI.forwardActiveTotal);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const v = decodeValue(DI.forwardActiveTotal, r.value.payload);
    expect(v.ok && v.value.kind === 'fixed' && energyWh(v.value)).toBe(12_345_670);
    expect(hexBytes(readReply('000000000161', DI.forwardActiveTotal, encodeBcd(1_234_567, 4)))).toBe(VECTORS.reply12345_67kWh);
  });

  it('error reply: no such data', () => {
    const f = decoded(VECTORS.errorNoData);
    expect(decodeControl(f.control)).toEqual({ fromMeter: true, error: true, more: false, fn: FN.read });
    const r = parseReadReply(f, '000000000161', DI.forwardActiveTariff(9));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.kind).toBe('meter-error');
    expect(r.error.meterError).toMatchObject({ raw: 0x02, noData: true, other: false, unauthorised: false });
    expect(hexBytes(errorReply('000000000161', FN.read, 0x02))).toBe(VECTORS.errorNoData);
  });

  it('voltage reply: phase C 220.0 V', () => {
    const f = decoded(VECTORS.voltageC220);
    expect(f.address).toBe('000000001111');
    const r = parseReadReply(f, '000000001111', DI.voltage(3));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(decodeValue(DI.voltage(3), r.value.payload)).toEqual({ ok: true, value: { kind: 'fixed', units: 2200, decimals: 1, unit: 'V' } });
    expect(hexBytes(readReply('000000001111', DI.voltage(3), encodeValue(DI.voltage(3), { kind: 'fixed', units: 2200, decimals: 1, unit: 'V' })))).toBe(VECTORS.voltageC220);
  });

  it('every vector round-trips byte for byte through decode and encode', () => {
    for (const text of Object.values(VECTORS)) {
      const bytes = fromHex(text);
      const wakeup = bytes.findIndex((b) => b !== 0xfe);
      expect(hexBytes(encodeFrame(decoded(text), { wakeup }))).toBe(text);
    }
  });
});

describe('addresses', () => {
  it('are BCD, lowest byte first (protocols.md: wire 61 01 00 00 00 00 is 000000000161)', () => {
    expect(Array.from(encodeAddress('000000000161'))).toEqual([0x61, 0x01, 0, 0, 0, 0]);
    expect(decodeAddress(Uint8Array.from([0x14, 0x01, 0x00, 0x31, 0x82, 0x21]))).toEqual({ ok: true, value: '218231000114' });
  });
  it('short input is a typed error, not an exception', () => {
    expect(decodeAddress(Uint8Array.from([1, 2]))).toMatchObject({ ok: false, error: { kind: 'truncated' } });
    expect(decodeBcd(Uint8Array.from([0x12]), 0, 4)).toMatchObject({ ok: false, error: { kind: 'truncated' } });
    expect(decodeValue(DI.forwardActiveTotal, new Uint8Array(0))).toMatchObject({ ok: false, error: { kind: 'unexpected-reply' } });
  });
  it('reject non-BCD bytes with a typed error, and bad text with a RangeError', () => {
    const r = decodeAddress(Uint8Array.from([0x1a, 0, 0, 0, 0, 0]));
    expect(r.ok || r.error.kind).toBe('bad-address');
    expect(() => encodeAddress('12345')).toThrow(RangeError);
    expect(() => encodeAddress('00000000001A')).toThrow(RangeError);
  });
});

describe('values', () => {
  it('signed current and power carry the sign in bit 7 of the top byte', () => {
    const neg = encodeValue(DI.activePowerTotal, { kind: 'fixed', units: -12_345, decimals: 4, unit: 'kW' });
    expect(hexBytes(neg)).toBe('45 23 81');
    expect(decodeValue(DI.activePowerTotal, neg)).toEqual({ ok: true, value: { kind: 'fixed', units: -12_345, decimals: 4, unit: 'kW' } });
    expect(decodeValue(DI.current(1), Uint8Array.from([0x00, 0x50, 0x02]))).toEqual({ ok: true, value: { kind: 'fixed', units: 25_000, decimals: 3, unit: 'A' } });
    expect(decodeBcd(Uint8Array.from([0, 0, 0x80]), 0, 3, true)).toEqual({ ok: true, value: 0 });
  });
  it('energy is converted to Wh on the digits: 999999.99 kWh is exact', () => {
    const v = decodeValue(DI.forwardActiveTotal, encodeBcd(99_999_999, 4));
    expect(v.ok && v.value.kind === 'fixed' && energyWh(v.value)).toBe(999_999_990);
    expect(whToEnergy(12_349)).toEqual({ kind: 'fixed', units: 1234, decimals: 2, unit: 'kWh' });
  });
  it('the FF block is the total then tariffs 1..n', () => {
    const items = [1000, 100, 200, 300, 400].map((units) => ({ kind: 'fixed', units, decimals: 2, unit: 'kWh' }) as const);
    const bytes = encodeValue(DI.forwardActiveBlock, { kind: 'block', items });
    expect(bytes.length).toBe(20);
    expect(decodeValue(DI.forwardActiveBlock, bytes)).toEqual({ ok: true, value: { kind: 'block', items } });
    expect(decodeValue(DI.forwardActiveBlock, bytes.slice(0, 7)).ok).toBe(false);
  });
  it('date YYMMDDWW and time hhmmss', () => {
    const date = { kind: 'date', year: 2026, month: 11, day: 24, weekday: 2 } as const;
    expect(hexBytes(encodeValue(DI.date, date))).toBe('02 24 11 26');
    expect(decodeValue(DI.date, encodeValue(DI.date, date))).toEqual({ ok: true, value: date });
    const time = { kind: 'time', hour: 7, minute: 5, second: 59 } as const;
    expect(hexBytes(encodeValue(DI.time, time))).toBe('59 05 07');
    expect(decodeValue(DI.time, encodeValue(DI.time, time))).toEqual({ ok: true, value: time });
    expect(decodeValue(DI.time, Uint8Array.from([0x61, 0, 0])).ok).toBe(false);
  });
  it('non-BCD value bytes (a meter answering FF FF FF FF) are a typed error', () => {
    const r = decodeValue(DI.forwardActiveTotal, Uint8Array.from([0xff, 0xff, 0xff, 0xff]));
    expect(r.ok || r.error.kind).toBe('bad-bcd');
  });
  it('DI bytes: tariffs 1..4 are 00 01 0n 00, voltage/current per phase', () => {
    expect([1, 2, 3, 4].map((n) => DI.forwardActiveTariff(n).toString(16))).toEqual(['10100', '10200', '10300', '10400']);
    expect(DI.voltage(1)).toBe(0x02010100);
    expect(DI.current(2)).toBe(0x02020200);
    expect(() => DI.forwardActiveTariff(0)).toThrow(RangeError);
  });
});

describe('other commands', () => {
  it('read address (13) to the wildcard and its reply (93)', () => {
    expect(hexBytes(readAddressRequest({ wakeup: 0 }))).toBe('68 AA AA AA AA AA AA 68 13 00 DF 16');
    const f = decodeFrame(readAddressReply('000000001102'));
    expect(f.ok && parseReadAddressReply(f.value)).toEqual({ ok: true, value: '000000001102' });
  });
  it('broadcast time sync (08) to 999999999999, ssmmhhDDMMYY', () => {
    const t = { year: 2026, month: 11, day: 24, hour: 7, minute: 0, second: 30 };
    const bytes = timeSyncBroadcast(t, { wakeup: 0 });
    const f = decodeFrame(bytes);
    expect(f.ok && f.value.address).toBe('999999999999');
    expect(f.ok && Array.from(f.value.data)).toEqual([0x30, 0x00, 0x07, 0x24, 0x11, 0x26]);
    expect(f.ok && decodeTimeSync(f.value)).toEqual({ ok: true, value: t });
  });
  it('follow-up: B1 says more, 12 asks with SEQ, 92 carries DI + data + SEQ', () => {
    const first = decodeFrame(readReply('000000000161', DI.forwardActiveBlock, encodeBcd(5, 4), true));
    expect(first.ok && first.value.control).toBe(0xb1);
    const r1 = first.ok ? parseReadReply(first.value, '000000000161', DI.forwardActiveBlock) : undefined;
    expect(r1?.ok && r1.value.more).toBe(true);
    const req = decodeFrame(readFollowUpRequest('000000000161', DI.forwardActiveBlock, 1));
    expect(req.ok && Array.from(req.value.data)).toEqual([0x00, 0xff, 0x01, 0x00, 0x01]);
    const next = decodeFrame(readFollowUpReply('000000000161', DI.forwardActiveBlock, encodeBcd(7, 4), 1));
    expect(next.ok && next.value.control).toBe(0x92);
    const r2 = next.ok ? parseReadReply(next.value, '000000000161', DI.forwardActiveBlock, FN.readFollowUp) : undefined;
    expect(r2?.ok && { more: r2.value.more, seq: r2.value.seq, payload: Array.from(r2.value.payload) }).toEqual({ more: false, seq: 1, payload: [7, 0, 0, 0] });
  });
  it('a reply for another DI or from another meter is unexpected', () => {
    const f = decoded(VECTORS.reply12345_67kWh);
    expect(parseReadReply(f, '000000000162', DI.forwardActiveTotal)).toMatchObject({ ok: false, error: { kind: 'unexpected-reply' } });
    expect(parseReadReply(f, '000000000161', DI.voltage(1))).toMatchObject({ ok: false, error: { kind: 'unexpected-reply' } });
    expect(parseReadReply(decoded(VECTORS.readTotal161), '000000000161', DI.forwardActiveTotal)).toMatchObject({ ok: false, error: { kind: 'unexpected-reply' } });
  });
});

describe('scanner', () => {
  it('finds frames between garbage, across chunk boundaries, and reports the garbage once', () => {
    const stream = fromHex(`01 02 03 ${VECTORS.wildcardReadTotal} 55 ${VECTORS.reply006kWh} FE FE`);
    const s = new FrameScanner();
    const events = [];
    for (let i = 0; i < stream.length; i += 3) events.push(...s.push(stream.slice(i, i + 3)));
    events.push(...s.end());
    expect(events.map((e) => (e.kind === 'frame' ? `frame ${e.frame.address}` : `error ${e.error.kind}`))).toEqual([
      'error garbage',
      'frame AAAAAAAAAAAA',
      'error garbage',
      'frame 218231000114',
    ]);
  });
  it('reports a bad checksum and skips that frame, then finds the next', () => {
    const bad = fromHex(VECTORS.errorNoData);
    bad[bad.length - 2] ^= 0x01;
    const s = new FrameScanner();
    const events = [...s.push(Uint8Array.from([...bad, ...fromHex(VECTORS.readTotal161)])), ...s.end()];
    expect(events.map((e) => e.kind + (e.kind === 'error' ? ` ${e.error.kind}` : ''))).toEqual(['error bad-checksum', 'frame']);
  });
  it('a truncated frame is typed: need-more while streaming, truncated at the end', () => {
    const part = fromHex(VECTORS.reply006kWh).slice(0, 15);
    expect(scanFrame(part).kind).toBe('need-more');
    expect(decodeFrame(part)).toMatchObject({ ok: false, error: { kind: 'truncated' } });
    const s = new FrameScanner();
    expect(s.push(part)).toEqual([]);
    expect(s.end()).toMatchObject([{ kind: 'error', error: { kind: 'truncated' } }]);
  });
  it('isFrameComplete: only when the whole frame is in, valid or with a bad checksum', () => {
    const f = fromHex(VECTORS.reply006kWh);
    for (let n = 0; n < f.length; n++) expect(isFrameComplete(f.slice(0, n))).toBe(false);
    expect(isFrameComplete(f)).toBe(true);
    const bad = f.slice();
    bad[12] ^= 0xff;
    expect(isFrameComplete(bad)).toBe(true);
  });
  it('frameCheck speaks the bus scheduler\'s 0 / n / -n contract', () => {
    const f = fromHex(VECTORS.wildcardReadTotal);
    expect(frameCheck(f.slice(0, 10))).toBe(0);
    expect(frameCheck(f)).toBe(f.length);
    expect(frameCheck(Uint8Array.from([...f, 0x68]))).toBe(f.length);
    expect(frameCheck(Uint8Array.from([1, 2, ...f]))).toBe(-2);
    const bad = f.slice();
    bad[bad.length - 2] ^= 1;
    expect(frameCheck(bad)).toBe(bad.length);
    expect(frameCheck(fromHex('68 61 01 00 00 00 00 69 00 00 00 00'))).toBe(-1);
  });
  it('rejects lengths above 200 and missing end bytes without throwing', () => {
    expect(decodeFrame(fromHex('68 61 01 00 00 00 00 68 91 C9 00'))).toMatchObject({ ok: false, error: { kind: 'bad-length' } });
    expect(decodeFrame(fromHex('68 61 01 00 00 00 00 68 D1 01 35 39 17'))).toMatchObject({ ok: false, error: { kind: 'bad-end' } });
    expect(decodeFrame(fromHex('68 61 01 00 00 00 00 69 D1 01 35 39 16'))).toMatchObject({ ok: false, error: { kind: 'bad-start' } });
    expect(decodeFrame(fromHex(`${VECTORS.errorNoData} 00`))).toMatchObject({ ok: false, error: { kind: 'trailing' } });
  });
});
