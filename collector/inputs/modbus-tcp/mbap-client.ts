import { connect } from 'node:net';
import type { Socket } from 'node:net';
import type { ReadBlock } from '../modbus/maps.ts';

/**
 * A Modbus TCP client connection: MBAP framing over one socket, one request in flight
 * (Modbus Messaging on TCP/IP Implementation Guide V1.0b, section 3.1.3: transaction id
 * 2 bytes, protocol id 0 2 bytes, length of unit id + PDU 2 bytes, unit id 1 byte).
 *
 * Our own rather than modbus-serial's: its TCP port emulates an RTU line, so every
 * request builds an RTU frame and a CRC that the port then strips, and every reply gets
 * a CRC computed twice, plus a Buffer.concat, a timer and debug calls. Profiled on
 * bench/polling.bench.ts that was two thirds of the collector's CPU per request (3-4x
 * mbpoll's); here a request is one 12-byte Buffer and a reply is parsed in place, read
 * with the socket's `onread` option into one buffer per connection (no Buffer and no
 * stream `push` per reply).
 */

/** Why a request failed; the pool turns it into a MeterReadError of the same kind. */
export class MbapError extends Error {
  readonly kind: 'timeout' | 'exception' | 'connection' | 'protocol';
  /** Modbus exception code (kind `exception`). */
  readonly code?: number;
  constructor(kind: MbapError['kind'], message: string, code?: number) {
    super(message);
    this.name = 'MbapError';
    this.kind = kind;
    if (code !== undefined) this.code = code;
  }
}

const MBAP_HEADER = 7; // incl. the unit id
const EMPTY = Buffer.alloc(0);
/** Read buffer per connection: a reply is at most 7 + 253 bytes; a few fit at once. */
const READ_BUFFER = 4096;
/** A PDU is at most 253 bytes (MODBUS Application Protocol V1.1b3, 4.1), so length <= 254. */
const MAX_LENGTH = 254;

/** A readBlocks failure: the MbapError, and which block it failed on (for the message). */
export class BlockReadError extends Error {
  override readonly cause: MbapError;
  readonly block: ReadBlock;
  constructor(cause: MbapError, block: ReadBlock) {
    super(cause.message);
    this.name = 'BlockReadError';
    this.cause = cause;
    this.block = block;
  }
}

/**
 * A readBlocks call in progress: the connection sends its next block from the reply
 * handler of the one before. State in an object rather than closures per request: the
 * loader (tsx, esbuild's keepNames) names every named closure when it is created, a
 * defineProperty per closure that showed in bench/polling.bench.ts's profile.
 */
interface BlockRun {
  readonly unit: number;
  readonly blocks: readonly ReadBlock[];
  readonly timeoutMs: number;
  /** Registers of the blocks read so far; its length is the index of the block in flight. */
  readonly out: number[][];
  readonly resolve: (value: number[][]) => void;
  readonly reject: (err: BlockReadError) => void;
}

interface InFlight {
  readonly tid: number;
  readonly unit: number;
  readonly functionCode: number;
  /** Registers asked for (reads); -1 for a raw request. */
  readonly count: number;
  /** A single request's settlers (readRegisters, request)... */
  readonly resolve?: (value: never) => void;
  readonly reject?: (err: MbapError) => void;
  /** ...or the readBlocks call this block belongs to. */
  readonly run?: BlockRun;
}

/** A read request (function 03 or 04): MBAP header with length 6, unit, function, start, quantity. */
function readRequest(tid: number, unit: number, functionCode: number, start: number, count: number): Buffer {
  const req = Buffer.allocUnsafe(12);
  req.writeUInt16BE(tid, 0);
  req.writeUInt16BE(0, 2);
  req.writeUInt16BE(6, 4);
  req[6] = unit;
  req[7] = functionCode;
  req.writeUInt16BE(start, 8);
  req.writeUInt16BE(count, 10);
  return req;
}

export class MbapConnection {
  private readonly socket: Socket;
  /** Bytes of an incomplete frame carried to the next read (a copy: the read buffer is reused). */
  private rx: Buffer = EMPTY;
  private nextTid = 0;
  private inFlight: InFlight | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timeoutMs = 1000;
  private open = true;
  private closeReason = 'connection closed';

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('error', (err) => this.fail(`connection error: ${err.message}`));
    socket.on('close', () => this.fail(this.closeReason));
  }

  /** Opens a connection; rejects with MbapError `connection` after `timeoutMs`. */
  static connect(host: string, port: number, timeoutMs: number): Promise<MbapConnection> {
    return new Promise((resolve, reject) => {
      // noDelay: a request is one small write awaited by its reply; Nagle would hold the
      // next meter's request for the delayed ACK of the previous reply.
      let conn: MbapConnection | undefined;
      const socket = connect({
        host,
        port,
        noDelay: true,
        // Node's onread: replies land in this buffer and go straight to the parser, no
        // 'data' event through the stream machinery (Node net docs, "socket.connect").
        onread: {
          buffer: Buffer.allocUnsafe(READ_BUFFER),
          callback: (n: number, buf: Uint8Array) => {
            conn?.onRead(buf as Buffer, n);
            return true; // keep reading (false would pause the socket)
          },
        },
      });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new MbapError('connection', `connect timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        conn = new MbapConnection(socket);
        resolve(conn);
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        socket.destroy();
        reject(new MbapError('connection', err.message || String(err.code)));
      });
    });
  }

  get isOpen(): boolean {
    return this.open;
  }

  /**
   * Reads `count` registers with function 03 or 04 from `unit`. Resolves with the
   * register values; rejects with MbapError: `exception` (the device answered with an
   * exception code), `timeout` (no reply within `timeoutMs`; a late reply is dropped by
   * its transaction id), `connection`, or `protocol` (a reply that does not answer the
   * request: other function, wrong byte count).
   */
  readRegisters(unit: number, functionCode: 3 | 4, start: number, count: number, timeoutMs: number): Promise<number[]> {
    if (!this.open) return Promise.reject(new MbapError('connection', this.closeReason));
    if (this.inFlight) return Promise.reject(new MbapError('protocol', 'a request is already in flight on this connection'));
    const tid = (this.nextTid = (this.nextTid + 1) & 0xffff);
    return this.send(readRequest(tid, unit, functionCode, start, count), tid, unit, functionCode, count, timeoutMs);
  }

  /**
   * Reads a meter's blocks back to back, one request in flight as with readRegisters:
   * each next request is written from the reply handler of the one before, before
   * anything else runs. A `for` loop awaiting readRegisters put a promise, an async
   * continuation and the pool's bookkeeping between a meter's two requests
   * (bench/polling.bench.ts: the SDM630's plan is 2 requests). Resolves with each
   * block's registers in plan order; rejects with BlockReadError on the first block that
   * fails (the rest are not sent).
   */
  readBlocks(unit: number, blocks: readonly ReadBlock[], timeoutMs: number): Promise<number[][]> {
    if (blocks.length === 0) return Promise.resolve([]);
    return new Promise<number[][]>((resolve, reject) => this.sendBlock({ unit, blocks, timeoutMs, out: [], resolve, reject }));
  }

  /** Sends the next block of `run` (the one at `run.out.length`). */
  private sendBlock(run: BlockRun): void {
    const b = run.blocks[run.out.length];
    if (!this.open) return run.reject(new BlockReadError(new MbapError('connection', this.closeReason), b));
    if (this.inFlight) return run.reject(new BlockReadError(new MbapError('protocol', 'a request is already in flight on this connection'), b));
    const tid = (this.nextTid = (this.nextTid + 1) & 0xffff);
    this.inFlight = { tid, unit: run.unit, functionCode: b.functionCode, count: b.count, run };
    this.armTimer(run.timeoutMs);
    this.socket.write(readRequest(tid, run.unit, b.functionCode, b.start, b.count));
  }

  /** Settles a request that got its answer: a block run goes on with its next block, or resolves. */
  private answered(f: InFlight, value: number[] | Buffer): void {
    const run = f.run;
    if (!run) return f.resolve!(value as never);
    run.out.push(value as number[]);
    if (run.out.length < run.blocks.length) this.sendBlock(run);
    else run.resolve(run.out);
  }

  /** Rejects a request; a block run with a BlockReadError naming the block in flight. */
  private failed(f: InFlight, err: MbapError): void {
    const run = f.run;
    if (run) run.reject(new BlockReadError(err, run.blocks[run.out.length]));
    else f.reject!(err);
  }

  /**
   * Sends one request PDU (function code + data) to `unit` and resolves with the reply
   * PDU (function code + data) of the same function. Exceptions, timeouts and a reply
   * of another function reject as in readRegisters. For the functions the maps do not
   * read with (writes: 05, 06, 16).
   */
  request(unit: number, pdu: Uint8Array, timeoutMs: number): Promise<Buffer> {
    if (!this.open) return Promise.reject(new MbapError('connection', this.closeReason));
    if (this.inFlight) return Promise.reject(new MbapError('protocol', 'a request is already in flight on this connection'));
    if (pdu.length < 1 || pdu.length > MAX_LENGTH - 1) return Promise.reject(new MbapError('protocol', `a PDU is 1..253 bytes, got ${pdu.length}`));
    const tid = (this.nextTid = (this.nextTid + 1) & 0xffff);
    const req = Buffer.allocUnsafe(7 + pdu.length);
    req.writeUInt16BE(tid, 0);
    req.writeUInt16BE(0, 2);
    req.writeUInt16BE(1 + pdu.length, 4);
    req[6] = unit;
    req.set(pdu, 7);
    return this.send(req, tid, unit, pdu[0], -1, timeoutMs);
  }

  /**
   * Writes one holding register with function 06 (write single register) or 16 (write
   * multiple registers, quantity 1), as the meter takes it (a relay command). The reply
   * must confirm it: 06 echoes address and value, 16 answers address and quantity
   * (MODBUS Application Protocol V1.1b3, 6.6 and 6.12); anything else is `protocol`.
   */
  async writeRegister(unit: number, functionCode: 6 | 16, address: number, value: number, timeoutMs: number): Promise<void> {
    const a = [(address >> 8) & 0xff, address & 0xff];
    const v = [(value >> 8) & 0xff, value & 0xff];
    const pdu = functionCode === 6 ? Buffer.from([6, ...a, ...v]) : Buffer.from([16, ...a, 0, 1, 2, ...v]);
    const reply = await this.request(unit, pdu, timeoutMs);
    const expected = functionCode === 6 ? pdu : pdu.subarray(0, 5);
    if (!reply.equals(expected)) throw new MbapError('protocol', `write of register ${address} not confirmed: reply ${reply.toString('hex')}, expected ${expected.toString('hex')}`);
  }

  private send<T>(req: Buffer, tid: number, unit: number, functionCode: number, count: number, timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.inFlight = { tid, unit, functionCode, count, resolve: resolve as (v: never) => void, reject };
      this.armTimer(timeoutMs);
      this.socket.write(req);
    });
  }

  destroy(): void {
    this.closeReason = 'connection closed by the collector';
    this.socket.destroy();
    this.fail(this.closeReason);
  }

  /**
   * One timer per connection, re-armed per request: `refresh()` restarts it without
   * allocating (a request takes well under a millisecond on a LAN, a timer per request
   * was measurable).
   */
  private armTimer(timeoutMs: number): void {
    if (this.timer && this.timeoutMs === timeoutMs) {
      this.timer.refresh();
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timeoutMs = timeoutMs;
    // unref: the socket keeps the process alive while a request is in flight; an idle
    // connection's armed timer must not hold a finishing collector open.
    this.timer = setTimeout(() => this.onTimeout(), timeoutMs).unref();
  }

  private onTimeout(): void {
    const f = this.inFlight;
    if (!f) return; // the timer fires once after an answered request: nothing to do
    this.inFlight = undefined;
    this.failed(f, new MbapError('timeout', `no reply within ${this.timeoutMs} ms`));
  }

  private settle(): InFlight | undefined {
    const f = this.inFlight;
    this.inFlight = undefined;
    return f;
  }

  private onRead(buf: Buffer, n: number): void {
    let b = buf;
    let len = n;
    if (this.rx.length > 0) {
      b = Buffer.concat([this.rx, buf.subarray(0, n)]);
      len = b.length;
      this.rx = EMPTY;
    }
    let pos = 0;
    while (len - pos >= MBAP_HEADER) {
      const length = b.readUInt16BE(pos + 4);
      if (b.readUInt16BE(pos + 2) !== 0 || length < 2 || length > MAX_LENGTH) {
        // Not a Modbus TCP stream any more: nothing after this can be framed. Close, so
        // the pool reconnects rather than misreading the bytes that follow.
        this.closeReason = `malformed MBAP header (protocol id ${b.readUInt16BE(pos + 2)}, length ${length})`;
        const f = this.settle();
        if (f) this.failed(f, new MbapError('protocol', this.closeReason));
        this.socket.destroy();
        return;
      }
      const end = pos + 6 + length;
      if (end > len) break;
      this.onFrame(b, pos, end);
      pos = end;
    }
    if (pos < len) this.rx = Buffer.from(b.subarray(pos, len));
  }

  /** `b[at..end)` is one frame: MBAP header, unit id, PDU. */
  private onFrame(b: Buffer, at: number, end: number): void {
    const f = this.inFlight;
    // A reply to an earlier request that timed out (or noise with another id): dropped,
    // so it cannot be taken for the answer to the request now in flight.
    if (!f || b.readUInt16BE(at) !== f.tid) return;
    this.settle();
    const unit = b[at + 6];
    const fc = b[at + 7];
    if (unit !== f.unit) return this.failed(f, new MbapError('protocol', `reply from unit ${unit}, asked unit ${f.unit}`));
    if (fc === (f.functionCode | 0x80)) {
      if (end - at < 9) return this.failed(f, new MbapError('protocol', 'exception reply without a code'));
      return this.failed(f, new MbapError('exception', `exception ${b[at + 8]}`, b[at + 8]));
    }
    if (fc !== f.functionCode) return this.failed(f, new MbapError('protocol', `reply has function ${fc}, asked ${f.functionCode}`));
    if (f.count < 0) return this.answered(f, Buffer.from(b.subarray(at + 7, end)));
    const bytes = b[at + 8];
    const size = end - at;
    if (bytes !== f.count * 2 || size !== 9 + bytes) return this.failed(f, new MbapError('protocol', `got ${size >= 9 ? Math.floor((size - 9) / 2) : 0} registers (byte count ${bytes}), asked ${f.count}`));
    const registers = new Array<number>(f.count);
    for (let i = 0; i < f.count; i++) registers[i] = b.readUInt16BE(at + 9 + 2 * i);
    this.answered(f, registers);
  }

  private fail(reason: string): void {
    this.open = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const f = this.settle();
    if (f) this.failed(f, new MbapError('connection', reason));
  }
}
