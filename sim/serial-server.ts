import { SerialPort } from 'serialport';
import type { Logger } from '../lib/logger.ts';
import { rtuCrcOk, rtuFrame } from './modbus-pdu.ts';
import type { SimulatedMeter } from './simulated-meter.ts';

/**
 * The simulator's side of one RS485 bus: a serial device (a socat PTY end in tests) with
 * every meter the site puts on that bus. Frames are told apart by pluggable protocol
 * handlers, so Modbus RTU and DL/T 645 meters can share one line as they do in the field.
 *
 * Framing. Real slaves delimit frames by line silence (t3.5 for Modbus RTU); a PTY
 * delivers bytes in arbitrary chunks with no timing, so handlers frame by content instead
 * (length fields, checksums) and a short idle timeout drops leftovers that never become
 * a frame (noise, a truncated request).
 */

/** What a handler says about the bytes at the start of the receive buffer. */
export type FrameMatch =
  /** Not this protocol: let the next handler look. */
  | 'none'
  /** Could become a frame of this protocol: wait for more bytes. */
  | 'incomplete'
  /** A complete frame of `length` bytes (it may still fail its checksum: the handler decides in `handle`). */
  | { readonly length: number };

/** What a protocol handler sees of the bus. */
export interface SerialBusContext {
  /** The bus as the site file names it (`connection.port`). */
  readonly sitePort: string;
  /** The device the simulator serves it on. */
  readonly device: string;
  /** Every simulated meter on this bus, of any protocol. */
  readonly meters: readonly SimulatedMeter[];
  readonly log: Logger;
}

/**
 * A serial protocol the bus speaks, e.g. DL/T 645 (registered by its own module through
 * `startSimulator({ serialProtocols })` or `sim.registerSerialProtocol(h)`). Handlers are
 * asked in registration order and Modbus RTU last, so a handler claims its frames first:
 * DL/T 645 claims buffers starting with FE (wake-up) or 68 and must answer 'none' when
 * the bytes cannot be its frame (e.g. Modbus unit 0x68 followed by a function code), so
 * that Modbus RTU gets them.
 *
 * `handle` gets one complete frame and returns the reply bytes, or null for silence
 * (not addressed to a meter here, bad checksum, broadcast, an injected no-answer). For
 * each request it should call `meter.takeRequestFault()` on the addressed meter and
 * honour it: 'no-answer' -> null; 'crc' -> a reply with a wrong checksum; 'exception' ->
 * the protocol's error reply; and read values with `meter.read({ energyRead: true })`
 * when the request reads energy (that is how injected spikes show).
 */
export interface SerialFrameHandler {
  readonly name: string;
  match(buf: Buffer, bus: SerialBusContext): FrameMatch;
  handle(frame: Buffer, bus: SerialBusContext): Buffer | null | Promise<Buffer | null>;
}

/**
 * RS485 line timing emulation: the reply is held back by the wire time of the request
 * and the reply at the bus's baud rate, plus the meter's turnaround, so a client on a PTY
 * sees the throughput of a real bus (protocols.md "RS485 timing"). Characters are
 * 1 start + 8 data + parity bit if any + stop bits: 10 bits at 8N1, 11 at 8E1.
 */
export interface LineTiming {
  readonly baud: number;
  readonly parity: 'none' | 'even' | 'odd';
  /** @defaultValue 1 */
  readonly stopBits?: 1 | 2;
  /** @defaultValue 8 */
  readonly dataBits?: 7 | 8;
  /** Meter's turnaround before replying, ms. @defaultValue 5 */
  readonly turnaroundMs?: number;
}

export function bitsPerChar(t: Pick<LineTiming, 'parity' | 'stopBits' | 'dataBits'>): number {
  return 1 + (t.dataBits ?? 8) + (t.parity === 'none' ? 0 : 1) + (t.stopBits ?? 1);
}

/** Milliseconds the request plus the reply occupy the wire, plus turnaround. */
export function replyDelayMs(t: LineTiming, requestBytes: number, replyBytes: number): number {
  return ((requestBytes + replyBytes) * bitsPerChar(t) * 1000) / t.baud + (t.turnaroundMs ?? 5);
}

/** Modbus RTU: the default handler, last in line. */
export const modbusRtuHandler: SerialFrameHandler = {
  name: 'modbus-rtu',
  match(buf) {
    if (buf.length < 2) return 'incomplete';
    const fc = buf[1] & 0x7f;
    // Request lengths by function (Modbus Application Protocol 6.1-6.17): fixed 8 bytes for
    // reads and single writes, 9 + byte count for multiple writes.
    if (fc >= 1 && fc <= 6) return buf.length >= 8 ? { length: 8 } : 'incomplete';
    if (fc === 15 || fc === 16) {
      if (buf.length < 7) return 'incomplete';
      const len = 9 + buf[6];
      return buf.length >= len ? { length: len } : 'incomplete';
    }
    // Diagnostics, counters, report slave id, read/write multiple, device identification:
    // lengths vary; accept when a CRC closes the buffer (the meter answers exception 01).
    if ([7, 8, 11, 12, 17, 20, 21, 22, 23, 24, 43].includes(fc)) {
      for (let len = 4; len <= Math.min(buf.length, 256); len++) if (rtuCrcOk(buf.subarray(0, len))) return { length: len };
      return buf.length >= 256 ? 'none' : 'incomplete';
    }
    // No such function: line noise. Skip the byte at once rather than wait for silence, so
    // a request right behind the noise is still answered.
    return 'none';
  },
  handle(frame, bus) {
    // A frame with a bad CRC is ignored by every slave (Modbus over Serial Line 2.4.3).
    if (!rtuCrcOk(frame)) return null;
    const unit = frame[0];
    // Unit 0 is broadcast: slaves act but never answer (2.2).
    if (unit === 0) return null;
    const meter = bus.meters.find((m) => m.meter.connection?.protocol === 'modbus-rtu' && m.meter.connection.unit === unit);
    if (!meter) return null;
    const out = meter.modbus(frame.subarray(1, frame.length - 2));
    if (out.kind === 'silent') return null;
    const reply = rtuFrame(unit, out.pdu);
    if (out.kind === 'corrupt') reply[reply.length - 1] ^= 0xff;
    return reply;
  },
};

/** Offset > 0 of the first complete, CRC-valid Modbus read/write request in buf, or 0. */
function resyncOffset(buf: Buffer): number {
  for (let k = 1; k + 8 <= buf.length; k++) {
    const fc = buf[k + 1];
    let len = 0;
    if (fc >= 1 && fc <= 6) len = 8;
    else if ((fc === 15 || fc === 16) && k + 7 <= buf.length) len = 9 + buf[k + 6];
    if (len > 0 && k + len <= buf.length && rtuCrcOk(buf.subarray(k, k + len))) return k;
  }
  return 0;
}

export interface SerialServerOptions {
  readonly sitePort: string;
  readonly device: string;
  readonly meters: readonly SimulatedMeter[];
  readonly handlers: () => readonly SerialFrameHandler[];
  /**
   * Emulate the bus's wire time (see LineTiming): `true` takes baud and parity from the
   * site file per transaction (a site may put a 9600 8N1 Modbus meter and a 2400 8E1
   * DL/T 645 meter on one port; the master switches speed for each). @defaultValue false
   */
  readonly timing?: boolean | { readonly turnaroundMs?: number };
  /** Baud the device is opened at (ignored by PTYs). @defaultValue 9600 */
  readonly baud?: number;
  readonly log: Logger;
  /** Drop unframed leftovers after this much silence, ms. @defaultValue 50 */
  readonly idleMs?: number;
}

/** Serves one bus on one serial device. */
export class SerialServer {
  readonly context: SerialBusContext;
  private readonly opts: SerialServerOptions;
  private port: SerialPort | undefined;
  private buf: Buffer = Buffer.alloc(0);
  private idle: NodeJS.Timeout | undefined;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(opts: SerialServerOptions) {
    this.opts = opts;
    this.context = { sitePort: opts.sitePort, device: opts.device, meters: opts.meters, log: opts.log };
  }

  async open(): Promise<void> {
    const { device } = this.opts;
    const baudRate = this.opts.baud ?? 9600;
    const port = new SerialPort({ path: device, baudRate, autoOpen: false });
    await new Promise<void>((resolve, reject) =>
      port.open((err) => (err ? reject(new Error(`simulator: cannot open serial device ${device} (bus ${this.opts.sitePort}): ${err.message}`)) : resolve())),
    );
    port.on('data', (chunk: Buffer) => this.onData(chunk));
    port.on('error', (err) => this.opts.log.warn({ device, err: err.message }, 'simulator: serial error'));
    this.port = port;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.idle) clearTimeout(this.idle);
    await this.queue.catch(() => {});
    const port = this.port;
    if (port?.isOpen) await new Promise<void>((r) => port.close(() => r()));
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    this.parse();
    if (this.idle) clearTimeout(this.idle);
    if (this.buf.length > 0) {
      this.idle = setTimeout(() => {
        if (this.buf.length > 0) this.opts.log.debug({ device: this.opts.device, bytes: this.buf.toString('hex') }, 'simulator: dropped unframed bytes after silence');
        this.buf = Buffer.alloc(0);
      }, this.opts.idleMs ?? 50);
    }
  }

  private parse(): void {
    const handlers = [...this.opts.handlers(), modbusRtuHandler];
    outer: while (this.buf.length > 0) {
      for (const h of handlers) {
        let m: FrameMatch;
        try {
          m = h.match(this.buf, this.context);
        } catch (err) {
          this.opts.log.warn({ handler: h.name, err: (err as Error).message }, 'simulator: frame handler match failed');
          m = 'none';
        }
        if (m === 'none') continue;
        if (m === 'incomplete') {
          // Noise in front of a request would otherwise hold it until the idle timeout:
          // if a complete Modbus request with a valid CRC starts further on, skip to it.
          const skip = resyncOffset(this.buf);
          if (skip > 0) {
            this.buf = this.buf.subarray(skip);
            continue outer;
          }
          return;
        }
        const frame = Buffer.from(this.buf.subarray(0, m.length));
        this.buf = this.buf.subarray(m.length);
        this.enqueue(h, frame);
        continue outer;
      }
      // No protocol can start here: skip a byte and resynchronise.
      this.buf = this.buf.subarray(1);
    }
  }

  /**
   * Line settings of one transaction: those of the addressed Modbus meter (by unit), or of
   * the first meter speaking the handler's protocol (handler name = connection.protocol).
   */
  private lineTiming(h: SerialFrameHandler, frame: Buffer): LineTiming | undefined {
    const t = this.opts.timing;
    if (!t) return undefined;
    type Serial = { protocol: string; baud: number; parity: 'none' | 'even' | 'odd'; stop_bits?: 1 | 2; data_bits?: 7 | 8; unit?: number };
    const conns = this.opts.meters.map((m) => m.meter.connection as Serial | undefined).filter((c): c is Serial => c !== undefined);
    const c =
      (h === modbusRtuHandler ? conns.find((x) => x.protocol === 'modbus-rtu' && x.unit === frame[0]) : undefined) ??
      conns.find((x) => x.protocol === h.name) ??
      conns[0];
    if (!c) return undefined;
    return { baud: c.baud, parity: c.parity, stopBits: c.stop_bits, dataBits: c.data_bits, turnaroundMs: typeof t === 'object' ? t.turnaroundMs : undefined };
  }

  /** One transaction at a time, as on a half-duplex bus. */
  private enqueue(h: SerialFrameHandler, frame: Buffer): void {
    this.queue = this.queue.then(async () => {
      if (this.closed) return;
      let reply: Buffer | null;
      try {
        reply = await h.handle(frame, this.context);
      } catch (err) {
        this.opts.log.warn({ handler: h.name, err: (err as Error).message }, 'simulator: frame handler failed');
        return;
      }
      if (!reply || this.closed) return;
      const timing = this.lineTiming(h, frame);
      if (timing) await new Promise((r) => setTimeout(r, replyDelayMs(timing, frame.length, reply!.length)));
      const port = this.port;
      if (!port?.isOpen || this.closed) return;
      await new Promise<void>((resolve) => port.write(reply!, () => port.drain(() => resolve())));
    });
  }
}
