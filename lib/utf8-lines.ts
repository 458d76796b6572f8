import { createReadStream } from 'node:fs';

/**
 * A text file's lines, decoded strictly: a line that is not valid UTF-8 comes back as
 * `text: undefined` (with its number) instead of being repaired with U+FFFD, which would
 * make two references that differ in one Latin-1 byte the same text and lose a payment.
 * Lines end at LF; a CR before it is dropped. Streams, so a file of any size works.
 */
export interface Utf8Line {
  /** 1-based. */
  readonly lineNo: number;
  /** undefined: the line is not valid UTF-8. */
  readonly text: string | undefined;
  /** Bytes of the file consumed up to the end of this line (progress). */
  readonly bytes: number;
}

export async function* utf8Lines(path: string): AsyncGenerator<Utf8Line> {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
  const decode = (b: Uint8Array): string | undefined => {
    try {
      return decoder.decode(b);
    } catch {
      return undefined;
    }
  };
  let lineNo = 0;
  let bytes = 0;
  let carry: Buffer | undefined;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    let buf = carry ? Buffer.concat([carry, chunk]) : chunk;
    carry = undefined;
    let s = 0;
    for (;;) {
      const e = buf.indexOf(10, s);
      if (e < 0) break;
      lineNo++;
      bytes += e + 1 - s;
      yield { lineNo, text: decode(buf.subarray(s, e > s && buf[e - 1] === 13 ? e - 1 : e)), bytes };
      s = e + 1;
    }
    if (s < buf.length) carry = Buffer.from(buf.subarray(s));
    buf = Buffer.alloc(0);
  }
  if (carry && carry.length > 0) {
    lineNo++;
    bytes += carry.length;
    yield { lineNo, text: decode(carry[carry.length - 1] === 13 ? carry.subarray(0, -1) : carry), bytes };
  }
}

/** The line number of the first line that is not valid UTF-8 in a buffer, or undefined. */
export function firstInvalidUtf8Line(bytes: Uint8Array): number | undefined {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  try {
    decoder.decode(bytes);
    return undefined;
  } catch {
    let s = 0;
    for (let line = 1; ; line++) {
      const e = bytes.indexOf(10, s);
      const end = e < 0 ? bytes.length : e;
      try {
        decoder.decode(bytes.subarray(s, end));
      } catch {
        return line;
      }
      if (e < 0) return undefined;
      s = e + 1;
    }
  }
}
