import { constants } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, truncate } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Logger } from '../../lib/logger.ts';
import { lockSpoolDir } from './spool-lock.ts';
import type { SpoolLock } from './spool-lock.ts';

/**
 * The store-and-forward spool (the concentrator's job, issue 2 item 5): every line goes
 * here, fsynced, BEFORE anything else happens to it, and leaves only when InfluxDB has
 * acknowledged it.
 *
 * On disk (one directory per collector):
 * - `<16-digit seq>.seg`: append-only segment files of records
 *   `[u32 LE payload length][u32 LE CRC-32 of payload][payload]`, the payload being
 *   line-protocol lines joined by `\n` (one record per group commit);
 * - `ack`: `{"segment":n,"offset":m}`, the first byte not yet acknowledged, replaced
 *   atomically (write `ack.<pid>.<n>.tmp`, rename), so it is always an old or a new
 *   position, never torn;
 * - `lock`: the pid of the one process that has the spool open (spool-lock.ts): a second
 *   process refuses to open it with SpoolLockedError.
 *
 * Crash safety: a record is acknowledged to the caller only after fsync. A SIGKILL mid-
 * write leaves a torn last record; on open it fails its length or CRC check, is logged and
 * cut off, and every record before it stays. Segments wholly before the ack position
 * are deleted. Re-sending records past a stale ack is harmless: each line carries its
 * own timestamp, so InfluxDB overwrites instead of duplicating.
 *
 * Bound: when unacknowledged bytes would exceed `maxBytes`, `append` refuses with
 * SpoolFullError (and the spool reports `full` until it drains below 90 %). Refusing
 * the newest keeps the invariant "what the spool accepted is delivered"; meter registers
 * are cumulative, so samples refused while full become a gap in the data, not lost energy.
 */

export interface SpoolOptions {
  /** Bound on unacknowledged bytes. @defaultValue 256 MiB */
  readonly maxBytes?: number;
  /** A segment is closed and a new one started past this size. @defaultValue 16 MiB */
  readonly segmentBytes?: number;
  /** fsync every record (off only for benchmarks of the raw path). @defaultValue true */
  readonly fsync?: boolean;
  /**
   * Payloads of records written since open are also kept in memory up to this many
   * bytes, so the forwarder sends them without reading the segment back. Past it (a long
   * InfluxDB outage) records are read from disk as after a restart. @defaultValue 32 MiB
   */
  readonly memoryBytes?: number;
  readonly log?: Logger;
  /** Called when the spool turns full or drains again (the alarm). */
  readonly onFullChange?: (full: boolean) => void;
}

export class SpoolFullError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SpoolFullError';
  }
}

export interface SpoolPosition {
  readonly segment: number;
  readonly offset: number;
}

export interface SpoolStats {
  /** Unacknowledged bytes on disk (records including headers). */
  readonly bytes: number;
  /** Unacknowledged lines. */
  readonly lines: number;
  readonly full: boolean;
  /** Lines refused since open because the spool was full. */
  readonly refused: number;
  /** Torn or corrupt records cut off or skipped when the spool was opened. */
  readonly recoveredCorrupt: number;
  readonly maxBytes: number;
}

export interface SpoolBatch {
  /** The lines, split out of `body` on first use. */
  readonly lines: string[];
  /** The same lines as line protocol joined by `\n`, UTF-8: a /write request body as is (joined on first use). */
  readonly body: Buffer;
  /** The records' payloads in order: `body` is them joined by `\n` (sent as they are, without the join). */
  readonly parts: readonly Buffer[];
  readonly lineCount: number;
  /** Pass to `ack` once InfluxDB has taken every line. */
  readonly end: SpoolPosition;
}

/** A batch whose `body` is joined and `lines` split only if someone asks (tests, rejected.lp, onWritten do; the forwarder's write does not). */
function spoolBatch(parts: readonly Buffer[], lineCount: number, end: SpoolPosition): SpoolBatch {
  let lines: string[] | undefined;
  let body: Buffer | undefined;
  return {
    parts,
    lineCount,
    end,
    get body() {
      body ??= parts.length === 1 ? parts[0] : Buffer.concat(parts.flatMap((p, k) => (k === 0 ? [p] : [NEWLINE, p])));
      return body;
    },
    get lines() {
      lines ??= this.body.toString('utf8').split('\n');
      return lines;
    },
  };
}

interface PendingGroup {
  /**
   * The record being built: HEADER bytes, then each line UTF-8 encoded as it is appended,
   * each followed by `\n`. Encoding on append gives the exact byte count for the bound
   * (no Buffer.byteLength per line) and leaves one buffer to write (no copy per line).
   */
  buf: Buffer;
  /** Bytes used in buf, HEADER included. */
  used: number;
  lines: number;
  readonly done: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

function pendingGroup(capacity: number): PendingGroup {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A failed group is reported to each append's caller; none may go unhandled meanwhile.
  done.catch(() => {});
  return { buf: Buffer.allocUnsafe(capacity), used: HEADER, lines: 0, done, resolve, reject };
}

/** A line's UTF-8 size is at most 3 bytes per UTF-16 code unit (a surrogate pair: 4 bytes for 2 units). */
const MAX_UTF8_PER_UNIT = 3;
/** Smallest group buffer; a group's buffer starts at the size the last group reached. */
const MIN_GROUP_BYTES = 16 * 1024;

interface RecordRef {
  readonly segment: number;
  readonly offset: number;
  /** Bytes including the header. */
  readonly size: number;
  readonly lines: number;
  /** The payload, while it is within the spool's memory budget; else read from the segment. */
  payload?: Buffer;
  /** Bytes of memory the payload holds (its group buffer, a little larger than the payload). */
  memory?: number;
}

const HEADER = 8;
/** O_DSYNC where the platform has it (Linux, macOS); elsewhere each write is followed by a datasync. */
const DSYNC = (constants as { O_DSYNC?: number }).O_DSYNC;
const NEWLINE = Buffer.from('\n');
const segName = (n: number) => `${String(n).padStart(16, '0')}.seg`;
/** Numbers this process's Spools, so each writes its own ack tmp file (see writeAck). */
let spoolInstances = 0;
/** An ack tmp file: `ack.<pid>.<instance>.tmp`, or `ack.tmp` of versions before the lock. */
const ACK_TMP = /^ack(?:\.(\d+)\.\d+)?\.tmp$/;

export class Spool {
  readonly dir: string;
  private readonly maxBytes: number;
  private readonly segmentBytes: number;
  private readonly fsync: boolean;
  private readonly memoryBytes: number;
  /** Bytes of payloads held in memory (RecordRef.payload). */
  private memoryUsed = 0;
  private readonly log?: Logger;
  private readonly onFullChange?: (full: boolean) => void;
  /** Unacknowledged records in order. `head` indexes the first one. */
  private records: RecordRef[] = [];
  private head = 0;
  private pendingBytes = 0;
  private pendingLines = 0;
  /** Bytes of appends accepted but not yet written (queued or in the write in flight). */
  private reserved = 0;
  private full = false;
  private refused = 0;
  private recoveredCorrupt = 0;
  private segment = 0;
  private segmentSize = 0;
  private fh: FileHandle | undefined;
  private readers = new Map<number, FileHandle>();
  /**
   * Group commit: the lines of every append since the last write began, written as one
   * record with one fsync. All appends of a group share its one promise (a promise per
   * append was a third of the spool's CPU per sample in bench/ingest.bench.ts).
   */
  private group: PendingGroup | undefined;
  /** Bytes the next group's buffer starts with (the last group's size, a little more). */
  private groupCapacity = MIN_GROUP_BYTES;
  private writing = false;
  private closed = false;
  private waiters: (() => void)[] = [];
  /** Forwarders lingering for a fuller batch: woken at `lines` unacknowledged lines. */
  private lineWaiters: { lines: number; wake: () => void }[] = [];
  /** The newest acknowledged position not yet in the ack file, and the write of it in progress. */
  private ackTarget: SpoolPosition | undefined;
  private ackRun: Promise<void> | undefined;
  /** Segments below this number are deleted. */
  private droppedBefore = 0;
  /** performance.now() of the last record written (waitForLines' quiet period). */
  private lastWriteAt = 0;
  /** Callers of waitForEmpty, each with the count of lines it waits to see settled. */
  private emptyWaiters: { target: number; wake: () => void }[] = [];
  /** Lines accepted since open (recovered ones included), and of those the ones acknowledged or whose write failed. */
  private appendedLines = 0;
  private settledLines = 0;
  private lock: SpoolLock | undefined;
  /**
   * This Spool's own tmp file for the ack. A shared `ack.tmp` let two Spools on one
   * directory (a restart while the old one's ack write was in flight) truncate and
   * rename each other's file: one rename found it gone (ENOENT) and the ack run
   * rejected, the flake of spool.test.ts "holds every unacknowledged line ...".
   */
  private readonly ackTmp = `ack.${process.pid}.${++spoolInstances}.tmp`;

  private constructor(dir: string, opts: SpoolOptions) {
    this.dir = dir;
    this.maxBytes = opts.maxBytes ?? 256 * 1024 * 1024;
    this.segmentBytes = opts.segmentBytes ?? 16 * 1024 * 1024;
    this.fsync = opts.fsync ?? true;
    this.memoryBytes = opts.memoryBytes ?? 32 * 1024 * 1024;
    this.log = opts.log;
    this.onFullChange = opts.onFullChange;
    if (!(this.maxBytes > HEADER)) throw new Error(`spool maxBytes must be more than ${HEADER}, got ${this.maxBytes}`);
    if (!(this.segmentBytes > HEADER)) throw new Error(`spool segmentBytes must be more than ${HEADER}, got ${this.segmentBytes}`);
  }

  /** Opens (creating) the spool in `dir`, recovering from a crash as described above. */
  static async open(dir: string, opts: SpoolOptions = {}): Promise<Spool> {
    const s = new Spool(dir, opts);
    await mkdir(dir, { recursive: true });
    s.lock = await lockSpoolDir(dir);
    try {
      await s.recover();
    } catch (err) {
      await s.lock.release();
      throw err;
    }
    return s;
  }

  stats(): SpoolStats {
    return { bytes: this.pendingBytes, lines: this.pendingLines, full: this.full, refused: this.refused, recoveredCorrupt: this.recoveredCorrupt, maxBytes: this.maxBytes };
  }

  /**
   * Appends lines durably: resolves once they are on disk (fsync). Rejects with
   * SpoolFullError (nothing written) when they would push the spool past its bound.
   * Lines must not contain `\n` (line protocol lines never do).
   */
  append(lines: readonly string[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error('spool is closed'));
    if (lines.length === 0) return Promise.resolve();
    // The record header is counted once per group, when the group opens.
    let g = this.group;
    const opened = !g;
    if (!g) {
      g = this.group = pendingGroup(this.groupCapacity);
      this.reserved += HEADER;
    }
    // Encode into the group's buffer past what it holds; only a fitting batch of lines
    // moves `used` on, so a refused append leaves nothing behind.
    let end = g.used;
    for (const l of lines) {
      const need = end + l.length * MAX_UTF8_PER_UNIT + 1;
      if (need > g.buf.length) {
        const grown = Buffer.allocUnsafe(Math.max(need, g.buf.length * 2));
        g.buf.copy(grown, 0, 0, end);
        g.buf = grown;
      }
      end += g.buf.write(l, end);
      g.buf[end++] = 0x0a;
    }
    const bytes = end - g.used;
    // Accepted but not yet on disk (queued or being written) counts against the bound too.
    // As before groups were encoded on append: a record header always counted for the new lines.
    if (this.pendingBytes + this.reserved - (opened ? HEADER : 0) + bytes + HEADER > this.maxBytes) {
      if (opened) {
        this.group = undefined;
        this.reserved -= HEADER;
      }
      this.refused += lines.length;
      this.setFull(true);
      return Promise.reject(new SpoolFullError(`spool ${this.dir} is full (${this.pendingBytes} of ${this.maxBytes} bytes unacknowledged): ${lines.length} lines refused`));
    }
    this.reserved += bytes;
    g.used = end;
    g.lines += lines.length;
    this.appendedLines += lines.length;
    if (!this.writing) {
      this.writing = true;
      // Start the write one microtask later: appends issued in the same turn of the
      // event loop (a poll round finishing, a sink called in a loop) share one record,
      // one write and one fsync, instead of the first going alone.
      queueMicrotask(() => void this.writeQueued());
    }
    return g.done;
  }

  /**
   * Resolves once at least `lines` lines are unacknowledged, or after `timeoutMs`, or
   * when appends stop arriving for `quietMs` (a burst is over: no point waiting for
   * more). The forwarder lingers on it for a full batch.
   */
  waitForLines(lines: number, timeoutMs: number, quietMs = timeoutMs): Promise<void> {
    if (this.pendingLines >= lines || this.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const waiter = { lines, wake: done };
      const self = this;
      const t = setTimeout(done, timeoutMs);
      // Quiet: no record written for quietMs. Checked when the timer fires, re-armed for
      // the rest of the quiet period if a record came meanwhile.
      let quiet = setTimeout(check, quietMs);
      function check() {
        const idle = performance.now() - self.lastWriteAt;
        if (idle >= quietMs && !self.writing) done();
        else quiet = setTimeout(check, Math.max(1, quietMs - idle));
      }
      function done() {
        clearTimeout(t);
        clearTimeout(quiet);
        self.lineWaiters = self.lineWaiters.filter((w) => w !== waiter);
        resolve();
      }
      this.lineWaiters.push(waiter);
    });
  }

  /**
   * Resolves (true) once every line appended before the call is acknowledged, or failed to
   * be written (its append rejected), or false after `timeoutMs`. Lines appended after the
   * call are not waited for: a collector polling every few milliseconds keeps the spool
   * busy, and on a loaded machine it was rarely empty at the instant of an ack (a test
   * waiting for "empty" timed out although everything it had read was in InfluxDB).
   * Lines leave in order, so a count of settled lines says which ones.
   */
  waitForEmpty(timeoutMs: number): Promise<boolean> {
    const target = this.appendedLines;
    if (this.settledLines >= target) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const self = this;
      const t = setTimeout(() => finish(false), timeoutMs);
      function finish(ok: boolean) {
        clearTimeout(t);
        self.emptyWaiters = self.emptyWaiters.filter((w) => w !== waiter);
        resolve(ok);
      }
      const waiter = { target, wake: () => finish(true) };
      this.emptyWaiters.push(waiter);
    });
  }

  private wakeEmptyWaiters(): void {
    for (const w of this.emptyWaiters.slice()) if (this.settledLines >= w.target) w.wake();
  }

  /** Resolves when lines are waiting (immediately if some are), or after `timeoutMs`. */
  waitForData(timeoutMs: number): Promise<void> {
    if (this.head < this.records.length || this.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const t = setTimeout(done, timeoutMs);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.waiters.push(done);
    });
  }

  /**
   * The oldest unacknowledged lines, whole records up to about `maxLines` (at least one
   * record), in the order they were appended. Reading does not remove them: `ack` does.
   * Records written since open come from memory (within `memoryBytes`), the others from
   * their segment; either way the batch body is the records' payloads joined by `\n`.
   */
  async peek(maxLines: number): Promise<SpoolBatch | undefined> {
    if (this.head >= this.records.length) return undefined;
    const parts: Buffer[] = [];
    let lineCount = 0;
    let i = this.head;
    let last: RecordRef | undefined;
    while (i < this.records.length && (lineCount === 0 || lineCount + this.records[i].lines <= maxLines)) {
      const first = this.records[i];
      if (first.payload) {
        parts.push(first.payload);
        lineCount += first.lines;
        last = first;
        i++;
        continue;
      }
      // Consecutive records of one segment that are not in memory are read with one call.
      let j = i;
      let n = first.lines;
      while (j + 1 < this.records.length && !this.records[j + 1].payload && this.records[j + 1].segment === first.segment && lineCount + n + this.records[j + 1].lines <= maxLines) {
        j++;
        n += this.records[j].lines;
      }
      last = this.records[j];
      const len = last.offset + last.size - first.offset;
      const buf = Buffer.allocUnsafe(len);
      const fh = await this.reader(first.segment);
      const { bytesRead } = await fh.read(buf, 0, len, first.offset);
      if (bytesRead !== len) throw new Error(`spool segment ${segName(first.segment)} is shorter than its index (read ${bytesRead} of ${len} at ${first.offset})`);
      let pos = 0;
      while (pos < len) {
        const size = buf.readUInt32LE(pos);
        parts.push(buf.subarray(pos + HEADER, pos + HEADER + size));
        pos += HEADER + size;
      }
      lineCount += n;
      i = j + 1;
    }
    return spoolBatch(parts, lineCount, { segment: last!.segment, offset: last!.offset + last!.size });
  }

  /**
   * Marks everything before `end` as acknowledged by InfluxDB. The spool's state moves at
   * once (the next peek starts after `end`); the returned promise resolves when the `ack`
   * file says so and whole segments behind it are deleted. The forwarder does not wait for
   * that before sending the next batch: the ack file is a hint (never fsynced, see
   * writeAck), and a stale one only re-sends lines that overwrite themselves. Writes of
   * the ack file are serialised and coalesced to the newest position.
   */
  ack(end: SpoolPosition): Promise<void> {
    let i = this.head;
    while (i < this.records.length) {
      const r = this.records[i];
      if (r.segment > end.segment || (r.segment === end.segment && r.offset + r.size > end.offset)) break;
      this.pendingBytes -= r.size;
      this.pendingLines -= r.lines;
      this.settledLines += r.lines;
      if (r.payload) {
        this.memoryUsed -= r.memory ?? 0;
        r.payload = undefined;
      }
      i++;
    }
    const moved = i !== this.head;
    this.head = i;
    if (this.head > 4096 && this.head * 2 > this.records.length) {
      this.records = this.records.slice(this.head);
      this.head = 0;
    }
    if (this.full && this.pendingBytes < this.maxBytes * 0.9) this.setFull(false);
    this.wakeEmptyWaiters();
    if (!moved && this.ackRun) return this.ackRun;
    this.ackTarget = end;
    this.ackRun ??= this.persistAcks();
    return this.ackRun;
  }

  private async persistAcks(): Promise<void> {
    try {
      while (this.ackTarget) {
        const pos = this.ackTarget;
        this.ackTarget = undefined;
        await this.writeAck(pos);
        if (pos.segment > this.droppedBefore) {
          await this.dropSegmentsBefore(pos.segment);
          this.droppedBefore = pos.segment;
        }
      }
    } finally {
      this.ackRun = undefined;
    }
  }

  async close(): Promise<void> {
    while (this.writing || this.group) await new Promise((r) => setTimeout(r, 2));
    while (this.ackRun) await this.ackRun.catch(() => {});
    this.closed = true;
    for (const w of this.waiters.splice(0)) w();
    for (const w of this.lineWaiters.slice()) w.wake();
    await this.fh?.close();
    this.fh = undefined;
    for (const fh of this.readers.values()) await fh.close();
    this.readers.clear();
    await this.lock?.release();
    this.lock = undefined;
  }

  private setFull(full: boolean): void {
    if (this.full === full) return;
    this.full = full;
    if (full) this.log?.error({ spool: this.dir, bytes: this.pendingBytes, maxBytes: this.maxBytes }, 'spool full: new samples are refused until InfluxDB takes the backlog');
    else this.log?.warn({ spool: this.dir, bytes: this.pendingBytes }, 'spool drained below 90 %: accepting samples again');
    this.onFullChange?.(full);
  }

  private async writeQueued(): Promise<void> {
    this.writing = true;
    try {
      while (this.group) {
        const group = this.group;
        this.group = undefined;
        const lines = group.lines;
        const reservedForGroup = group.used;
        // The next group starts at this one's size: one allocation per group in steady state.
        this.groupCapacity = Math.max(MIN_GROUP_BYTES, group.used + (group.used >> 3));
        // The record: header, then the lines joined by `\n` (the last `\n` dropped), as a
        // /write body wants them.
        const rec = group.buf.subarray(0, group.used - 1);
        const payloadLength = rec.length - HEADER;
        const payload = rec.subarray(HEADER);
        rec.writeUInt32LE(payloadLength, 0);
        rec.writeUInt32LE(crc32(payload), 4);
        try {
          if (!this.fh || this.segmentSize >= this.segmentBytes) await this.rotate();
          const offset = this.segmentSize;
          // With fsync the segment is open with O_DSYNC (segmentFlags): the write returns
          // once the record is on disk, as write + fdatasync, in one call to the thread pool.
          await this.fh!.write(rec, 0, rec.length, offset);
          if (this.fsync && !DSYNC) await this.fh!.datasync();
          this.segmentSize += rec.length;
          const ref: RecordRef = { segment: this.segment, offset, size: rec.length, lines };
          if (this.memoryUsed + group.buf.length <= this.memoryBytes) {
            ref.payload = payload;
            ref.memory = group.buf.length;
            this.memoryUsed += group.buf.length;
          }
          this.records.push(ref);
          this.pendingBytes += rec.length;
          this.pendingLines += lines;
          this.lastWriteAt = performance.now();
        } catch (err) {
          // Cut a possibly half-written record so the next append starts on a boundary.
          await this.fh?.truncate(this.segmentSize).catch(() => {});
          this.reserved -= reservedForGroup;
          this.settledLines += lines;
          group.reject(err);
          this.wakeEmptyWaiters();
          continue;
        }
        this.reserved -= reservedForGroup;
        group.resolve();
        for (const w of this.waiters.splice(0)) w();
        for (const w of this.lineWaiters.slice()) if (this.pendingLines >= w.lines) w.wake();
      }
    } finally {
      this.writing = false;
    }
  }

  /**
   * 'a+' (read, append, create), plus O_DSYNC with fsync: every write is durable when it
   * returns (POSIX synchronized I/O data integrity completion, what fdatasync gives),
   * so a group commit is one write, not a write and a datasync: half the thread-pool
   * round trips on the path every sample waits on (bench/ingest.bench.ts).
   */
  private segmentFlags(): number {
    return constants.O_RDWR | constants.O_CREAT | constants.O_APPEND | (this.fsync && DSYNC ? DSYNC : 0);
  }

  private async rotate(): Promise<void> {
    if (this.fh) {
      await this.fh.close();
      this.segment++;
    }
    this.segmentSize = 0;
    this.fh = await open(join(this.dir, segName(this.segment)), this.segmentFlags());
    const st = await this.fh.stat();
    this.segmentSize = st.size;
    if (this.fsync) await this.syncDir();
  }

  private async reader(segment: number): Promise<FileHandle> {
    let fh = this.readers.get(segment);
    if (!fh) {
      fh = await open(join(this.dir, segName(segment)), 'r');
      this.readers.set(segment, fh);
    }
    return fh;
  }

  private async writeAck(pos: SpoolPosition): Promise<void> {
    const tmp = join(this.dir, this.ackTmp);
    const fh = await open(tmp, 'w');
    try {
      // No fsync: losing the newest ack in a power cut only re-sends lines InfluxDB already
      // has, and they overwrite themselves. The rename keeps the file whole either way.
      await fh.writeFile(JSON.stringify({ segment: pos.segment, offset: pos.offset }));
    } finally {
      await fh.close();
    }
    await rename(tmp, join(this.dir, 'ack'));
  }

  private async syncDir(): Promise<void> {
    const d = await open(this.dir, 'r');
    try {
      await d.sync();
    } catch {
      // some filesystems refuse fsync on a directory; the data files are synced anyway
    } finally {
      await d.close();
    }
  }

  private async dropSegmentsBefore(segment: number): Promise<void> {
    for (const name of await readdir(this.dir)) {
      const m = /^(\d{16})\.seg$/.exec(name);
      if (!m || Number(m[1]) >= segment || Number(m[1]) === this.segment) continue;
      const fh = this.readers.get(Number(m[1]));
      if (fh) {
        this.readers.delete(Number(m[1]));
        await fh.close();
      }
      await rm(join(this.dir, name), { force: true });
    }
  }

  private async recover(): Promise<void> {
    let ack: SpoolPosition = { segment: 0, offset: 0 };
    try {
      const a = JSON.parse(await readFile(join(this.dir, 'ack'), 'utf8')) as SpoolPosition;
      if (Number.isSafeInteger(a.segment) && Number.isSafeInteger(a.offset)) ack = a;
    } catch {
      // no ack yet: nothing was acknowledged
    }
    const names = await readdir(this.dir);
    // Ack tmp files of processes that died mid-write (this one holds the lock, so no other
    // process writes here); this process's own may be in flight in another Spool.
    for (const n of names) {
      const m = ACK_TMP.exec(n);
      if (m && Number(m[1]) !== process.pid) await rm(join(this.dir, n), { force: true });
    }
    const segments = names
      .map((n) => /^(\d{16})\.seg$/.exec(n))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    for (const seg of segments) {
      const path = join(this.dir, segName(seg));
      if (seg < ack.segment) {
        await rm(path, { force: true });
        continue;
      }
      const buf = await readFile(path);
      let pos = 0;
      while (pos + HEADER <= buf.length) {
        const size = buf.readUInt32LE(pos);
        const end = pos + HEADER + size;
        if (end > buf.length || crc32(buf.subarray(pos + HEADER, end)) !== buf.readUInt32LE(pos + 4)) break;
        if (seg > ack.segment || pos >= ack.offset) {
          let lines = 1;
          for (let i = pos + HEADER; i < end; i++) if (buf[i] === 0x0a) lines++;
          this.records.push({ segment: seg, offset: pos, size: HEADER + size, lines });
          this.pendingBytes += HEADER + size;
          this.pendingLines += lines;
        }
        pos = end;
      }
      if (pos < buf.length) {
        // A torn tail (the process died mid-write) or corruption: everything before pos is
        // intact and kept; the rest cannot be trusted.
        this.recoveredCorrupt++;
        this.log?.warn({ segment: path, keptBytes: pos, droppedBytes: buf.length - pos }, 'spool: cut a torn or corrupt record at the end of a segment');
        await truncate(path, pos);
      }
      this.segment = seg;
    }
    // A fresh segment must sort after the ack position, or its records would look acknowledged.
    if (segments.length === 0 || this.segment < ack.segment) this.segment = ack.segment + 1;
    if (segments.includes(this.segment)) {
      this.fh = await open(join(this.dir, segName(this.segment)), this.segmentFlags());
      this.segmentSize = (await stat(join(this.dir, segName(this.segment)))).size;
    }
    this.appendedLines = this.pendingLines;
    if (this.pendingLines > 0) this.log?.info({ spool: this.dir, lines: this.pendingLines, bytes: this.pendingBytes }, 'spool: resuming with unacknowledged lines');
  }
}
