import { existingKeys, globLiteral, registerDerivedKeys, registerPrefixKind, registerRedisSection } from '../lib/backup/registry.ts';
import { credentialsVersionKey } from './data/site-versions.ts';
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

// Left out on purpose (registerDerivedKeys): version stamps and transient keys.
registerDerivedKeys({
  id: 'api.credentials-version',
  what: "counter bumped by every token or device-session revocation: the API processes drop their cached token and session lookups when it changes (api/data/site-versions.ts); a restored API starts with none cached",
  prefixKind: 'api',
  patterns: (ctx) => [globLiteral(credentialsVersionKey(ctx.prefixes.api, ctx.site))],
});

registerDerivedKeys({
  id: 'api.transient',
  what: 'single-use login links (30 minutes) and the failed-login counters per client address (api/auth/auth.ts)',
  prefixKind: 'api',
  patterns: (ctx) => {
    const tagged = globLiteral(apiKeys(ctx.prefixes.api).tagged(ctx.site));
    return [`${tagged}login-link:*`, `${tagged}auth-failures:*`];
  },
});
