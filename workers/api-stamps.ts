import { randomBytes } from 'node:crypto';
import { globLiteral, registerDerivedKeys } from '../lib/backup/registry.ts';
import type { RedisClient } from '../lib/redis.ts';
import { redisKeys } from './keys.ts';

/**
 * Version stamps of what the API's tenant usage, alerts and advice are computed from
 * (issue 15: those routes served as stored results, computed once per change, instead of
 * querying InfluxDB on every request). Each writer stamps AFTER its InfluxDB write, so a
 * result computed after reading a stamp includes every write stamped before it; the API
 * keeps a result only while the stamps it read with the request are unchanged.
 *
 * - `bucketStamps` (hash meter -> token, plus `@site`): every writer of `tou_bucket` (the
 *   rollup, the settlement's rewrite, a rollup restart's delete) goes through
 *   logBucketWrites, which stamps the meters it names: one HSET of the run's meters (a
 *   rollup of 1,000 meters: one command, ~0.1 ms of Redis), never per account. The API maps
 *   an account to the meters whose buckets can carry it (the core's tenancy) and reads only
 *   their fields; `@site` moves with any meter (advice's days with data are site-wide).
 * - `eventStamps` (hash account -> token): every writer of an `event` point tagged with an
 *   account (low balance, final statement, payment conflict). Events without an account tag
 *   are in no tenant's or account's alert list (the API filters on the tag).
 *
 * A token is unique per write (time + random), so two processes never write the same one.
 */
export function apiStampKeys(prefix: string | undefined, site: string) {
  const base = redisKeys(prefix, site).bucketLog.replace(/:bucket-log$/, '');
  return {
    /** hash meter -> token of its last bucket write; `@site` -> token of the site's last one */
    bucketStamps: `${base}:bucket-stamps`,
    /** hash account -> token of the last `event` point written with that account tag */
    eventStamps: `${base}:event-stamps`,
  };
}

/** The bucket stamps' field that moves with every meter's (a site-wide figure's stamp). */
export const SITE_FIELD = '@site';

function token(): string {
  return `${Date.now().toString(36)}.${randomBytes(6).toString('base64url')}`;
}

/** After a write of the meters' buckets: their stamps and the site's move. */
export async function stampBucketWrites(redis: RedisClient, prefix: string | undefined, site: string, meters: readonly string[]): Promise<void> {
  if (meters.length === 0) return;
  const t = token();
  const fields: string[] = [SITE_FIELD, t];
  for (const m of meters) fields.push(m, t);
  await redis.hset(apiStampKeys(prefix, site).bucketStamps, ...fields);
}

/** After a write of `event` points: the stamps of the accounts they are tagged with. */
export async function stampEventWrites(redis: RedisClient, prefix: string | undefined, site: string, accounts: Iterable<string | undefined>): Promise<void> {
  const ids = [...new Set([...accounts].filter((a): a is string => !!a))];
  if (ids.length === 0) return;
  const t = token();
  await redis.hset(apiStampKeys(prefix, site).eventStamps, ...ids.flatMap((a) => [a, t]));
}

// Not backed up (lib/backup/registry.ts): stamps, not state. A restore without them only
// makes API processes started after it compute their stored results again; one running
// across the restore may hold a result stored before a stamp the restore lost, so the API
// is restarted after a restore.
registerDerivedKeys({
  id: 'workers.api-stamps',
  what: "per meter and per account a token written after each bucket or event write: version stamps of the API's stored usage, alerts and advice (workers/api-stamps.ts); restart the API processes after a restore",
  prefixKind: 'workers',
  patterns: (ctx) => {
    const k = apiStampKeys(ctx.prefixes.workers, ctx.site);
    return [globLiteral(k.bucketStamps), globLiteral(k.eventStamps)];
  },
});
