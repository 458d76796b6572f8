import { existingKeys, registerPrefixKind, registerRedisSection } from '../lib/backup/registry.ts';
import { API_DEFAULT_PREFIX, apiKeys, sessionKeys } from './redis-keys.ts';

/**
 * The API's durable Redis state, for `submeter backup` (lib/backup/registry.ts): API
 * tokens (only their sha256 and what they grant), the audit log, closed months and the
 * tenants' device sessions.
 */
registerPrefixKind('api', API_DEFAULT_PREFIX);

registerRedisSection({
  id: 'api.tokens',
  what: 'API tokens: per site an index token id -> sha256, and per token its record (role, account, label); never the secrets',
  prefixKind: 'api',
  async keys(redis, ctx) {
    const k = apiKeys(ctx.prefixes.api);
    const index = k.tokens(ctx.site);
    const hashes = Object.values(await redis.hgetall(index));
    return existingKeys(redis, [index, ...hashes.map((h) => k.token(ctx.site, h))]);
  },
});

registerRedisSection({
  id: 'api.audit',
  what: 'audit log of manager actions and token changes (a Redis stream per site)',
  prefixKind: 'api',
  keys: (redis, ctx) => existingKeys(redis, [apiKeys(ctx.prefixes.api).audit(ctx.site)]),
});

registerRedisSection({
  id: 'api.closed-months',
  what: 'closed months: the statements as they were at closing, write-once',
  prefixKind: 'api',
  keys: (redis, ctx) => existingKeys(redis, [apiKeys(ctx.prefixes.api).closed(ctx.site)]),
});

registerRedisSection({
  id: 'api.sessions',
  what: "tenants' device sessions (phone logins): per site an index session id -> sha256, and per session its record with its expiry; never the secrets. Login links (single use, 30 minutes) are left out",
  prefixKind: 'api',
  async keys(redis, ctx) {
    const k = sessionKeys(apiKeys(ctx.prefixes.api).tagged(ctx.site));
    const hashes = Object.values(await redis.hgetall(k.index));
    return existingKeys(redis, [k.index, ...hashes.map((h) => k.session(h))]);
  },
});
