import { SerialPort } from 'serialport';
import type { SerialSettings } from './serial-settings.ts';
import { sameSettings } from './serial-settings.ts';

/**
 * The byte pipe under a SerialBus: one serial device, opened with some settings. The bus
 * owns it exclusively; inputs never see it (they get a BusTransport per transaction).
 * An interface so the bus can be driven over something other than a tty (tests, a
 * TCP-to-RS485 gateway in transparent mode).
 */
export interface SerialLink {
  readonly path: string;
  /** Settings the link is open with, or undefined when closed. */
  readonly settings: SerialSettings | undefined;
  /** Opens (or re-opens) with these settings; a no-op when already open with them. */
  configure(settings: SerialSettings): Promise<void>;
  /** Writes and waits until the OS has taken the bytes (tcdrain). */
  write(bytes: Uint8Array): Promise<void>;
  /** Called with every chunk received. One listener; the bus sets it. */
  onData(listener: (chunk: Buffer) => void): void;
  close(): Promise<void>;
}

const cb =
  (resolve: () => void, reject: (e: Error) => void) =>
  (err: Error | null | undefined): void =>
    err ? reject(err) : resolve();

/** A SerialLink over the `serialport` package (a real /dev/tty*, or a socat PTY in tests). */
export class SerialPortLink implements SerialLink {
  readonly path: string;
  private port: SerialPort | undefined;
  private current: SerialSettings | undefined;
  private listener: (chunk: Buffer) => void = () => {};

  constructor(path: string) {
    this.path = path;
  }

  get settings(): SerialSettings | undefined {
    return this.port?.isOpen ? this.current : undefined;
  }

  onData(listener: (chunk: Buffer) => void): void {
    this.listener = listener;
  }

  async configure(s: SerialSettings): Promise<void> {
    const port = this.port;
    if (port?.isOpen && this.current) {
      if (sameSettings(this.current, s)) return;
      // termios can change the speed in place; parity, data and stop bits need a re-open
      // with node-serialport (its update() takes baudRate only).
      if (this.current.parity === s.parity && this.current.dataBits === s.dataBits && this.current.stopBits === s.stopBits) {
        await new Promise<void>((res, rej) => port.update({ baudRate: s.baudRate }, cb(res, rej)));
        this.current = s;
        return;
      }
      await this.close();
    }
    const next = new SerialPort({ path: this.path, baudRate: s.baudRate, parity: s.parity, dataBits: s.dataBits, stopBits: s.stopBits, autoOpen: false, lock: false });
    await new Promise<void>((res, rej) => next.open(cb(res, rej)));
    next.on('data', (chunk: Buffer) => this.listener(chunk));
    // A device error (unplugged adapter) surfaces on the next write or as a timeout; keep
    // the process alive and let the next transaction re-open.
    next.on('error', () => {});
    next.on('close', () => {
      if (this.port === next) this.port = undefined;
    });
    this.port = next;
    this.current = s;
  }

  async write(bytes: Uint8Array): Promise<void> {
    const port = this.port;
    if (!port?.isOpen) throw new Error(`${this.path} is not open`);
    await new Promise<void>((res, rej) => port.write(Buffer.from(bytes), cb(res, rej)));
    await new Promise<void>((res, rej) => port.drain(cb(res, rej)));
  }

  async close(): Promise<void> {
    const port = this.port;
    this.port = undefined;
    this.current = undefined;
    if (port?.isOpen) await new Promise<void>((res) => port.close(() => res()));
  }
}
