import { readFileSync } from 'node:fs';
import { open, readFile, realpath, rm } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * One process per spool directory. Two collectors on one spool (the service and a
 * manual `submeter collect`, or a supervisor starting the new process while the old one
 * still drains) would append to the same segment with different ideas of its offsets,
 * forward each other's lines under their own ack positions, and an ack written by one
 * could cover lines the other has not delivered: a loss after the next crash. So the
 * second one refuses to start, naming the process that holds the directory.
 *
 * The lock is the file `<spool>/lock`, created exclusively (O_EXCL) and holding the
 * owner's pid and, where Linux /proc says it, the process start time (proc(5),
 * /proc/<pid>/stat field 22), so a pid reused by another process after a crash or a
 * reboot is not taken for the owner. A lock whose owner is gone (SIGKILL, power cut) is
 * stale and taken over at once: a killed collector restarts without waiting out a
 * timeout (collector/restart-gap.test.ts, collector.test.ts kill and restart it).
 * Not a lock library: proper-lockfile's stale detection is an mtime refreshed on a
 * timer, so a restart after SIGKILL would be refused until it expired, and flock(2)
 * needs a native addon.
 *
 * Within one process the lock is shared (counted): the spool tests open a second Spool
 * on a directory to stand for a restart after a crash; the collector opens one.
 */

export class SpoolLockedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SpoolLockedError';
  }
}

export interface SpoolLock {
  release(): Promise<void>;
}

interface Held {
  count: number;
  readonly path: string;
  readonly identity: string;
}

/** Directories this process holds (by real path), with how many Spools share each. */
const held = new Map<string, Held>();

/** This process's start time in clock ticks since boot, or undefined off Linux. */
function startTime(pid: number | 'self'): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) is in parentheses and may hold spaces: count fields after the last ')'.
    // After it come field 3 (state) onwards, so field 22 is index 19.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

const ownIdentity = () => {
  const start = startTime('self');
  return start === undefined ? `${process.pid}` : `${process.pid} ${start}`;
};

/** Whether the process named by a lock file's text still runs (the same process, not a reused pid). */
function ownerAlive(text: string): { alive: boolean; pid: number } {
  const [pidText, start] = text.trim().split(' ');
  const pid = Number(pidText);
  if (!Number.isSafeInteger(pid) || pid <= 0) return { alive: false, pid };
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists, under another user.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return { alive: false, pid };
  }
  if (start !== undefined) {
    const now = startTime(pid);
    if (now !== undefined && now !== start) return { alive: false, pid };
  }
  return { alive: true, pid };
}

/**
 * Takes the spool directory `dir` (which must exist) for this process, or throws
 * SpoolLockedError naming the live process that holds it.
 */
export async function lockSpoolDir(dir: string): Promise<SpoolLock> {
  const key = await realpath(dir);
  const path = join(key, 'lock');
  let h = held.get(key);
  if (h) {
    h.count++;
    return releaser(key, h);
  }
  const identity = ownIdentity();
  for (let attempt = 0; ; attempt++) {
    try {
      const fh = await open(path, 'wx');
      try {
        await fh.writeFile(identity);
      } finally {
        await fh.close();
      }
      h = { count: 1, path, identity };
      held.set(key, h);
      return releaser(key, h);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 3) throw err;
    }
    const text = await readFile(path, 'utf8').catch(() => '');
    const owner = ownerAlive(text);
    // Our own pid in the file, while this process holds nothing here: a previous
    // incarnation (a container's collector is pid 1 after every restart).
    if (owner.alive && owner.pid !== process.pid) {
      throw new SpoolLockedError(
        `spool directory ${dir} is in use by process ${owner.pid} (lock file ${path}): two collectors must not share a spool; stop the other one, or give this one its own --spool directory`,
      );
    }
    // Stale (its owner is gone): remove it and create ours.
    await rm(path, { force: true });
  }
}

function releaser(key: string, h: Held): SpoolLock {
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      if (--h.count > 0) return;
      held.delete(key);
      // Only our own lock: never one a later process took over.
      const text = await readFile(h.path, 'utf8').catch(() => '');
      if (text === h.identity) await rm(h.path, { force: true });
    },
  };
}
