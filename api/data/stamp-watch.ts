import { PerSiteRefresh } from './per-site-refresh.ts';
import { metersOf } from '../../core/index.ts';
import type { Site } from '../../core/index.ts';
import type { RedisClient } from '../../lib/redis.ts';
import { apiStampKeys, SITE_FIELD } from '../../workers/index.ts';

/**
 * The workers' stamps of what usage, alerts and advice are computed from
 * (workers/api-stamps.ts): per meter, its last bucket write (and the site's, `@site`); per
 * account, its last `event` point. A stored result of those routes is kept while the stamps
 * it was computed under are unchanged (issue 15).
 */
export interface Stamps {
  /** meter (or `@site`) -> token of its last bucket write; absent: never stamped. */
  readonly buckets: ReadonlyMap<string, string>;
  /** account -> token of its last event write. */
  readonly events: ReadonlyMap<string, string>;
}

export { SITE_FIELD };

/**
 * The meters whose buckets can carry the account's tag: every tenant meter whose timeline
 * gives the account some span (its units, and for the landlord account the vacant ones;
 * workers/bucket-account.ts tags a bucket with the occupant at its start). Kept per site id
 * as the union over every site file this process has served: after a reload that takes a
 * meter from the account, the buckets it still carries under the old file are rewritten
 * (restartRollup, settlement) and that write must still move the account's stored usage.
 */
const watched = new Map<string, { sites: Site[]; byAccount: Map<string, Set<string>>; lists: WeakMap<Site, Map<string, readonly string[]>> }>();
/** Site files remembered per site id (reloads are rare; the oldest are forgotten past this). */
const SITES_KEPT = 8;

export function watchedMeters(site: Site, account: string): readonly string[] {
  let w = watched.get(site.id);
  if (!w) watched.set(site.id, (w = { sites: [], byAccount: new Map(), lists: new WeakMap() }));
  if (!w.sites.includes(site)) {
    // A new site file: every account's set grows by its meters in it (lists built again).
    w.sites.push(site);
    if (w.sites.length > SITES_KEPT) w.sites.shift();
    for (const [a, set] of w.byAccount) for (const m of metersOf(site, a)) set.add(m.id);
  }
  let lists = w.lists.get(site);
  if (!lists) w.lists.set(site, (lists = new Map()));
  let list = lists.get(account);
  if (!list) {
    // Only the site's accounts are kept (a path names any string).
    if (!site.accounts.some((a) => a.id === account)) return [];
    let set = w.byAccount.get(account);
    if (!set) w.byAccount.set(account, (set = new Set(w.sites.flatMap((s) => metersOf(s, account).map((m) => m.id)))));
    list = [...set].sort();
    lists.set(account, list);
  }
  return list;
}

/** The stamps' part of a stored result's version: the fields' tokens in order. */
export function stampsVersion(stamps: ReadonlyMap<string, string>, fields: readonly string[]): string {
  let s = '';
  for (const f of fields) s += `${stamps.get(f) ?? ''},`;
  return s;
}

/**
 * The site's stamps read with one round trip (two HGETALLs in the site's slot) at most
 * every `refreshMs` per site (single flight); 0: on every call. The cache-off tenant lane
 * reads the fields it needs with its one round trip instead (api/data/tenant-read.ts).
 */
export class StampWatch {
  private readonly cache: PerSiteRefresh<Stamps>;

  constructor(
    private readonly redis: RedisClient,
    private readonly workersPrefix: string,
    refreshMs: number,
  ) {
    this.cache = new PerSiteRefresh(refreshMs, (site) => this.read(site));
  }

  get(site: string): Promise<Stamps> {
    return this.cache.get(site);
  }

  invalidate(): void {
    this.cache.invalidate();
  }

  private async read(site: string): Promise<Stamps> {
    const k = apiStampKeys(this.workersPrefix, site);
    const res = await this.redis.multi().hgetall(k.bucketStamps).hgetall(k.eventStamps).exec();
    const v = (i: number) => (res?.[i]?.[1] as Record<string, string> | null) ?? {};
    return { buckets: new Map(Object.entries(v(0))), events: new Map(Object.entries(v(1))) };
  }
}
