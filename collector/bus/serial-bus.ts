import { MeterReadError } from '../input.ts';
import type { SerialLink } from './serial-link.ts';
import { SerialPortLink } from './serial-link.ts';
import type { SerialSettings } from './serial-settings.ts';
import { describeSettings, silentIntervalMs } from './serial-settings.ts';

/**
 * Decides whether the bytes received so far hold a whole reply frame. The protocol input
 * supplies it (Modbus RTU: length from the function code and byte count; DL/T 645: the
 * L byte after the second 68, ending in 16).
 * - return `0`: need more bytes;
 * - return `n > 0`: a complete frame is the first `n` bytes (anything after is ignored);
 * - return `-n`: the first `n` bytes are garbage (noise, wake-up bytes, a late reply
 *   for another meter); drop them and check again;
 * - return `true` / `false`: everything received is the frame / need more (for
 *   predicates like the DL/T 645 codec's `isFrameComplete`, which decode the whole
 *   buffer themselves).
 */
export type FrameCheck = (received: Buffer) => number | boolean;

/**
 * What an input gets for the length of one transaction: the bus is its alone, open with
 * the settings it asked for. Request/reply protocols use it as
 * `t.flush(); await t.write(req); const reply = await t.read(check, timeoutMs)`.
 */
export interface BusTransport {
  readonly path: string;
  readonly settings: SerialSettings;
  /** Discards every byte received so far (a late reply to a timed-out request, noise). */
  flush(): void;
  /** Sends a frame and waits until the OS has taken it. */
  write(frame: Uint8Array): Promise<void>;
  /**
   * Reads until `check` reports a complete frame and returns exactly that frame; bytes
   * after it stay buffered until the next flush. Throws MeterReadError kind `timeout`
   * (retryable) when no complete frame arrived within `timeoutMs`, naming how many
   * bytes did.
   */
  read(check: FrameCheck, timeoutMs: number): Promise<Buffer>;
}

/** Options of one transaction. */
export interface TransactOptions {
  /**
   * Silence kept on the bus after the transaction before the next one starts, so the
   * next frame is not glued to this one.
   * @defaultValue the Modbus t3.5 interval at the transaction's speed
   */
  readonly guardMs?: number;
  /**
   * A command (issue 13: relay trip/close and its read-back) goes before queued polling,
   * also when its meter is in back-off, but never starves polling: after
   * `maxPriorityRun` priority transactions in a row one waiting poll goes first.
   * @defaultValue false
   */
  readonly priority?: boolean;
}

export interface SerialBusOptions {
  /** First back-off after a failed transaction of a meter. @defaultValue 1000 */
  readonly backoffBaseMs?: number;
  /** Back-off ceiling; doubles from the base per consecutive failure. @defaultValue 60000 */
  readonly backoffMaxMs?: number;
  /** Priority transactions in a row before a waiting poll gets its turn. @defaultValue 2 */
  readonly maxPriorityRun?: number;
  readonly now?: () => number;
}

/** Per-meter state the bus keeps for back-off. */
export interface BusClientStats {
  readonly transactions: number;
  readonly failures: number;
  readonly consecutiveFailures: number;
  /** Epoch ms before which the bus will not start this meter's next transaction (0: none). */
  readonly backoffUntil: number;
}

export interface SerialBusStats {
  readonly path: string;
  readonly transactions: number;
  readonly failures: number;
  /** Time the bus was held by a transaction (including reconfiguration and guard time). */
  readonly busyMs: number;
  /** Time since the bus was created (or since `resetStats`). */
  readonly wallMs: number;
  /** busyMs / wallMs: 1 means the bus never rests, and polling more often cannot help. */
  readonly utilisation: number;
  readonly queued: number;
  readonly clients: Readonly<Record<string, BusClientStats>>;
}

interface Job {
  readonly client: string;
  readonly settings: SerialSettings;
  readonly work: (t: BusTransport) => Promise<unknown>;
  readonly guardMs: number | undefined;
  readonly priority: boolean;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: unknown) => void;
}

interface Client {
  readonly queue: Job[];
  transactions: number;
  failures: number;
  consecutiveFailures: number;
  backoffUntil: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * The one scheduler of a serial (RS485) bus: every input on a port, whatever its
 * protocol, goes through `transact`, so the half-duplex bus carries one request at a
 * time (protocols.md "RS485 timing").
 *
 * - Fair: meters with work waiting are served round-robin, one transaction each, so a
 *   meter that queues many requests cannot starve the others.
 * - Back-off: a failed transaction (any throw from `work`) puts its meter in back-off,
 *   doubling from `backoffBaseMs` to `backoffMaxMs`; its next transaction waits while
 *   the others go first. A dead meter therefore costs one timeout per back-off period,
 *   never a stalled bus. A success clears it.
 * - Per-transaction settings: speed, parity, data and stop bits are applied before the
 *   work runs (a mixed-speed bus re-configures between meters).
 * - Utilisation: busy time over wall time, see `stats()`.
 */
export class SerialBus {
  readonly path: string;
  private readonly link: SerialLink;
  private readonly clients = new Map<string, Client>();
  /** Round-robin order: client ids in the order they first asked. */
  private readonly order: string[] = [];
  /** Last client served; the next pick starts after it (new clients join at the end). */
  private lastServed = -1;
  private running = false;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private rx: Buffer = Buffer.alloc(0);
  private rxWaiter: (() => void) | undefined;
  private readonly backoffBaseMs: number;
  private readonly backoffMaxMs: number;
  /** Commands waiting, in arrival order; served before polling (see TransactOptions.priority). */
  private readonly urgent: Job[] = [];
  private readonly maxPriorityRun: number;
  private priorityRun = 0;
  private readonly now: () => number;
  private since: number;
  private busyMs = 0;
  private transactions = 0;
  private failures = 0;

  constructor(link: SerialLink | string, opts: SerialBusOptions = {}) {
    this.link = typeof link === 'string' ? new SerialPortLink(link) : link;
    this.path = this.link.path;
    this.backoffBaseMs = opts.backoffBaseMs ?? 1000;
    this.backoffMaxMs = opts.backoffMaxMs ?? 60_000;
    if (!(this.backoffBaseMs >= 0) || !(this.backoffMaxMs >= this.backoffBaseMs)) {
      throw new Error(`serial bus ${this.path}: backoffBaseMs must be >= 0 and backoffMaxMs >= backoffBaseMs`);
    }
    this.now = opts.now ?? Date.now;
    this.maxPriorityRun = opts.maxPriorityRun ?? 2;
    if (!(Number.isInteger(this.maxPriorityRun) && this.maxPriorityRun >= 1)) throw new Error(`serial bus ${this.path}: maxPriorityRun must be an integer >= 1`);
    this.since = this.now();
    this.link.onData((chunk) => {
      this.rx = this.rx.length === 0 ? chunk : Buffer.concat([this.rx, chunk]);
      this.rxWaiter?.();
    });
  }

  /**
   * Runs `work` with the bus to itself, configured with `settings`, once every earlier
   * transaction is done and `client` (the meter id) is out of back-off. Resolves with
   * what `work` returns; rejects with what it throws (and counts a failure for `client`).
   */
  transact<T>(client: string, settings: SerialSettings, work: (t: BusTransport) => Promise<T>, opts: TransactOptions = {}): Promise<T> {
    if (this.closed) return Promise.reject(new MeterReadError(client, 'connection', `serial bus ${this.path} is closed`));
    return new Promise<T>((resolve, reject) => {
      const job: Job = { client, settings, work, guardMs: opts.guardMs, priority: opts.priority === true, resolve: resolve as (v: unknown) => void, reject };
      if (job.priority) {
        this.client(client);
        this.urgent.push(job);
      } else this.client(client).queue.push(job);
      this.pump();
    });
  }

  stats(): SerialBusStats {
    const now = this.now();
    const wallMs = Math.max(0, now - this.since);
    const clients: Record<string, BusClientStats> = {};
    let queued = 0;
    for (const [id, c] of this.clients) {
      clients[id] = { transactions: c.transactions, failures: c.failures, consecutiveFailures: c.consecutiveFailures, backoffUntil: c.backoffUntil > now ? c.backoffUntil : 0 };
      queued += c.queue.length;
    }
    queued += this.urgent.length;
    return { path: this.path, transactions: this.transactions, failures: this.failures, busyMs: this.busyMs, wallMs, utilisation: wallMs > 0 ? Math.min(1, this.busyMs / wallMs) : 0, queued, clients };
  }

  /** Starts a new measurement window for `stats()` (counters per client are kept). */
  resetStats(): void {
    this.since = this.now();
    this.busyMs = 0;
    this.transactions = 0;
    this.failures = 0;
  }

  /** Rejects everything queued and closes the device. Running work finishes or times out first. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const c of this.clients.values()) {
      for (const j of c.queue.splice(0)) j.reject(new MeterReadError(j.client, 'connection', `serial bus ${this.path} closed`));
    }
    for (const j of this.urgent.splice(0)) j.reject(new MeterReadError(j.client, 'connection', `serial bus ${this.path} closed`));
    while (this.running) await sleep(5);
    await this.link.close();
  }

  private client(id: string): Client {
    let c = this.clients.get(id);
    if (!c) {
      c = { queue: [], transactions: 0, failures: 0, consecutiveFailures: 0, backoffUntil: 0 };
      this.clients.set(id, c);
      this.order.push(id);
    }
    return c;
  }

  /**
   * The next job: a command first while fewer than maxPriorityRun went in a row (or no
   * poll is ready), else the next poll in round-robin order among clients not in
   * back-off; or the earliest wake-up time.
   */
  private pick(): Job | number | undefined {
    if (this.urgent.length > 0 && this.priorityRun < this.maxPriorityRun) {
      this.priorityRun++;
      return this.urgent.shift()!;
    }
    const poll = this.pickPoll();
    if (poll !== undefined && typeof poll !== 'number') {
      this.priorityRun = 0;
      return poll;
    }
    if (this.urgent.length > 0) {
      // No poll ready: commands go on.
      this.priorityRun = 1;
      return this.urgent.shift()!;
    }
    this.priorityRun = 0;
    return poll;
  }

  private pickPoll(): Job | number | undefined {
    const now = this.now();
    let wake: number | undefined;
    for (let i = 1; i <= this.order.length; i++) {
      const idx = (this.lastServed + i) % this.order.length;
      const c = this.clients.get(this.order[idx])!;
      if (c.queue.length === 0) continue;
      if (c.backoffUntil > now) {
        wake = wake === undefined ? c.backoffUntil : Math.min(wake, c.backoffUntil);
        continue;
      }
      this.lastServed = idx;
      return c.queue.shift()!;
    }
    return wake;
  }

  private pump(): void {
    if (this.running || this.closed) return;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const next = this.pick();
    if (next === undefined) return;
    if (typeof next === 'number') {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, Math.max(1, next - this.now()));
      this.timer.unref?.();
      return;
    }
    this.running = true;
    void this.run(next).finally(() => {
      this.running = false;
      this.pump();
    });
  }

  private async run(job: Job): Promise<void> {
    const c = this.client(job.client);
    const started = performance.now();
    let outcome: { ok: true; value: unknown } | { ok: false; error: unknown };
    try {
      try {
        await this.link.configure(job.settings);
      } catch (err) {
        throw new MeterReadError(job.client, 'connection', `cannot open ${this.path} at ${describeSettings(job.settings)}: ${(err as Error).message}`);
      }
      this.rx = Buffer.alloc(0);
      outcome = { ok: true, value: await job.work(this.transport(job)) };
    } catch (err) {
      outcome = { ok: false, error: err };
    }
    // Count before settling, so a caller that looks at stats() after its await sees it.
    this.transactions++;
    c.transactions++;
    if (outcome.ok) {
      c.consecutiveFailures = 0;
      c.backoffUntil = 0;
      job.resolve(outcome.value);
    } else {
      this.failures++;
      c.failures++;
      c.consecutiveFailures++;
      const wait = Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** Math.min(30, c.consecutiveFailures - 1));
      c.backoffUntil = this.now() + wait;
      job.reject(outcome.error);
    }
    // Keep the line silent before the next frame; a late reply to a timed-out request
    // lands here and is flushed by the next transaction.
    const guard = job.guardMs ?? silentIntervalMs(job.settings);
    if (guard > 0) await sleep(guard);
    this.busyMs += performance.now() - started;
  }

  private transport(job: Job): BusTransport {
    const link = this.link;
    return {
      path: this.path,
      settings: job.settings,
      flush: () => {
        this.rx = Buffer.alloc(0);
      },
      write: async (frame) => {
        try {
          await link.write(frame);
        } catch (err) {
          throw new MeterReadError(job.client, 'connection', `write to ${this.path} failed: ${(err as Error).message}`);
        }
      },
      read: (check, timeoutMs) => this.readFrame(job.client, check, timeoutMs),
    };
  }

  private readFrame(client: string, check: FrameCheck, timeoutMs: number): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.rxWaiter = undefined;
        reject(new MeterReadError(client, 'timeout', `no complete reply on ${this.path} within ${timeoutMs} ms (${this.rx.length} bytes received)`));
      }, timeoutMs);
      const attempt = (): void => {
        for (;;) {
          if (this.rx.length === 0) return;
          const r = check(this.rx);
          const n = r === true ? this.rx.length : r === false ? 0 : r;
          if (n === 0) return;
          if (n < 0) {
            this.rx = this.rx.subarray(Math.min(-n, this.rx.length));
            continue;
          }
          const frame = Buffer.from(this.rx.subarray(0, n));
          this.rx = this.rx.subarray(n);
          clearTimeout(timer);
          this.rxWaiter = undefined;
          resolve(frame);
          return;
        }
      };
      this.rxWaiter = attempt;
      attempt();
    });
  }
}
