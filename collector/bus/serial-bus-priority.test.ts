import { describe, expect, it } from 'vitest';
import { SerialBus } from './serial-bus.ts';
import type { FrameCheck } from './serial-bus.ts';
import type { SerialLink } from './serial-link.ts';
import type { SerialSettings } from './serial-settings.ts';

const S: SerialSettings = { baudRate: 9600, parity: 'none', dataBits: 8, stopBits: 1 };
const lineFrame: FrameCheck = (b) => {
  const i = b.indexOf(0x0a);
  return i < 0 ? 0 : i + 1;
};

/** Answers request [id] with [id, 0A] after 1 ms unless the id is dead; records the order. */
class Link implements SerialLink {
  readonly path = '/dev/fake-priority';
  settings: SerialSettings | undefined;
  readonly requests: number[] = [];
  private listener: (b: Buffer) => void = () => {};
  constructor(private readonly dead = new Set<number>()) {}
  onData(l: (b: Buffer) => void): void {
    this.listener = l;
  }
  async configure(): Promise<void> {}
  async write(bytes: Uint8Array): Promise<void> {
    const id = bytes[0];
    this.requests.push(id);
    if (!this.dead.has(id)) setTimeout(() => this.listener(Buffer.from([id, 0x0a])), 1);
  }
  async close(): Promise<void> {}
}

const ask = (bus: SerialBus, client: string, id: number, priority = false) =>
  bus.transact(
    client,
    S,
    async (t) => {
      t.flush();
      await t.write(Buffer.from([id]));
      return (await t.read(lineFrame, 30))[0];
    },
    { guardMs: 0, priority },
  );

describe('SerialBus: commands before polling, polling never starved (issue 13)', () => {
  it('a command jumps the poll queue, at most two in a row before a waiting poll goes', async () => {
    const link = new Link();
    const bus = new SerialBus(link);
    // Polls: ids 1..3 (three meters, four polls each); commands: ids 100+ on meter m1.
    const polls = [];
    for (let k = 0; k < 4; k++) for (const id of [1, 2, 3]) polls.push(ask(bus, `m${id}`, id));
    const commands = [100, 101, 102, 103, 104].map((id) => ask(bus, 'm1', id, true));
    await Promise.all([...polls, ...commands]);
    const order = link.requests;
    // The first poll was already running; then commands lead.
    const firstCommand = order.findIndex((r) => r >= 100);
    expect(firstCommand).toBeLessThanOrEqual(1);
    // Never more than two commands in a row while polls wait.
    let run = 0;
    let maxRun = 0;
    for (const r of order.slice(0, order.lastIndexOf(3))) {
      run = r >= 100 ? run + 1 : 0;
      maxRun = Math.max(maxRun, run);
    }
    expect(maxRun).toBe(2);
    // Every command done before the polls of the second round are all done: priority.
    expect(order.lastIndexOf(104)).toBeLessThan(order.length - 5);
    expect(order.filter((r) => r < 100)).toHaveLength(12);
    await bus.close();
  });

  it('a command is not held back by its meter’s poll back-off; with no poll waiting commands go back to back', async () => {
    const link = new Link(new Set([9]));
    const bus = new SerialBus(link, { backoffBaseMs: 5_000 });
    await ask(bus, 'm9', 9).catch(() => undefined); // m9 is now in a 5 s back-off
    const t0 = Date.now();
    expect(await ask(bus, 'm9', 120, true)).toBe(120);
    expect(await Promise.all([ask(bus, 'm9', 121, true), ask(bus, 'm9', 122, true), ask(bus, 'm9', 123, true)])).toEqual([121, 122, 123]);
    expect(Date.now() - t0).toBeLessThan(2_000);
    await bus.close();
  });

  it('close rejects queued commands too', async () => {
    const bus = new SerialBus(new Link());
    const running = ask(bus, 'm1', 1);
    const queued = ask(bus, 'm1', 100, true).then(
      () => 'resolved',
      (e: Error) => e.message,
    );
    const closing = bus.close();
    await running;
    expect(await queued).toMatch(/closed/);
    await closing;
  });
});
