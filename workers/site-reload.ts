import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { Point } from '@influxdata/influxdb-client';
import { addDays, daysToResettle, diffSites, layoutOn, meterTimeline, SiteFileError, zoneOf } from '../core/index.ts';
import type { Meter, Site } from '../core/index.ts';
import { quoteString } from '../influx/client.ts';
import { F, M, T } from '../influx/schema.ts';
import { loadSiteFile } from '../lib/site-file.ts';
import type { WorkerContext } from './context.ts';
import { redisKeys } from './keys.ts';
import { requestResettlement, upsertSchedulers } from './queues.ts';
import type { ScheduleOptions } from './queues.ts';
import { settledDays } from './settlement.ts';

/**
 * Site changes reach the running workers (billing.md section 10, rule 9). A site file is
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

/** The Redis channel the API publishes a site id on after a manager's reload. */
export function siteReloadChannel(keyPrefix = 'submeter'): string {
  return `${keyPrefix}:site-reload`;
}

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
  for (const [day, reason] of days) await requestResettlement(ctx.queues, id, day, reason);
  const reasons = diff.changes.map((c) => `${c.reason} (${c.from ?? 'start'} .. ${c.to ?? 'open'})`);
  ctx.log.warn({ site: id, file, changes: reasons, resettle: [...days.keys()] }, 'site file reloaded: settled days touched by the change are settled again');
  return { file, site: id, outcome: 'applied', reasons, resettle: [...days.keys()] };
}

async function refuse(ctx: WorkerContext, site: Site, file: string, reasons: string[]): Promise<ReloadResult> {
  ctx.log.error({ site: site.id, file, reasons }, 'site file refused; the one in force stays');
  const detail = `${file} refused, the site file in force stays: ${reasons.join('; ')}`.slice(0, 2000);
  await ctx.influx.write(new Point(M.event).tag(T.site, site.id).tag(T.kind, 'site_refused').stringField(F.detail, detail).timestamp(ctx.now()).toLineProtocol()!).catch(() => undefined);
  return { file, site: site.id, outcome: 'refused', reasons, resettle: [] };
}

/**
 * Buckets carry the occupant (account tag) and primary Wh: a meter whose occupancy,
 * multiplier or changes differ, or every meter when the period layout of a recent day
 * changed, has its buckets of the late window deleted and its watermark moved back, so
 * the next rollup writes them again (older buckets are dashboards' history; bills come
 * from the settlement).
 */
async function refreshBuckets(ctx: WorkerContext, old: Site, next: Site): Promise<void> {
  const zone = zoneOf(next.timezone);
  const today = zone.dateOf(ctx.now());
  const first = addDays(today, -ctx.tuning.lateWindowDays);
  const from = zone.midnight(first);
  let layoutChanged = false;
  for (let d = first; d <= today; d = addDays(d, 1)) if (JSON.stringify(layoutOn(old, d)) !== JSON.stringify(layoutOn(next, d))) layoutChanged = true;
  const ids = next.meters.filter((m) => {
    const o = old.meters.find((x) => x.id === m.id);
    return layoutChanged || !o || meterKey(old, o) !== meterKey(next, m);
  }).map((m) => m.id);
  if (ids.length === 0) return;
  const keys = redisKeys(ctx.keyPrefix, next.id);
  const stored = await ctx.redis.hmget(keys.watermarks, ...ids);
  for (const id of ids) {
    await ctx.influx.queryRaw(`DELETE FROM ${M.touBucket} WHERE ${T.site} = ${quoteString(next.id)} AND ${T.meter} = ${quoteString(id)} AND time >= ${from}ms`);
  }
  const back: Record<string, string> = {};
  ids.forEach((id, i) => {
    if (stored[i] !== null && Number(stored[i]) > from) back[id] = String(from);
  });
  if (Object.keys(back).length) await ctx.redis.hset(keys.watermarks, back);
  ctx.log.info({ site: next.id, meters: ids.length, from: first }, 'buckets of changed meters will be rolled up again');
}

function meterKey(site: Site, m: Meter): string {
  return JSON.stringify([m.multiplier ?? 1, m.changes ?? [], meterTimeline(site, m).map((s) => [s.from, s.to, s.account])]);
}
