import type { RedisClient } from '../../lib/redis.ts';
import { apiStampKeys, readLiveEntry, redisKeys } from '../../workers/index.ts';
import type { LiveSnapshot } from '../../workers/index.ts';
import type { TokenRecord } from '../auth/token-store.ts';
import { apiKeys } from '../redis-keys.ts';
import { credentialsVersionKey } from './site-versions.ts';
import type { SiteVersions } from './site-versions.ts';
import type { Stamps } from './stamp-watch.ts';

/**
 * Everything a tenant's GET needs from Redis, read in ONE round trip (issue 15: with the
 * cache off, a request cost three to four: the auth-failure counter, the credentials
 * version and the token, the version stamps with the whole site's ledger hash, then the
 * live entry). One Lua script reads, in the site's slot (every key carries the site's hash
 * tag, so it runs on one node of a Redis Cluster too):
 *
 * - the caller address's auth-failure counter and its PTTL (api/auth/auth.ts);
 * - the token's record, by the sha256 of the secret (api/auth/token-store.ts);
 * - the version stamps the stored results are kept by (api/data/site-versions.ts): the
 *   credentials and charges versions, the number of closed months, and the ledger version
 *   of the one account the path names (HGET, not the site's whole hash);
 * - for the live route, the balance job's last entry of that account and the site's last
 *   run (workers/live-snapshot.ts; parsed by the workers' own reader);
 * - for usage and advice, the bucket stamps of the account's meters (and the site's); for
 *   alerts, the account's event stamp (workers/api-stamps.ts, api/data/stamp-watch.ts).
 *
 * Read together, the stamps are as fresh as the request: a payment recorded before the
 * request is seen by it, which is what keeps a stored statement from being served stale.
 */
const SCRIPT = `
local n = redis.call('GET', KEYS[1])
local ttl = -2
if n then ttl = redis.call('PTTL', KEYS[1]) end
local ledger = false
if ARGV[1] ~= '' then ledger = redis.call('HGET', KEYS[6], ARGV[1]) end
local checked, entry = false, false
if ARGV[2] == '1' then
  local l = redis.call('HMGET', KEYS[7], ARGV[3], ARGV[1])
  checked, entry = l[1], l[2]
end
local ev, bs = false, false
if ARGV[4] == '1' and ARGV[1] ~= '' then ev = redis.call('HGET', KEYS[9], ARGV[1]) end
if #ARGV > 4 then bs = redis.call('HMGET', KEYS[8], unpack(ARGV, 5)) end
return {n, ttl, redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3]), redis.call('GET', KEYS[4]), redis.call('HLEN', KEYS[5]), ledger, checked, entry, ev, bs}
`;
/** The script as a command of the client (ioredis loads it with EVAL once per connection, then EVALSHA: no NOSCRIPT round trips). */
const COMMAND = 'submeterTenantRead';
type WithScript = { [COMMAND](...keysAndArgs: string[]): Promise<unknown[]> };

/** The live hash's field holding the site's last balance run (workers/live-snapshot.ts CHECKED_FIELD; tenant-read.test.ts holds the two equal). */
const CHECKED_FIELD = '@checked';

export interface TenantReadInput {
  readonly site: string;
  /** The auth-failure counter's key of the caller's address (AuthFailureLimiter.key). */
  readonly failuresKey: string;
  /** sha256 of the bearer token (hashToken). */
  readonly tokenHash: string;
  /** The account the path names, if any: its ledger version (and live entry). */
  readonly account?: string;
  /** Read the account's live entry too (the live route). */
  readonly live?: boolean;
  /** Read the account's event stamp (alerts). */
  readonly events?: boolean;
  /** Bucket stamp fields to read (usage, advice: the account's meters, `@site`). */
  readonly buckets?: readonly string[];
}

export interface TenantRead {
  /** The address's failed authentications in the window, and the window's PTTL. */
  readonly failures: { readonly count: string | null; readonly ttlMs: number };
  /** The token's record; undefined for an unknown or revoked token. */
  readonly token: TokenRecord | undefined;
  /** The site's version stamps, the ledger of `account` only. */
  readonly versions: SiteVersions;
  /** The account's live entry and the site's last balance run, when asked. */
  readonly live?: LiveSnapshot;
  /** The stamps asked for (only those fields). */
  readonly stamps?: Stamps;
}

export class TenantReader {
  constructor(
    private readonly redis: RedisClient,
    private readonly apiPrefix: string,
    private readonly workersPrefix: string,
  ) {
    if (typeof (redis as unknown as Partial<WithScript>)[COMMAND] !== 'function') redis.defineCommand(COMMAND, { numberOfKeys: 9, lua: SCRIPT });
  }

  /** Per site: the token key's prefix and the script's keys 3-9 (built once: the workers' key set is ~30 strings). */
  private readonly siteKeys = new Map<string, { tokenPrefix: string; rest: readonly string[] }>();

  private keysOf(site: string) {
    let k = this.siteKeys.get(site);
    if (!k) {
      const w = redisKeys(this.workersPrefix, site);
      const st = apiStampKeys(this.workersPrefix, site);
      const api = apiKeys(this.apiPrefix);
      const tokenPrefix = api.token(site, '');
      this.siteKeys.set(site, (k = { tokenPrefix, rest: [credentialsVersionKey(this.apiPrefix, site), w.chargesVersion, api.closed(site), w.ledgerVersions, w.live, st.bucketStamps, st.eventStamps] }));
    }
    return k;
  }

  async read(q: TenantReadInput): Promise<TenantRead> {
    const k = this.keysOf(q.site);
    const r = await (this.redis as unknown as WithScript)[COMMAND](q.failuresKey, k.tokenPrefix + q.tokenHash, ...k.rest, q.account ?? '', q.live && q.account ? '1' : '0', CHECKED_FIELD, q.events ? '1' : '0', ...(q.buckets ?? []));
    const [count, ttl, token, credentials, charges, months, ledger, checked, entry, ev, bs] = r as [string | null, number, string | null, string | null, string | null, number, string | null, string | null, string | null, string | null, (string | null)[] | null];
    const live = q.live && q.account ? await readLiveEntry(answered(checked, entry), this.workersPrefix, q.site, q.account) : undefined;
    return {
      failures: { count, ttlMs: Number(ttl) },
      token: token ? (JSON.parse(token) as TokenRecord) : undefined,
      versions: { credentials: credentials ?? '0', charges: charges ?? '0', months: Number(months ?? 0), ledger: new Map(q.account && ledger !== null ? [[q.account, ledger]] : []) },
      ...(live ? { live } : {}),
      ...(q.events || q.buckets?.length ? { stamps: stampsOf(q, ev, bs) } : {}),
    };
  }
}

function stampsOf(q: TenantReadInput, ev: string | null, bs: (string | null)[] | null): Stamps {
  const buckets = new Map<string, string>();
  (q.buckets ?? []).forEach((f, i) => {
    const v = bs?.[i];
    if (v !== null && v !== undefined) buckets.set(f, v);
  });
  return { buckets, events: new Map(q.account && ev !== null && ev !== undefined ? [[q.account, ev]] : []) };
}

/**
 * The workers' live-entry reader parses and checks what the script already read: it is
 * handed a client whose one HMGET answers with those two fields (the entry's shape stays
 * the workers' to define, in one place).
 */
function answered(checked: string | null, entry: string | null): RedisClient {
  return { hmget: async () => [checked, entry] } as unknown as RedisClient;
}

declare module 'express-serve-static-core' {
  interface Locals {
    /** What the request's one round trip read (the fast lane with the cache off, api/tenant-lane.ts). */
    tenantRead?: TenantRead;
  }
}
