import { MeterReadError } from '../../input.ts';
import { exceptionText } from '../modbus-sample.ts';
import { BlockReadError, MbapConnection, MbapError } from './mbap-client.ts';
import type { ReadBlock } from '../modbus/maps.ts';

export interface ModbusTcpPoolOptions {
  /** TCP connect timeout. @defaultValue 3000 */
  readonly connectTimeoutMs?: number;
  /** After a failed connect, reads of that endpoint fail fast for this long, doubling to 30 s. @defaultValue 1000 */
  readonly reconnectBaseMs?: number;
}

/** A task waiting for its endpoint's connection, and its caller's settlers. */
interface QueuedTask {
  readonly task: () => Promise<unknown>;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: unknown) => void;
}

interface Endpoint {
  readonly key: string;
  readonly host: string;
  readonly port: number;
  client: MbapConnection | undefined;
  /** A task (a read, a meter's blocks, a write) holds the connection: one request in flight. */
  busy: boolean;
  /** Tasks waiting for the connection, in arrival order. */
  readonly queue: QueuedTask[];
  /** Callers of close() waiting for the connection to go idle. */
  readonly idle: (() => void)[];
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
    return this.enqueue(ep, () => this.readNow(ep, meter, unit, functionCode, start, count, timeoutMs));
  }

  /**
   * Reads a meter's blocks back to back on the pooled connection, in turn with the other
   * tasks (MbapConnection.readBlocks: each next request leaves from the previous reply's
   * handler). Throws like `read`, naming the block that failed.
   */
  readBlocks(meter: string, host: string, port: number, unit: number, blocks: readonly ReadBlock[], timeoutMs: number): Promise<number[][]> {
    const ep = this.endpoint(host, port);
    return this.enqueue(ep, () => {
      const client = ep.client?.isOpen ? ep.client : undefined;
      if (client) return this.readBlocksOn(client, ep, meter, unit, blocks, timeoutMs);
      return this.connect(ep, meter).then((c) => this.readBlocksOn(c, ep, meter, unit, blocks, timeoutMs));
    });
  }

  private readBlocksOn(client: MbapConnection, ep: Endpoint, meter: string, unit: number, blocks: readonly ReadBlock[], timeoutMs: number): Promise<number[][]> {
    return client.readBlocks(unit, blocks, timeoutMs).catch((err: unknown) => {
      const b = err instanceof BlockReadError ? err.block : blocks[0];
      throw this.failure(err instanceof BlockReadError ? err.cause : err, client, ep, meter, `modbus-tcp ${ep.key} unit ${unit} fc ${b.functionCode} @${b.start}+${b.count}`, timeoutMs);
    });
  }

  /** Runs `fn` holding the endpoint, so a meter's blocks are read back to back. */
  exclusive<T>(host: string, port: number, fn: (read: (meter: string, unit: number, fc: 3 | 4, start: number, count: number, timeoutMs: number) => Promise<number[]>) => Promise<T>): Promise<T> {
    const ep = this.endpoint(host, port);
    return this.enqueue(ep, () => fn((meter, unit, fc, start, count, timeoutMs) => this.readNow(ep, meter, unit, fc, start, count, timeoutMs)));
  }

  /**
   * Writes one holding register (function 06 or 16, as the meter takes it) on the pooled
   * connection, in turn with the reads (issue 13: a relay command). Not retried here: the
   * caller reads the state back before it ever sends again. Throws like `read`.
   */
  writeRegister(meter: string, host: string, port: number, unit: number, functionCode: 6 | 16, address: number, value: number, timeoutMs: number): Promise<void> {
    const ep = this.endpoint(host, port);
    return this.enqueue(ep, () => this.writeNow(ep, meter, unit, functionCode, address, value, timeoutMs));
  }

  async close(): Promise<void> {
    this.closed = true;
    const eps = [...this.endpoints.values()];
    this.endpoints.clear();
    await Promise.all(eps.map(async (ep) => {
      if (ep.busy) await new Promise<void>((resolve) => ep.idle.push(resolve));
      this.drop(ep);
    }));
  }

  private endpoint(host: string, port: number): Endpoint {
    const key = `${host}:${port}`;
    let ep = this.endpoints.get(key);
    if (!ep) {
      ep = { key, host, port, client: undefined, busy: false, queue: [], idle: [], failedConnects: 0, retryAt: 0 };
      this.endpoints.set(key, ep);
    }
    return ep;
  }

  /**
   * Runs `task` when the connection is free, tasks in arrival order. When a task ends, the
   * next one is started before the finished task's caller resumes: the next meter's
   * request is on the wire while this meter's reply is decoded (a promise chain per
   * endpoint put the decode, and two microtask hops, between every meter's requests).
   */
  private enqueue<T>(ep: Endpoint, task: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      // An object per task, not a closure: the loader names every named closure as it is
      // created (esbuild's keepNames), a defineProperty per read (bench/polling.bench.ts).
      const queued: QueuedTask = { task, resolve: resolve as (value: unknown) => void, reject };
      if (ep.busy) ep.queue.push(queued);
      else {
        ep.busy = true;
        this.start(ep, queued);
      }
    });
  }

  private start(ep: Endpoint, queued: QueuedTask): void {
    let p: Promise<unknown>;
    try {
      p = queued.task();
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      (v) => {
        this.next(ep);
        queued.resolve(v);
      },
      (err: unknown) => {
        this.next(ep);
        queued.reject(err);
      },
    );
  }

  private next(ep: Endpoint): void {
    const queued = ep.queue.shift();
    if (queued) return this.start(ep, queued);
    ep.busy = false;
    for (const w of ep.idle.splice(0)) w();
  }

  private drop(ep: Endpoint): void {
    const c = ep.client;
    ep.client = undefined;
    c?.destroy();
  }

  private async connect(ep: Endpoint, meter: string): Promise<MbapConnection> {
    if (this.closed) throw new MeterReadError(meter, 'connection', 'collector is closing');
    if (ep.client?.isOpen) return ep.client;
    this.drop(ep);
    const now = Date.now();
    if (now < ep.retryAt) throw new MeterReadError(meter, 'connection', `modbus-tcp ${ep.key} is down (${ep.lastConnectError ?? 'connect failed'}); next connect in ${ep.retryAt - now} ms`);
    let client: MbapConnection;
    try {
      client = await MbapConnection.connect(ep.host, ep.port, this.connectTimeoutMs);
    } catch (err) {
      ep.failedConnects++;
      ep.lastConnectError = (err as Error).message;
      ep.retryAt = Date.now() + Math.min(30_000, this.reconnectBaseMs * 2 ** Math.min(10, ep.failedConnects - 1));
      throw new MeterReadError(meter, 'connection', `cannot connect to modbus-tcp ${ep.key}: ${(err as Error).message}`);
    }
    ep.failedConnects = 0;
    ep.retryAt = 0;
    ep.client = client;
    return client;
  }

  private async readNow(ep: Endpoint, meter: string, unit: number, fc: 3 | 4, start: number, count: number, timeoutMs: number): Promise<number[]> {
    const client = ep.client?.isOpen ? ep.client : await this.connect(ep, meter);
    try {
      return await client.readRegisters(unit, fc, start, count, timeoutMs);
    } catch (err) {
      throw this.failure(err, client, ep, meter, `modbus-tcp ${ep.key} unit ${unit} fc ${fc} @${start}+${count}`, timeoutMs);
    }
  }

  private async writeNow(ep: Endpoint, meter: string, unit: number, fc: 6 | 16, address: number, value: number, timeoutMs: number): Promise<void> {
    const client = ep.client?.isOpen ? ep.client : await this.connect(ep, meter);
    try {
      await client.writeRegister(unit, fc, address, value, timeoutMs);
    } catch (err) {
      throw this.failure(err, client, ep, meter, `modbus-tcp ${ep.key} unit ${unit} fc ${fc} write @${address}`, timeoutMs);
    }
  }

  /** A client error as the MeterReadError kind that decides retries (a broken connection is dropped). */
  private failure(err: unknown, client: MbapConnection, ep: Endpoint, meter: string, what: string, timeoutMs: number): MeterReadError {
    if (!(err instanceof MbapError)) return new MeterReadError(meter, 'protocol', `${what}: ${(err as Error).message}`);
    if (err.kind === 'exception') return new MeterReadError(meter, 'exception', `${what}: ${exceptionText(err.code ?? 0)}`);
    if (err.kind === 'timeout') return new MeterReadError(meter, 'timeout', `${what}: no reply within ${timeoutMs} ms`);
    if (err.kind === 'connection' || !client.isOpen) {
      this.drop(ep);
      return new MeterReadError(meter, 'connection', `${what}: ${err.message}`);
    }
    return new MeterReadError(meter, 'protocol', `${what}: ${err.message}`);
  }
}
