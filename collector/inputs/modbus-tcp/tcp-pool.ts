import modbusSerial from 'modbus-serial';
import type { ModbusRTU as ModbusClient } from 'modbus-serial/ModbusRTU.js';

// modbus-serial is CommonJS (`module.exports = ModbusRTU`); its typings describe an ES
// default export, which NodeNext resolution sees as the namespace. Same class at runtime.
const ModbusRTU = modbusSerial as unknown as new () => ModbusClient;
import { MeterReadError } from '../../input.ts';
import { exceptionText } from '../modbus-sample.ts';

export interface ModbusTcpPoolOptions {
  /** TCP connect timeout. @defaultValue 3000 */
  readonly connectTimeoutMs?: number;
  /** After a failed connect, reads of that endpoint fail fast for this long, doubling to 30 s. @defaultValue 1000 */
  readonly reconnectBaseMs?: number;
}

interface Endpoint {
  readonly key: string;
  readonly host: string;
  readonly port: number;
  client: ModbusClient | undefined;
  /** Tail of the request chain: one request in flight per connection. */
  tail: Promise<unknown>;
  failedConnects: number;
  retryAt: number;
  /** Why the last connect failed, repeated to the meters that fail fast behind it. */
  lastConnectError?: string;
}

/**
 * One Modbus TCP connection per host:port, shared by every unit id behind it (a gateway
 * or a simulator serves many meters on one port). Requests on one connection go one at
 * a time, as most RS485 gateways can only handle; different endpoints run in parallel.
 * A broken connection is dropped and re-opened on the next request, with back-off so
 * meters behind a dead gateway fail fast instead of each waiting out a connect.
 */
export class ModbusTcpPool {
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly connectTimeoutMs: number;
  private readonly reconnectBaseMs: number;
  private closed = false;

  constructor(opts: ModbusTcpPoolOptions = {}) {
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 3000;
    this.reconnectBaseMs = opts.reconnectBaseMs ?? 1000;
  }

  /**
   * Reads `count` registers with function 03 or 04 from `unit` at host:port. Throws
   * MeterReadError (for `meter`): `exception` with the Modbus code, `timeout`,
   * `connection`, or `protocol` for a malformed reply.
   */
  read(meter: string, host: string, port: number, unit: number, functionCode: 3 | 4, start: number, count: number, timeoutMs: number): Promise<number[]> {
    const ep = this.endpoint(host, port);
    const run = ep.tail.then(() => this.readNow(ep, meter, unit, functionCode, start, count, timeoutMs));
    ep.tail = run.catch(() => {});
    return run;
  }

  /** Runs `fn` holding the endpoint, so a meter's blocks are read back to back. */
  exclusive<T>(host: string, port: number, fn: (read: (meter: string, unit: number, fc: 3 | 4, start: number, count: number, timeoutMs: number) => Promise<number[]>) => Promise<T>): Promise<T> {
    const ep = this.endpoint(host, port);
    const run = ep.tail.then(() => fn((meter, unit, fc, start, count, timeoutMs) => this.readNow(ep, meter, unit, fc, start, count, timeoutMs)));
    ep.tail = run.catch(() => {});
    return run;
  }

  /**
   * Writes one holding register (function 06 or 16, as the meter takes it) on the pooled
   * connection, in turn with the reads (issue 13: a relay command). Not retried here: the
   * caller reads the state back before it ever sends again. Throws like `read`.
   */
  writeRegister(meter: string, host: string, port: number, unit: number, functionCode: 6 | 16, address: number, value: number, timeoutMs: number): Promise<void> {
    const ep = this.endpoint(host, port);
    const run = ep.tail.then(() => this.writeNow(ep, meter, unit, functionCode, address, value, timeoutMs));
    ep.tail = run.catch(() => {});
    return run;
  }

  async close(): Promise<void> {
    this.closed = true;
    const eps = [...this.endpoints.values()];
    this.endpoints.clear();
    await Promise.all(eps.map(async (ep) => {
      await ep.tail;
      this.drop(ep);
    }));
  }

  private endpoint(host: string, port: number): Endpoint {
    const key = `${host}:${port}`;
    let ep = this.endpoints.get(key);
    if (!ep) {
      ep = { key, host, port, client: undefined, tail: Promise.resolve(), failedConnects: 0, retryAt: 0 };
      this.endpoints.set(key, ep);
    }
    return ep;
  }

  private drop(ep: Endpoint): void {
    const c = ep.client;
    ep.client = undefined;
    if (c) {
      try {
        c.destroy(() => {});
      } catch {
        // already closed
      }
    }
  }

  private async connect(ep: Endpoint, meter: string): Promise<ModbusClient> {
    if (this.closed) throw new MeterReadError(meter, 'connection', 'collector is closing');
    if (ep.client?.isOpen) return ep.client;
    this.drop(ep);
    const now = Date.now();
    if (now < ep.retryAt) throw new MeterReadError(meter, 'connection', `modbus-tcp ${ep.key} is down (${ep.lastConnectError ?? 'connect failed'}); next connect in ${ep.retryAt - now} ms`);
    const client = new ModbusRTU();
    try {
      await client.connectTCP(ep.host, { port: ep.port, timeout: this.connectTimeoutMs });
    } catch (err) {
      ep.failedConnects++;
      ep.lastConnectError = (err as Error).message;
      ep.retryAt = Date.now() + Math.min(30_000, this.reconnectBaseMs * 2 ** Math.min(10, ep.failedConnects - 1));
      try {
        client.destroy(() => {});
      } catch {
        // never opened
      }
      throw new MeterReadError(meter, 'connection', `cannot connect to modbus-tcp ${ep.key}: ${(err as Error).message}`);
    }
    ep.failedConnects = 0;
    ep.retryAt = 0;
    ep.client = client;
    return client;
  }

  private async readNow(ep: Endpoint, meter: string, unit: number, fc: 3 | 4, start: number, count: number, timeoutMs: number): Promise<number[]> {
    const client = await this.connect(ep, meter);
    client.setTimeout(timeoutMs);
    const what = `modbus-tcp ${ep.key} unit ${unit} fc ${fc} @${start}+${count}`;
    try {
      const res = await new Promise<{ data: number[] }>((resolve, reject) => {
        const cb = (err: Error | null, data: { data: number[] }) => (err ? reject(err) : resolve(data));
        if (fc === 3) client.writeFC3(unit, start, count, cb as never);
        else client.writeFC4(unit, start, count, cb as never);
      });
      if (res.data.length !== count) throw new MeterReadError(meter, 'protocol', `${what}: got ${res.data.length} registers`);
      return res.data;
    } catch (err) {
      if (err instanceof MeterReadError) throw err;
      throw this.failure(err, client, ep, meter, what, timeoutMs);
    }
  }

  private async writeNow(ep: Endpoint, meter: string, unit: number, fc: 6 | 16, address: number, value: number, timeoutMs: number): Promise<void> {
    const client = await this.connect(ep, meter);
    client.setTimeout(timeoutMs);
    const what = `modbus-tcp ${ep.key} unit ${unit} fc ${fc} write @${address}`;
    try {
      await new Promise<unknown>((resolve, reject) => {
        const cb = (err: Error | null, data: unknown) => (err ? reject(err) : resolve(data));
        if (fc === 6) client.writeFC6(unit, address, value, cb as never);
        else client.writeFC16(unit, address, [value], cb as never);
      });
    } catch (err) {
      throw this.failure(err, client, ep, meter, what, timeoutMs);
    }
  }

  /** A modbus-serial error as the MeterReadError kind that decides retries (a broken connection is dropped). */
  private failure(err: unknown, client: ModbusClient, ep: Endpoint, meter: string, what: string, timeoutMs: number): MeterReadError {
    const e = err as Error & { modbusCode?: number; errno?: string };
    if (typeof e.modbusCode === 'number') return new MeterReadError(meter, 'exception', `${what}: ${exceptionText(e.modbusCode)}`);
    if (e.errno === 'ETIMEDOUT' || /timed out/i.test(e.message)) return new MeterReadError(meter, 'timeout', `${what}: no reply within ${timeoutMs} ms`);
    if (!client.isOpen || /port not open|ECONNRESET|EPIPE|closed/i.test(e.message)) {
      this.drop(ep);
      return new MeterReadError(meter, 'connection', `${what}: ${e.message}`);
    }
    return new MeterReadError(meter, 'protocol', `${what}: ${e.message}`);
  }
}
