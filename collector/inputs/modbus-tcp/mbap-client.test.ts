import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { BlockReadError, MbapConnection, MbapError } from './mbap-client.ts';

/**
 * The MBAP client against a scripted server: each test says what the "device" sends back
 * for each request frame, byte for byte, including the misbehaviour real gateways show
 * (late replies, replies split over TCP segments, garbage).
 */
type Script = (req: Buffer, socket: Socket) => void;

let server: Server | undefined;
let conn: MbapConnection | undefined;
afterEach(async () => {
  conn?.destroy();
  conn = undefined;
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

async function serve(script: Script): Promise<number> {
  server = createServer((socket) => {
    let buf = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 12) {
        script(buf.subarray(0, 12), socket);
        buf = buf.subarray(12);
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

/** A normal read reply to `req` with register i = base + i. */
function reply(req: Buffer, base = 0x100, opts: { tid?: number } = {}): Buffer {
  const count = req.readUInt16BE(10);
  const out = Buffer.alloc(9 + 2 * count);
  out.writeUInt16BE(opts.tid ?? req.readUInt16BE(0), 0);
  out.writeUInt16BE(0, 2);
  out.writeUInt16BE(3 + 2 * count, 4);
  out[6] = req[6];
  out[7] = req[7];
  out[8] = 2 * count;
  for (let i = 0; i < count; i++) out.writeUInt16BE(base + i, 9 + 2 * i);
  return out;
}

async function failure(p: Promise<unknown>): Promise<MbapError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(MbapError);
  return err as MbapError;
}

describe('MbapConnection', () => {
  it('reads registers, also from a reply split over several TCP segments', async () => {
    const port = await serve((req, socket) => {
      const r = reply(req);
      // One byte, then the rest: the client must wait for the whole frame.
      socket.write(r.subarray(0, 1));
      setTimeout(() => socket.write(r.subarray(1, 8)), 5);
      setTimeout(() => socket.write(r.subarray(8)), 10);
    });
    conn = await MbapConnection.connect('127.0.0.1', port, 1000);
    expect(await conn.readRegisters(7, 4, 0x34, 3, 1000)).toEqual([0x100, 0x101, 0x102]);
    expect(await conn.readRegisters(7, 3, 0, 1, 1000)).toEqual([0x100]);
  });

  it('drops the late reply of a timed-out request instead of taking it for the next answer', async () => {
    let n = 0;
    const port = await serve((req, socket) => {
      n++;
      // First request: answered 150 ms late (after the client gave up), with base 0xdead.
      if (n === 1) setTimeout(() => socket.write(reply(req, 0xdead)), 150);
      else setTimeout(() => socket.write(reply(req, 0x100)), 200);
    });
    conn = await MbapConnection.connect('127.0.0.1', port, 1000);
    expect((await failure(conn.readRegisters(1, 4, 0, 2, 100))).kind).toBe('timeout');
    // The second request is in flight when the late 0xdead reply arrives; it must wait for its own.
    expect(await conn.readRegisters(1, 4, 0, 2, 1000)).toEqual([0x100, 0x101]);
  });

  it('reports an exception with its code, and a reply that does not answer the request as protocol', async () => {
    let n = 0;
    const port = await serve((req, socket) => {
      n++;
      const tid = req.readUInt16BE(0);
      if (n === 1) socket.write(Buffer.from([tid >> 8, tid & 0xff, 0, 0, 0, 3, req[6], req[7] | 0x80, 0x02]));
      else if (n === 2) {
        // A well-framed reply one register short of what was asked.
        const shorter = Buffer.from(req);
        shorter.writeUInt16BE(req.readUInt16BE(10) - 1, 10);
        socket.write(reply(shorter));
      } else socket.write(reply(req));
    });
    conn = await MbapConnection.connect('127.0.0.1', port, 1000);
    const ex = await failure(conn.readRegisters(3, 3, 0x4000, 2, 1000));
    expect(ex.kind).toBe('exception');
    expect(ex.code).toBe(2);
    const short = await failure(conn.readRegisters(3, 3, 0x4000, 2, 1000));
    expect(short.kind).toBe('protocol');
    expect(short.message).toMatch(/got 1 registers.*asked 2/);
    expect(await conn.readRegisters(3, 3, 0x4000, 2, 1000)).toEqual([0x100, 0x101]);
  });

  it('closes on a stream that is not Modbus TCP and fails the request in flight', async () => {
    const port = await serve((_req, socket) => socket.write(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n')));
    conn = await MbapConnection.connect('127.0.0.1', port, 1000);
    const err = await failure(conn.readRegisters(1, 4, 0, 2, 1000));
    expect(err.kind).toBe('protocol');
    expect(err.message).toMatch(/malformed MBAP header/);
    await new Promise((r) => setTimeout(r, 20));
    expect(conn.isOpen).toBe(false);
    expect((await failure(conn.readRegisters(1, 4, 0, 2, 1000))).kind).toBe('connection');
  });

  it('fails the request in flight when the peer closes, and a connect to nothing names the error', async () => {
    const port = await serve((_req, socket) => socket.destroy());
    conn = await MbapConnection.connect('127.0.0.1', port, 1000);
    expect((await failure(conn.readRegisters(1, 4, 0, 2, 1000))).kind).toBe('connection');
    const closed = await serve(() => {});
    await new Promise<void>((r) => server!.close(() => r()));
    server = undefined;
    const err = await failure(MbapConnection.connect('127.0.0.1', closed, 1000));
    expect(err.kind).toBe('connection');
    expect(err.message).toMatch(/ECONNREFUSED/);
  });
});

describe('MbapConnection.request', () => {
  it('sends any PDU and returns the reply PDU (a write single register, function 06)', async () => {
    const port = await serve(() => {});
    // The scripted server above frames 12-byte requests, which a function 06 request is.
    server!.removeAllListeners('connection');
    server!.on('connection', (socket: Socket) => {
      socket.on('data', (req: Buffer) => socket.write(req)); // 06 echoes the request
    });
    conn = await MbapConnection.connect('127.0.0.1', port, 1000);
    const pdu = Buffer.from([0x06, 0x00, 0x10, 0x12, 0x34]);
    expect([...(await conn.request(9, pdu, 1000))]).toEqual([...pdu]);
  });
});

describe('MbapConnection.writeRegister', () => {
  it('writes with 06 or 16 and checks the confirmation; a wrong echo is a protocol error', async () => {
    const written: string[] = [];
    const port = await serve(() => {});
    server!.removeAllListeners('connection');
    server!.on('connection', (socket: Socket) => {
      socket.on('data', (req: Buffer) => {
        const pdu = req.subarray(7);
        written.push(pdu.toString('hex'));
        const head = Buffer.from(req.subarray(0, 7));
        const answer = pdu[0] === 6 ? (pdu[4] === 0x99 ? Buffer.from([6, pdu[1], pdu[2], 0, 0]) : pdu) : pdu.subarray(0, 5);
        head.writeUInt16BE(1 + answer.length, 4);
        socket.write(Buffer.concat([head, answer]));
      });
    });
    conn = await MbapConnection.connect('127.0.0.1', port, 1000);
    await conn.writeRegister(3, 6, 0x0100, 0x1234, 1000);
    await conn.writeRegister(3, 16, 0x0100, 0x00ff, 1000);
    expect(written).toEqual(['0601001234', '10010000010200ff']);
    const err = await failure(conn.writeRegister(3, 6, 0x0100, 0x0099, 1000));
    expect(err.kind).toBe('protocol');
    expect(err.message).toMatch(/not confirmed/);
  });

  it('reads a meter\'s blocks back to back: the next request leaves from the reply handler, before any promise job runs', async () => {
    const seen: string[] = [];
    const port = await serve((req, socket) => {
      seen.push(`${req[6]}:${req[7]}@${req.readUInt16BE(8)}+${req.readUInt16BE(10)}`);
      socket.write(reply(req, req.readUInt16BE(8)));
    });
    conn = await MbapConnection.connect('127.0.0.1', port, 1000);
    // Which writes happen inside the reply handler (onRead, called by the socket's onread).
    const c = conn;
    const inner = c as unknown as { socket: { write: (b: Buffer) => boolean }; onRead: (b: Buffer, n: number) => void };
    const write = inner.socket.write.bind(inner.socket);
    const onRead = inner.onRead.bind(c);
    let inReply = false;
    const sent: boolean[] = [];
    inner.socket.write = (b: Buffer) => {
      sent.push(inReply);
      return write(b);
    };
    inner.onRead = (b: Buffer, n: number) => {
      inReply = true;
      try {
        onRead(b, n);
      } finally {
        inReply = false;
      }
    };
    const blocks = await c.readBlocks(7, [{ functionCode: 4, start: 0, count: 3 }, { functionCode: 3, start: 0x34, count: 2 }], 1000);
    expect(seen).toEqual(['7:4@0+3', '7:3@52+2']);
    expect(blocks).toEqual([[0, 1, 2], [0x34, 0x35]]);
    // The first request from the call, the second from within the first reply's handler
    // (a loop awaiting readRegisters sends it from a promise job after the handler returned).
    expect(sent).toEqual([false, true]);
  });

  it('fails readBlocks on the first block that fails, naming it, and sends none after it', async () => {
    const seen: number[] = [];
    const port = await serve((req, socket) => {
      seen.push(req.readUInt16BE(8));
      if (req.readUInt16BE(8) === 0x34) {
        const ex = Buffer.from([0, 0, 0, 0, 0, 3, req[6], req[7] | 0x80, 2]);
        ex.writeUInt16BE(req.readUInt16BE(0), 0);
        socket.write(ex);
      } else socket.write(reply(req));
    });
    conn = await MbapConnection.connect('127.0.0.1', port, 1000);
    const err = await conn.readBlocks(1, [{ functionCode: 4, start: 0, count: 2 }, { functionCode: 4, start: 0x34, count: 2 }, { functionCode: 4, start: 0x100, count: 2 }], 1000).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(BlockReadError);
    expect((err as BlockReadError).block).toMatchObject({ start: 0x34 });
    expect((err as BlockReadError).cause).toMatchObject({ kind: 'exception', code: 2 });
    expect(seen).toEqual([0, 0x34]);
    // The connection goes on.
    expect(await conn.readRegisters(1, 4, 0x100, 1, 1000)).toEqual([0x100]);
  });
});
