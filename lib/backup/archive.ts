import { createReadStream, createWriteStream, renameSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { createGunzip, createGzip } from 'node:zlib';

/**
 * The backup archive: one gzip file of JSON lines, read and written as a stream (a year of
 * readings never sits in memory). The first record is the manifest, the last `end` with
 * the counts, so a truncated copy is recognised before anything is restored. `zcat` shows
 * it; nothing but Node's zlib is needed to read it.
 */

export const ARCHIVE_FORMAT = 'submeter-backup';
export const ARCHIVE_VERSION = 1;

export interface Manifest {
  readonly type: 'manifest';
  readonly format: typeof ARCHIVE_FORMAT;
  readonly version: number;
  readonly site: string;
  /** RFC 3339 UTC. */
  readonly created: string;
  /** What the sections hold, for a person reading the archive. */
  readonly redis: readonly { id: string; what: string }[];
  readonly influx: readonly { measurement: string; what: string }[];
}

export type RedisValue =
  | { readonly t: 'string'; readonly v: string }
  | { readonly t: 'hash'; readonly v: Readonly<Record<string, string>> }
  | { readonly t: 'stream'; readonly v: readonly (readonly [string, readonly string[]])[] }
  | { readonly t: 'set'; readonly v: readonly string[] }
  | { readonly t: 'zset'; readonly v: readonly (readonly [string, string])[] }
  | { readonly t: 'list'; readonly v: readonly string[] };

export type ArchiveRecord =
  | Manifest
  | { readonly type: 'site-file'; readonly name: string; readonly text: string }
  /** `key` is relative to the section's prefix kind; `pttl` ms left, when the key expires. */
  | { readonly type: 'redis'; readonly section: string; readonly prefixKind: string; readonly key: string; readonly value: RedisValue; readonly pttl?: number }
  | { readonly type: 'influx'; readonly measurement: string; readonly lines: readonly string[] }
  | { readonly type: 'end'; readonly counts: Readonly<Record<string, number>> };

export class ArchiveWriter {
  private readonly gzip = createGzip();
  private readonly tmp: string;
  private readonly done: Promise<void>;

  /** Writes to `path.tmp` and renames on close: a backup that fails half-way leaves no file that looks whole. */
  constructor(readonly path: string) {
    this.tmp = `${path}.tmp`;
    const out = createWriteStream(this.tmp);
    this.gzip.pipe(out);
    this.done = new Promise((resolve, reject) => {
      out.once('finish', () => resolve());
      out.once('error', reject);
      this.gzip.once('error', reject);
    });
  }

  async write(record: ArchiveRecord): Promise<void> {
    if (!this.gzip.write(`${JSON.stringify(record)}\n`)) await new Promise<void>((r) => this.gzip.once('drain', () => r()));
  }

  async close(): Promise<void> {
    this.gzip.end();
    await this.done;
    renameSync(this.tmp, this.path);
  }
}

/** Reads the records of an archive in order; throws on a line that is not a record. */
export async function* readArchive(path: string): AsyncGenerator<ArchiveRecord> {
  const lines = createInterface({ input: createReadStream(path).pipe(createGunzip()), crlfDelay: Infinity });
  let n = 0;
  for await (const line of lines) {
    n++;
    if (line === '') continue;
    let rec: ArchiveRecord;
    try {
      rec = JSON.parse(line) as ArchiveRecord;
    } catch {
      throw new Error(`${path}:${n}: not an archive record (damaged file?)`);
    }
    if (n === 1 && (rec.type !== 'manifest' || rec.format !== ARCHIVE_FORMAT)) throw new Error(`${path}: not a submeter backup (no manifest)`);
    yield rec;
  }
}
