import { mkdir, open, readdir, readFile, rename, rm, stat, truncate } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Logger } from '../../lib/logger.ts';

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
 *   atomically (write, rename), so it is always an old or a new position, never torn.
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
  readonly lines: string[];
  /** Pass to `ack` once InfluxDB has taken every line. */
  readonly end: SpoolPosition;
}

interface RecordRef {
  readonly segment: number;
  readonly offset: number;
  /** Bytes including the header. */
  readonly size: number;
  readonly lines: number;
}

const HEADER = 8;
const segName = (n: number) => `${String(n).padStart(16, '0')}.seg`;

export class Spool {
  readonly dir: string;
  private readonly maxBytes: number;
  private readonly segmentBytes: number;
  private readonly fsync: boolean;
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
  /** Group commit: appends waiting for the next write + fsync. */
  private queue: { lines: string[]; bytes: number; resolve: () => void; reject: (e: unknown) => void }[] = [];
  private writing = false;
  private closed = false;
  private waiters: (() => void)[] = [];

  private constructor(dir: string, opts: SpoolOptions) {
    this.dir = dir;
    this.maxBytes = opts.maxBytes ?? 256 * 1024 * 1024;
    this.segmentBytes = opts.segmentBytes ?? 16 * 1024 * 1024;
    this.fsync = opts.fsync ?? true;
    this.log = opts.log;
    this.onFullChange = opts.onFullChange;
    if (!(this.maxBytes > HEADER)) throw new Error(`spool maxBytes must be more than ${HEADER}, got ${this.maxBytes}`);
    if (!(this.segmentBytes > HEADER)) throw new Error(`spool segmentBytes must be more than ${HEADER}, got ${this.segmentBytes}`);
  }

  /** Opens (creating) the spool in `dir`, recovering from a crash as described above. */
  static async open(dir: string, opts: SpoolOptions = {}): Promise<Spool> {
    const s = new Spool(dir, opts);
    await s.recover();
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
    let bytes = 0;
    for (const l of lines) bytes += Buffer.byteLength(l) + 1;
    // Accepted but not yet on disk (queued or being written) counts against the bound too.
    if (this.pendingBytes + this.reserved + bytes + HEADER > this.maxBytes) {
      this.refused += lines.length;
      this.setFull(true);
      return Promise.reject(new SpoolFullError(`spool ${this.dir} is full (${this.pendingBytes} of ${this.maxBytes} bytes unacknowledged): ${lines.length} lines refused`));
    }
    this.reserved += bytes + HEADER;
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ lines: [...lines], bytes, resolve, reject });
      if (!this.writing) void this.writeQueued();
    });
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
   */
  async peek(maxLines: number): Promise<SpoolBatch | undefined> {
    if (this.head >= this.records.length) return undefined;
    const lines: string[] = [];
    let i = this.head;
    let last: RecordRef | undefined;
    while (i < this.records.length && (lines.length === 0 || lines.length + this.records[i].lines <= maxLines)) {
      // Consecutive records of one segment are read with one call.
      const first = this.records[i];
      let j = i;
      let n = first.lines;
      while (j + 1 < this.records.length && this.records[j + 1].segment === first.segment && lines.length + n + this.records[j + 1].lines <= maxLines) {
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
        for (const l of buf.toString('utf8', pos + HEADER, pos + HEADER + size).split('\n')) lines.push(l);
        pos += HEADER + size;
      }
      i = j + 1;
    }
    return { lines, end: { segment: last!.segment, offset: last!.offset + last!.size } };
  }

  /** Marks everything before `end` as acknowledged by InfluxDB: durable, then deletes whole segments behind it. */
  async ack(end: SpoolPosition): Promise<void> {
    let i = this.head;
    while (i < this.records.length) {
      const r = this.records[i];
      if (r.segment > end.segment || (r.segment === end.segment && r.offset + r.size > end.offset)) break;
      this.pendingBytes -= r.size;
      this.pendingLines -= r.lines;
      i++;
    }
    const oldHead = this.head;
    this.head = i;
    if (this.head > 4096 && this.head * 2 > this.records.length) {
      this.records = this.records.slice(this.head);
      this.head = 0;
    }
    await this.writeAck(end);
    if (this.full && this.pendingBytes < this.maxBytes * 0.9) this.setFull(false);
    if (oldHead !== this.head) await this.dropSegmentsBefore(end.segment);
  }

  async close(): Promise<void> {
    while (this.writing || this.queue.length > 0) await new Promise((r) => setTimeout(r, 2));
    this.closed = true;
    for (const w of this.waiters.splice(0)) w();
    await this.fh?.close();
    this.fh = undefined;
    for (const fh of this.readers.values()) await fh.close();
    this.readers.clear();
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
      while (this.queue.length > 0) {
        const group = this.queue.splice(0);
        const reservedForGroup = group.reduce((n, g) => n + g.bytes + HEADER, 0);
        const payload = Buffer.from(group.map((g) => g.lines.join('\n')).join('\n'));
        const lines = group.reduce((n, g) => n + g.lines.length, 0);
        const rec = Buffer.allocUnsafe(HEADER + payload.length);
        rec.writeUInt32LE(payload.length, 0);
        rec.writeUInt32LE(crc32(payload), 4);
        payload.copy(rec, HEADER);
        try {
          if (!this.fh || this.segmentSize >= this.segmentBytes) await this.rotate();
          const offset = this.segmentSize;
          await this.fh!.write(rec, 0, rec.length, offset);
          if (this.fsync) await this.fh!.datasync();
          this.segmentSize += rec.length;
          this.records.push({ segment: this.segment, offset, size: rec.length, lines });
          this.pendingBytes += rec.length;
          this.pendingLines += lines;
        } catch (err) {
          // Cut a possibly half-written record so the next append starts on a boundary.
          await this.fh?.truncate(this.segmentSize).catch(() => {});
          this.reserved -= reservedForGroup;
          for (const g of group) g.reject(err);
          continue;
        }
        this.reserved -= reservedForGroup;
        for (const g of group) g.resolve();
        for (const w of this.waiters.splice(0)) w();
      }
    } finally {
      this.writing = false;
    }
  }

  private async rotate(): Promise<void> {
    if (this.fh) {
      await this.fh.close();
      this.segment++;
    }
    this.segmentSize = 0;
    this.fh = await open(join(this.dir, segName(this.segment)), 'a+');
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
    const tmp = join(this.dir, 'ack.tmp');
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
    await mkdir(this.dir, { recursive: true });
    let ack: SpoolPosition = { segment: 0, offset: 0 };
    try {
      const a = JSON.parse(await readFile(join(this.dir, 'ack'), 'utf8')) as SpoolPosition;
      if (Number.isSafeInteger(a.segment) && Number.isSafeInteger(a.offset)) ack = a;
    } catch {
      // no ack yet: nothing was acknowledged
    }
    const segments = (await readdir(this.dir))
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
      this.fh = await open(join(this.dir, segName(this.segment)), 'a+');
      this.segmentSize = (await stat(join(this.dir, segName(this.segment)))).size;
    }
    if (this.pendingLines > 0) this.log?.info({ spool: this.dir, lines: this.pendingLines, bytes: this.pendingBytes }, 'spool: resuming with unacknowledged lines');
  }
}
