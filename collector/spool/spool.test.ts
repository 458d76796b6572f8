import { appendFileSync, constants, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../test-support/socat.ts';
import { Spool, SpoolFullError } from './spool.ts';

const lines = (from: number, n: number) => Array.from({ length: n }, (_, i) => `reading,meter=m wh=${from + i}i ${1_700_000_000_000 + from + i}`);

async function drain(spool: Spool, maxLines = 1000): Promise<string[]> {
  const out: string[] = [];
  for (;;) {
    const b = await spool.peek(maxLines);
    if (!b) return out;
    out.push(...b.lines);
    await spool.ack(b.end);
  }
}

describe('Spool', () => {
  it('keeps order across segments, deletes acknowledged segments, resumes unacknowledged lines after reopen', async () => {
    const dir = tempDir('spool');
    let s = await Spool.open(dir, { segmentBytes: 300 });
    for (let i = 0; i < 20; i++) await s.append(lines(i * 5, 5));
    expect(s.stats().lines).toBe(100);
    expect(readdirSync(dir).filter((f) => f.endsWith('.seg')).length).toBeGreaterThan(3);
    const first = await s.peek(12);
    expect(first!.lines).toEqual(lines(0, 10)); // whole records only: 2 records of 5
    await s.ack(first!.end);
    expect(s.stats().lines).toBe(90);
    await s.close();

    s = await Spool.open(dir, { segmentBytes: 300 });
    expect(s.stats().lines).toBe(90);
    await s.append(lines(100, 3));
    expect(await drain(s, 7)).toEqual(lines(10, 93));
    expect(s.stats()).toMatchObject({ lines: 0, bytes: 0 });
    expect(readdirSync(dir).filter((f) => f.endsWith('.seg')).length).toBe(1);
    await s.close();

    // Everything acknowledged; the next open starts clean and new lines are not taken for acknowledged ones.
    s = await Spool.open(dir, { segmentBytes: 300 });
    expect(s.stats().lines).toBe(0);
    await s.append(lines(200, 2));
    await s.close();
    s = await Spool.open(dir, { segmentBytes: 300 });
    expect(await drain(s)).toEqual(lines(200, 2));
    await s.close();
  });

  it('cuts a torn last record (a SIGKILL mid-write) and keeps every record before it', async () => {
    const dir = tempDir('spool');
    let s = await Spool.open(dir);
    await s.append(lines(0, 3));
    await s.append(lines(3, 3));
    await s.close();
    const seg = readdirSync(dir).find((f) => f.endsWith('.seg'))!;
    const good = statSync(join(dir, seg)).size;
    // A header claiming 100 bytes followed by only 10 of them.
    const torn = Buffer.alloc(18);
    torn.writeUInt32LE(100, 0);
    appendFileSync(join(dir, seg), torn);
    s = await Spool.open(dir);
    expect(s.stats()).toMatchObject({ lines: 6, recoveredCorrupt: 1 });
    expect(statSync(join(dir, seg)).size).toBe(good);
    await s.append(lines(6, 1));
    expect(await drain(s)).toEqual(lines(0, 7));
    await s.close();
  });

  it('detects a record whose bytes changed (CRC) and keeps the ones before it', async () => {
    const dir = tempDir('spool');
    let s = await Spool.open(dir);
    await s.append(lines(0, 2));
    await s.append(lines(2, 2));
    await s.close();
    const seg = join(dir, readdirSync(dir).find((f) => f.endsWith('.seg'))!);
    const size = statSync(seg).size;
    const { openSync, writeSync, closeSync } = await import('node:fs');
    const fd = openSync(seg, 'r+');
    writeSync(fd, Buffer.from('X'), 0, 1, size - 3);
    closeSync(fd);
    s = await Spool.open(dir);
    expect(s.stats()).toMatchObject({ lines: 2, recoveredCorrupt: 1 });
    expect(await drain(s)).toEqual(lines(0, 2));
    await s.close();
  });

  it('refuses lines past its bound with a clear alarm and accepts again once drained', async () => {
    const dir = tempDir('spool');
    const alarms: boolean[] = [];
    const s = await Spool.open(dir, { maxBytes: 300, onFullChange: (f) => alarms.push(f) });
    await s.append(lines(0, 4));
    await s.append(lines(4, 2));
    const err = await s.append(lines(6, 4)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpoolFullError);
    expect((err as Error).message).toMatch(/full.*4 lines refused/);
    expect(s.stats()).toMatchObject({ full: true, refused: 4, lines: 6 });
    expect(await drain(s)).toEqual(lines(0, 6));
    expect(s.stats().full).toBe(false);
    expect(alarms).toEqual([true, false]);
    await s.append(lines(6, 4));
    expect(await drain(s)).toEqual(lines(6, 4));
    await s.close();
  });

  it('group-commits concurrent appends into one record', async () => {
    const dir = tempDir('spool');
    const s = await Spool.open(dir);
    await Promise.all(Array.from({ length: 50 }, (_, i) => s.append(lines(i, 1))));
    expect(s.stats().lines).toBe(50);
    expect((await drain(s)).sort()).toEqual(lines(0, 50).sort());
    await s.close();
  });

  it('holds every unacknowledged line when the process dies before the ack file caught up', async () => {
    const dir = tempDir('spool');
    const s = await Spool.open(dir);
    await s.append(lines(0, 3));
    await s.append(lines(3, 3));
    await s.append(lines(6, 3));
    const first = await s.peek(3);
    // The forwarder does not wait for the ack file; a crash right now leaves it behind.
    const persisted = s.ack(first!.end);
    const reopened = await Spool.open(dir);
    const seen = await drain(reopened);
    // Lines 3..8 were never acknowledged: all there. Lines 0..2 may come again (a re-send
    // overwrites itself in InfluxDB), never fewer.
    expect(seen.slice(-6)).toEqual(lines(3, 6));
    expect([lines(0, 9), lines(3, 6)]).toContainEqual(seen);
    await persisted;
    await reopened.close();
    await s.close();
  });

  it('lets a lingering reader wake for a full batch, or when appends pause', async () => {
    const s = await Spool.open(tempDir('spool'));
    const t0 = performance.now();
    const waiting = s.waitForLines(10, 5000, 5000);
    for (let i = 0; i < 5; i++) await s.append(lines(i * 2, 2));
    await waiting;
    expect(performance.now() - t0).toBeLessThan(4000);
    await s.append(lines(10, 1));
    const t1 = performance.now();
    await s.waitForLines(100, 5000, 50); // nothing more comes: woken by the pause, not the 5 s
    expect(performance.now() - t1).toBeLessThan(4000);
    expect(await s.waitForEmpty(10)).toBe(false);
    const emptied = s.waitForEmpty(5000);
    await drain(s);
    expect(await emptied).toBe(true);
    await s.close();
  });

  it('writes segments synchronously (O_DSYNC): a record is on disk when its append resolves, and not without fsync', async () => {
    // The open flags of this process's descriptors on the spool's segments (Linux
    // /proc/self/fdinfo, proc(5): "flags", octal).
    const segmentFlags = (dir: string) =>
      readdirSync('/proc/self/fd')
        .filter((fd) => {
          try {
            return readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir) && readlinkSync(`/proc/self/fd/${fd}`).endsWith('.seg');
          } catch {
            return false;
          }
        })
        .map((fd) => parseInt(/^flags:\s+([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1], 8));
    const durable = tempDir('spool');
    const s = await Spool.open(durable);
    await s.append(lines(0, 3));
    const flags = segmentFlags(durable);
    expect(flags.length).toBeGreaterThan(0);
    for (const f of flags) expect(f & constants.O_DSYNC).toBe(constants.O_DSYNC);
    await s.close();
    const fast = tempDir('spool');
    const n = await Spool.open(fast, { fsync: false });
    await n.append(lines(0, 3));
    expect(segmentFlags(fast).every((f) => (f & constants.O_DSYNC) === 0)).toBe(true);
    await n.close();
  });

  it('waitForEmpty waits for the lines appended before it, not for a spool that new appends keep busy', async () => {
    const s = await Spool.open(tempDir('spool'));
    await s.append(lines(0, 5));
    const waiting = s.waitForEmpty(2000);
    await s.append(lines(5, 5)); // a poller keeps appending after the call
    const first = await s.peek(5);
    expect(first!.lineCount).toBe(5);
    await s.ack(first!.end);
    expect(await waiting).toBe(true);
    expect(s.stats().lines).toBe(5);
    // A new call waits for those 5 too.
    const again = s.waitForEmpty(2000);
    await drain(s);
    expect(await again).toBe(true);
    await s.close();
  });
});

