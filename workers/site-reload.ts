import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { addDays, daysToResettle, diffSites, layoutOn, meterTimeline, occupantAt, SiteFileError, zoneOf } from '../core/index.ts';
import type { Meter, Site } from '../core/index.ts';
import { eventLine } from '../influx/event-lines.ts';
import { loadSiteFile } from '../lib/site-file.ts';
import type { WorkerContext } from './context.ts';
import { upsertSchedulers } from './queues.ts';
import { requestResettlements } from './settle-requests.ts';
import type { ScheduleOptions } from './queues.ts';
import { restartRollup } from './rollup.ts';
import { settledDays } from './settlement.ts';

/**
 * Site changes reach the running workers (billing.md section 11, rule 9). A site file is
 * read again when it changes on disk (fs.watch on its folder, so an editor's
 * write-and-rename is seen too), on SIGHUP (the CLI) and when the API's reload route
 * publishes on Redis. The new file is validated first: a bad one is refused with its
 * reasons (logged, and an `event` of kind `site_refused` for the managers) and the old
 * one stays in force. A good one replaces the site in every processor at once; then every
 * already-settled day an effective-dated change touches gets a settlement job with the
 * change as its reason (revision lines, never a silent rewrite), and the 15-minute buckets
 * of meters whose occupant or multiplier changed are recomputed over the late window.
 */

export interface ReloadResult {
  readonly file: string;
  readonly site?: string;
  readonly outcome: 'applied' | 'unchanged' | 'refused';
  /** Refused: why; applied: the changes (reason and days). */
  readonly reasons: readonly string[];
  /** Days asked to be settled again. */
  readonly resettle: readonly string[];
}

export interface SiteReloader {
  /** Reads every file (or the one of a site) again now. */
  reload(siteId?: string): Promise<ReloadResult[]>;
  close(): Promise<void>;
}

export { siteReloadChannel } from '../lib/site-reload-channel.ts';

export interface SiteReloadOptions {
  /** Site files by the site id they hold now. */
  readonly files: ReadonlyMap<string, string>;
  /** Watch the files (fs.watch). @defaultValue true */
  readonly watch?: boolean;
  /** Changes within this many ms are one reload (editors write in steps). @defaultValue 300 */
  readonly debounceMs?: number;
  /** Scheduler options to upsert again when the meter count changes (undefined: schedulers are another process's). */
  readonly schedule?: ScheduleOptions | false;
}

export function startSiteReloader(ctx: WorkerContext, opts: SiteReloadOptions): SiteReloader {
  const files = new Map(opts.files);
  const watchers: FSWatcher[] = [];
  const timers = new Map<string, NodeJS.Timeout>();
  // One reload at a time: two quick edits must not interleave their diffs.
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(f: () => Promise<T>): Promise<T> => {
    const p = chain.then(f, f);
    chain = p.catch(() => undefined);
    return p;
  };

  const reloadOne = (id: string, file: string) => serial(() => applyFile(ctx, id, file, opts.schedule));
  const reloader: SiteReloader = {
    async reload(siteId) {
      const out: ReloadResult[] = [];
      for (const [id, file] of files) if (siteId === undefined || siteId === id) out.push(await reloadOne(id, file));
      return out;
    },
    async close() {
      for (const w of watchers) w.close();
      for (const t of timers.values()) clearTimeout(t);
      await chain;
    },
  };

  if (opts.watch ?? true) {
    // Watch the folder: an editor that writes a new file and renames it over the old one
    // replaces the inode a file watch would follow.
    const byDir = new Map<string, Map<string, string>>();
    for (const [id, file] of files) {
      const abs = resolve(file);
      const names = byDir.get(dirname(abs)) ?? new Map<string, string>();
      names.set(basename(abs), id);
      byDir.set(dirname(abs), names);
    }
    for (const [dir, names] of byDir) {
      const w = watch(dir, (_event, name) => {
        const id = name ? names.get(String(name)) : undefined;
        if (id === undefined) return;
        clearTimeout(timers.get(id));
        timers.set(
          id,
          setTimeout(() => {
            timers.delete(id);
            void reloadOne(id, files.get(id)!).catch((err: Error) => ctx.log.error({ site: id, err: err.message }, 'site reload failed (will retry on the next change)'));
          }, opts.debounceMs ?? 300),
        );
      });
      w.on('error', (err) => ctx.log.warn({ dir, err: err.message }, 'site file watch error'));
      watchers.push(w);
    }
  }
  return reloader;
}

/** Validates the file, swaps the site, asks for the settled days the change touches, refreshes buckets. */
export async function applyFile(ctx: WorkerContext, id: string, file: string, schedule?: ScheduleOptions | false): Promise<ReloadResult> {
  const current = ctx.sites.get(id);
  if (!current) return { file, outcome: 'refused', reasons: [`site ${id} is not run by these workers`], resettle: [] };
  let next: Site;
  try {
    next = loadSiteFile(file);
  } catch (err) {
    const reasons = err instanceof SiteFileError ? err.issues.map((i) => `${i.line ? `line ${i.line}: ` : ''}${i.path || '(top level)'}: ${i.message}`) : [(err as Error).message];
    return refuse(ctx, current, file, reasons);
  }
  const diff = diffSites(current, next);
  if (diff.refused) return refuse(ctx, current, file, [diff.refused]);
  // Every processor reads ctx.sites per job: from here on they all use the new file.
  (ctx.sites as Map<string, Site>).set(id, next);
  if (diff.changes.length === 0) {
    ctx.log.info({ site: id, file }, 'site file reloaded: nothing that settles differently');
    return { file, site: id, outcome: 'unchanged', reasons: [], resettle: [] };
  }
  if (schedule !== false && schedule !== undefined && current.meters.length !== next.meters.length) await upsertSchedulers(ctx.queues, next, schedule);
  await refreshBuckets(ctx, current, next);
  const settled = await settledDays(ctx, next);
  const days = daysToResettle(diff, settled);
  // Recorded in Redis, then one settlement job per site drains them (issue 15).
  const byReason = new Map<string, string[]>();
  for (const [day, reason] of days) byReason.set(reason, [...(byReason.get(reason) ?? []), day]);
  for (const [reason, list] of byReason) await requestResettlements(ctx, id, list, reason);
  const reasons = diff.changes.map((c) => `${c.reason} (${c.from ?? 'start'} .. ${c.to ?? 'open'})`);
  ctx.log.warn({ site: id, file, changes: reasons, resettle: [...days.keys()] }, 'site file reloaded: settled days touched by the change are settled again');
  return { file, site: id, outcome: 'applied', reasons, resettle: [...days.keys()] };
}

async function refuse(ctx: WorkerContext, site: Site, file: string, reasons: string[]): Promise<ReloadResult> {
  ctx.log.error({ site: site.id, file, reasons }, 'site file refused; the one in force stays');
  const detail = `${file} refused, the site file in force stays: ${reasons.join('; ')}`.slice(0, 2000);
  await ctx.influx.write(eventLine(site.id, { kind: 'site_refused', detail, time: ctx.now() })).catch(() => undefined);
  return { file, site: site.id, outcome: 'refused', reasons, resettle: [] };
}

/**
 * Buckets carry the occupant (account tag), are cut at moves and meter changes, and hold
 * primary Wh: the rollup of a meter whose occupancy, multiplier or changes differ starts
 * again from the first instant that differs (from its first reading for a new base
 * multiplier), and every meter's from the first day of the late window whose period layout
 * changed, so buckets (live figures, usage, dashboards) follow the file in force. Settled
 * days touched are also re-settled, which rewrites their buckets.
 */
async function refreshBuckets(ctx: WorkerContext, old: Site, next: Site): Promise<void> {
  const zone = zoneOf(next.timezone);
  const today = zone.dateOf(ctx.now());
  let layoutFrom: number | undefined;
  for (let d = addDays(today, -ctx.tuning.lateWindowDays); d <= today && layoutFrom === undefined; d = addDays(d, 1)) {
    if (JSON.stringify(layoutOn(old, d)) !== JSON.stringify(layoutOn(next, d))) layoutFrom = zone.midnight(d);
  }
  const byFrom = new Map<number, string[]>();
  for (const m of next.meters) {
    const o = old.meters.find((x) => x.id === m.id);
    let from = o ? firstDifference(old, o, next, m) : -Infinity;
    if (layoutFrom !== undefined && !(from <= layoutFrom)) from = layoutFrom;
    if (from === Infinity) continue;
    // From the local midnight before: the day's buckets are rewritten whole.
    const at = Number.isFinite(from) ? zone.midnight(zone.dateOf(from)) : -Infinity;
    byFrom.set(at, [...(byFrom.get(at) ?? []), m.id]);
  }
  for (const [from, ids] of byFrom) {
    await restartRollup(ctx, next, ids, from);
    ctx.log.info({ site: next.id, meters: ids.length, from: Number.isFinite(from) ? zone.format(from) : 'first reading' }, 'buckets of changed meters will be rolled up again');
  }
}

/** The first instant at which a meter bills differently under the new file (Infinity: never). */
function firstDifference(oldSite: Site, o: Meter, nextSite: Site, m: Meter): number {
  if ((o.multiplier ?? 1) !== (m.multiplier ?? 1)) return -Infinity;
  let first = Infinity;
  const oc = o.changes ?? [];
  const nc = m.changes ?? [];
  for (let i = 0; i < Math.max(oc.length, nc.length); i++) {
    if (JSON.stringify(oc[i]) !== JSON.stringify(nc[i])) first = Math.min(first, oc[i]?.at ?? Infinity, nc[i]?.at ?? Infinity);
  }
  // Occupancy: the first stretch between bounds of either timeline whose occupant differs.
  const ot = meterTimeline(oldSite, o);
  const nt = meterTimeline(nextSite, m);
  const bounds = [...new Set([...ot, ...nt].map((x) => x.from))].sort((x, y) => x - y);
  for (const b of bounds) {
    if (b >= first) break;
    const at = Number.isFinite(b) ? b : (bounds.find((x) => Number.isFinite(x)) ?? 0) - 1;
    const x = occupantAt(oldSite, o, at);
    const y = occupantAt(nextSite, m, at);
    if (x.account !== y.account || x.vacant !== y.vacant) return b;
  }
  return first;
}

