import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * When each meter was last read, kept beside the spool (`last-seen.json`) so a collector
 * that was down knows how long each meter went unread and can fill the gap from the
 * meter's own memory (DL/T 645 daily freezes). Written by rename (never torn), at most
 * every state interval and at stop; after a SIGKILL it is at most that old, and reading a
 * few seconds of freezes again only rewrites the same points.
 */
export class LastSeenStore {
  private readonly path: string;
  private readonly times: Map<string, number>;
  private dirty = false;

  constructor(dir: string) {
    this.path = join(dir, 'last-seen.json');
    this.times = new Map(Object.entries(LastSeenStore.load(this.path)));
  }

  private static load(path: string): Record<string, number> {
    try {
      const raw = JSON.parse(readFileSync(path, 'utf8')) as unknown;
      if (raw && typeof raw === 'object') return Object.fromEntries(Object.entries(raw).filter((e): e is [string, number] => Number.isSafeInteger(e[1])));
    } catch {
      // Missing (first start) or unreadable: no gaps known, nothing to fill.
    }
    return {};
  }

  get(meter: string): number | undefined {
    return this.times.get(meter);
  }

  note(meter: string, time: number): void {
    if ((this.times.get(meter) ?? -Infinity) >= time) return;
    this.times.set(meter, time);
    this.dirty = true;
  }

  flush(): void {
    if (!this.dirty) return;
    const tmp = `${this.path}.tmp`;
    writeFileSync(tmp, JSON.stringify(Object.fromEntries(this.times)));
    renameSync(tmp, this.path);
    this.dirty = false;
  }
}
