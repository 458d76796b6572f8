import { closeSync, openSync, readSync } from 'node:fs';
import { parseSiteYaml } from '../core/index.ts';
import type { Site } from '../core/index.ts';
import { firstInvalidUtf8Line } from './utf8-lines.ts';

/**
 * The largest site file read. A site of ten thousand meters is about 2 MiB of YAML; the
 * bound makes `--site /dev/zero` (or a log file named by mistake) an error at once instead
 * of a process reading forever.
 */
export const MAX_SITE_FILE_BYTES = 16 << 20;

/**
 * A file that cannot be used as input: exit 2 on the command line; `reason` is the message
 * without the path (the API answers with it: no server path in an answer).
 */
export class InputFileError extends Error {
  override readonly name = 'InputFileError';
  readonly exitCode = 2;
  constructor(
    message: string,
    readonly reason: string,
  ) {
    super(message);
  }
}

function fail(what: string, path: string, reason: string): never {
  throw new InputFileError(`${what} ${path} ${reason}`, `${what} ${reason}`);
}

/** Why a file-system error happened, in words (never a bare ENOENT). */
function reasonOf(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  const why: Record<string, string> = {
    ENOENT: 'does not exist',
    EACCES: 'cannot be read (permission denied)',
    EPERM: 'cannot be read (permission denied)',
    EISDIR: 'is a directory, not a file',
    ENOTDIR: 'is not in a directory (a part of the path is a file)',
    ELOOP: 'is a symbolic link loop',
    ENAMETOOLONG: 'has a name that is too long',
  };
  return why[code ?? ''] ?? `cannot be read (${code ?? String(err)})`;
}

/** A file-system error as a sentence naming the file. */
export function fileProblem(what: string, path: string, err: unknown): string {
  return `${what} ${path} ${reasonOf(err)}`;
}

/** At most `limit` + 1 bytes of a file, read in chunks (works on devices and pipes that never end). */
export function readBounded(path: string, limit: number, what: string): Buffer {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    fail(what, path, reasonOf(err));
  }
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(Math.min(1 << 20, limit + 1 - total));
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (err) {
        fail(what, path, reasonOf(err));
      }
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
      total += n;
      if (total > limit) fail(what, path, `is larger than ${limit >> 20} MiB; is it the right file?`);
    }
    return Buffer.concat(chunks, total);
  } finally {
    closeSync(fd);
  }
}

/** Reads and validates a site file; throws SiteFileError (with paths and lines) or a clear I/O error. */
export function loadSiteFile(path: string): Site {
  const bytes = readBounded(path, MAX_SITE_FILE_BYTES, 'site file');
  const bad = firstInvalidUtf8Line(bytes);
  if (bad !== undefined) throw new InputFileError(`site file ${path}:${bad}: not valid UTF-8 text (save the file as UTF-8)`, `site file line ${bad} is not valid UTF-8 text`);
  return parseSiteYaml(bytes.toString('utf8'), path);
}
