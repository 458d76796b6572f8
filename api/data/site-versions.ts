import { PerSiteRefresh } from './per-site-refresh.ts';
import type { RedisClient } from '../../lib/redis.ts';
import { siteTag } from '../../lib/redis.ts';
import { redisKeys } from '../../workers/index.ts';

/**
 * What the API's stored results depend on, per site, as version stamps in Redis (issue 15:
 * tenant routes served from stored results instead of InfluxDB on every request):
 *
 * - `credentials`: bumped by every token or device-session revocation (the token and
 *   session caches hold a lookup only while it is unchanged);
 * - `charges`: the workers' charges version, replaced after every settlement write (a
 *   settled day, a revision, the statement facts);
 * - `ledger`: per account, bumped after every ledger write of that account (payments,
 *   refunds, transfers, deposits; workers/payments.ts);
 * - `months`: the number of closed months.
 *
 * Read with one round trip per site at most every `refreshMs` (single flight), so any
 * number of requests cost Redis one read a second; `refreshMs` 0 reads on every call (the
 * tests' cacheMs 0: every write is seen by the next request). A write made by this process
 * calls `invalidate()`.
 */
export interface SiteVersions {
  readonly credentials: string;
  readonly charges: string;
  readonly months: number;
  readonly ledger: ReadonlyMap<string, string>;
}

/** Key of the credentials version (API prefix, the site's hash tag). */
export function credentialsVersionKey(apiPrefix: string, site: string): string {
  return `${apiPrefix}${siteTag(site)}:credentials-version`;
}

export class VersionWatch {
  private readonly cache: PerSiteRefresh<SiteVersions>;

  constructor(
    private readonly redis: RedisClient,
    private readonly apiPrefix: string,
    private readonly workersPrefix: string,
    refreshMs: number,
  ) {
    this.cache = new PerSiteRefresh(refreshMs, (site) => this.read(site));
  }

  get(site: string): Promise<SiteVersions> {
    return this.cache.get(site);
  }

  invalidate(): void {
    this.cache.invalidate();
  }

  private async read(site: string): Promise<SiteVersions> {
    const w = redisKeys(this.workersPrefix, site);
    // One slot (the site's hash tag): one MULTI on a Redis Cluster too.
    const res = await this.redis.multi().get(credentialsVersionKey(this.apiPrefix, site)).get(w.chargesVersion).hlen(`${this.apiPrefix}${siteTag(site)}:closed`).hgetall(w.ledgerVersions).exec();
    const v = (i: number) => res?.[i]?.[1];
    return {
      credentials: String(v(0) ?? '0'),
      charges: String(v(1) ?? '0'),
      months: Number(v(2) ?? 0),
      ledger: new Map(Object.entries((v(3) as Record<string, string> | null) ?? {})),
    };
  }
}

/** Bumps the credentials version after a revocation (every API process drops its cached lookups within a second). */
export async function bumpCredentials(redis: RedisClient, apiPrefix: string, site: string): Promise<void> {
  await redis.incr(credentialsVersionKey(apiPrefix, site));
}

/**
 * Results computed once per version stamp (a statement of a month: immutable until its
 * charges, its account's ledger or the closed months change), bounded in number; the
 * computation is shared by concurrent requests. Kept as the response's bytes (UTF-8,
 * encoded once), sent as they are: an 8 KiB statement is not encoded again per request.
 */
export class StoredResults {
  private readonly entries = new Map<string, { version: string; value: Promise<Buffer> }>();
  constructor(private readonly maxEntries = 20_000) {}

  get(key: string, version: string, compute: () => Promise<string>): Promise<Buffer> {
    const hit = this.entries.get(key);
    if (hit && hit.version === version) return hit.value;
    const value = compute().then((text) => Buffer.from(text, 'utf8'));
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { version, value });
    value.catch(() => {
      if (this.entries.get(key)?.value === value) this.entries.delete(key);
    });
    return value;
  }

  clear(): void {
    this.entries.clear();
  }
}
