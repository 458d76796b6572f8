import { afterEach, describe, expect, it } from 'vitest';
import { SerialPort } from 'serialport';
import { MeterReadError } from '../input.ts';
import { openPtyPair } from '../test-support/socat.ts';
import type { PtyPair } from '../test-support/socat.ts';
import { SerialBus } from './serial-bus.ts';
import type { FrameCheck } from './serial-bus.ts';
import type { SerialLink } from './serial-link.ts';
import type { SerialSettings } from './serial-settings.ts';

const S9600: SerialSettings = { baudRate: 9600, parity: 'none', dataBits: 8, stopBits: 1 };
const S2400: SerialSettings = { baudRate: 2400, parity: 'none', dataBits: 8, stopBits: 1 };

/** Frames in these tests: [id, 0x0A]. */
const lineFrame: FrameCheck = (b) => {
  const i = b.indexOf(0x0a);
  return i < 0 ? 0 : i + 1;
};

/**
 * An in-memory link with a meter model behind it: answers a request [id] after
 * `delayMs`, unless the id is dead. Records overlapping requests (which a half-duplex
 * bus must never see) and every configure call.
 */
class FakeLink implements SerialLink {
  readonly path = '/dev/fake';
  settings: SerialSettings | undefined;
  readonly configured: SerialSettings[] = [];
  readonly requests: number[] = [];
  overlaps = 0;
  private outstanding = 0;
  private listener: (b: Buffer) => void = () => {};
  constructor(
    private readonly dead: Set<number>,
    private readonly delayMs = 2,
  ) {}
  onData(l: (b: Buffer) => void): void {
    this.listener = l;
  }
  async configure(s: SerialSettings): Promise<void> {
    if (this.settings && this.settings.baudRate === s.baudRate) return;
    this.configured.push(s);
    this.settings = s;
  }
  async write(bytes: Uint8Array): Promise<void> {
    const id = bytes[0];
    this.requests.push(id);
    if (this.outstanding > 0) this.overlaps++;
    if (this.dead.has(id)) return;
    this.outstanding++;
    setTimeout(() => {
      this.outstanding--;
      this.listener(Buffer.from([id, 0x0a]));
    }, this.delayMs);
  }
  async close(): Promise<void> {
    this.settings = undefined;
  }
}

const ask = (bus: SerialBus, id: number, settings = S9600, timeoutMs = 50) =>
  bus.transact(`m${id}`, settings, async (t) => {
    t.flush();
    await t.write(Buffer.from([id]));
    const reply = await t.read(lineFrame, timeoutMs);
    return reply[0];
  }, { guardMs: 0 });

describe('SerialBus scheduling', () => {
  it('runs one transaction at a time and serves meters round-robin', async () => {
    const link = new FakeLink(new Set());
    const bus = new SerialBus(link);
    const jobs = [1, 1, 1, 2, 2, 2, 3].map((id) => ask(bus, id));
    expect(await Promise.all(jobs)).toEqual([1, 1, 1, 2, 2, 2, 3]);
    expect(link.overlaps).toBe(0);
    // Meter 1 queued three before the others asked; fairness interleaves them.
    expect(link.requests).toEqual([1, 2, 3, 1, 2, 1, 2]);
    await bus.close();
  });

  it('applies each transaction its own serial settings', async () => {
    const link = new FakeLink(new Set());
    const bus = new SerialBus(link);
    await Promise.all([ask(bus, 1, S9600), ask(bus, 2, S2400), ask(bus, 3, S9600)]);
    expect(link.configured.map((s) => s.baudRate)).toEqual([9600, 2400, 9600]);
    await bus.close();
  });

  it('backs a dead meter off so the live ones keep the bus', async () => {
    const link = new FakeLink(new Set([9]));
    const bus = new SerialBus(link, { backoffBaseMs: 200, backoffMaxMs: 400 });
    const dead: Promise<unknown>[] = [];
    let liveDone = 0;
    // The dead meter asks as fast as it can; the live one 20 times in a row.
    const deadLoop = (async () => {
      for (let i = 0; i < 3; i++) dead.push(ask(bus, 9).catch((e: unknown) => e));
      await Promise.all(dead);
    })();
    for (let i = 0; i < 20; i++) {
      await ask(bus, 1);
      liveDone++;
    }
    expect(liveDone).toBe(20);
    const st = bus.stats();
    // While the live meter ran its 20, the dead one got at most one try in (then back-off).
    expect(link.requests.filter((r) => r === 9).length).toBeLessThanOrEqual(2);
    await deadLoop;
    const errors = await Promise.all(dead);
    for (const e of errors) {
      expect(e).toBeInstanceOf(MeterReadError);
      expect((e as MeterReadError).kind).toBe('timeout');
      expect((e as MeterReadError).retryable).toBe(true);
    }
    expect(bus.stats().clients.m9.consecutiveFailures).toBe(3);
    expect(st.clients.m1.failures).toBe(0);
    await bus.close();
  });

  it('clears back-off after a success and measures utilisation', async () => {
    const dead = new Set([4]);
    const link = new FakeLink(dead);
    // A clock the test moves past the back-off: with a real 30 ms back-off a loaded machine
    // let it expire before the check below (stats show an expired back-off as 0).
    let skew = 0;
    const bus = new SerialBus(link, { backoffBaseMs: 60_000, backoffMaxMs: 60_000, now: () => Date.now() + skew });
    await expect(ask(bus, 4)).rejects.toThrow(/no complete reply/);
    expect(bus.stats().clients.m4.backoffUntil).toBeGreaterThan(0);
    dead.delete(4);
    skew += 60_001;
    expect(await ask(bus, 4)).toBe(4);
    const st = bus.stats();
    expect(st.clients.m4.consecutiveFailures).toBe(0);
    expect(st.clients.m4.backoffUntil).toBe(0);
    expect(st.transactions).toBe(2);
    expect(st.utilisation).toBeGreaterThan(0);
    expect(st.utilisation).toBeLessThanOrEqual(1);
    await bus.close();
  });

  it('rejects queued work on close', async () => {
    const link = new FakeLink(new Set([5]));
    const bus = new SerialBus(link);
    const a = ask(bus, 5, S9600, 100).catch((e: Error) => e.message);
    const b = ask(bus, 6).catch((e: Error) => e.message);
    await bus.close();
    expect(await b).toMatch(/closed/);
    expect(await a).toMatch(/no complete reply/);
  });
});

describe('SerialBus on a socat PTY pair', () => {
  let pty: PtyPair | undefined;
  let meter: SerialPort | undefined;
  afterEach(async () => {
    if (meter?.isOpen) await new Promise((r) => meter!.close(r));
    await pty?.close();
  });

  it('drops garbage before a frame, keeps stale bytes out of the next transaction, changes speed', async () => {
    pty = await openPtyPair();
    meter = new SerialPort({ path: pty.b, baudRate: 9600, autoOpen: false });
    await new Promise<void>((res, rej) => meter!.open((e) => (e ? rej(e) : res())));
    const m = meter;
    // The "meter" answers each request with noise, then [id, LF], then a stray byte.
    m.on('data', (d: Buffer) => m.write(Buffer.from([0xff, 0xfe, d[0], 0x0a, 0x77])));
    const bus = new SerialBus(pty.a);
    // A frame starts with the id we asked; anything before it is garbage.
    const check =
      (id: number): FrameCheck =>
      (b) => {
        const start = b.indexOf(id);
        if (start < 0) return -b.length;
        if (start > 0) return -start;
        return b.length >= 2 ? 2 : 0;
      };
    const read = (id: number, s: SerialSettings) =>
      bus.transact(`m${id}`, s, async (t) => {
        t.flush();
        await t.write(Buffer.from([id]));
        return [...(await t.read(check(id), 1000))];
      });
    expect(await read(0x11, S9600)).toEqual([0x11, 0x0a]);
    expect(await read(0x22, S2400)).toEqual([0x22, 0x0a]);
    expect(await read(0x33, S9600)).toEqual([0x33, 0x0a]);
    expect(bus.stats().failures).toBe(0);
    await bus.close();
  });

  it('turns an unopenable device into a retryable connection error for that meter', async () => {
    const bus = new SerialBus('/nonexistent/ttyUSB9', { backoffBaseMs: 10, backoffMaxMs: 10 });
    const err = await bus.transact('mX', S9600, async () => 1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MeterReadError);
    expect((err as MeterReadError).kind).toBe('connection');
    expect((err as MeterReadError).retryable).toBe(true);
    await bus.close();
  });
});
