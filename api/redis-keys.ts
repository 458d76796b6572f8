import { siteTag } from '../lib/redis.ts';

/**
 * Redis key names of the API's durable state, in one place (the stores and the backup
 * registry both use them). `prefix` is the API's key prefix (ApiDeps.keyPrefix). Every key
 * of a site carries its hash tag (lib/redis.ts siteTag): on a Redis Cluster a site's keys
 * share one slot.
 */
export const API_DEFAULT_PREFIX = 'submeter:api:';

export function apiKeys(prefix = API_DEFAULT_PREFIX) {
  /** Prefix of a site's keys, e.g. `submeter:api:{plaza}:`. */
  const tagged = (site: string) => `${prefix}${siteTag(site)}:`;
  return {
    /** string: the TokenRecord JSON of a token of the site, by the sha256 of its secret. */
    token: (site: string, hash: string) => `${tagged(site)}token:${hash}`,
    /** hash: token id -> sha256, the tokens of a site. */
    tokens: (site: string) => `${tagged(site)}tokens`,
    /** stream: the site's audit log (manager actions, token changes). */
    audit: (site: string) => `${tagged(site)}audit`,
    /** hash: month -> closed-month statements JSON, write-once. */
    closed: (site: string) => `${tagged(site)}closed`,
    /**
     * Prefix of the site's other keys: login links, device sessions (sessionKeys) and
     * failed-login counters (api/auth/auth.ts).
     */
    tagged,
  };
}

/** Keys of the phone logins under a site's tagged prefix (apiKeys().tagged). */
export function sessionKeys(tagged: string) {
  return {
    /** string (expires): a single-use login link by the sha256 of its code. */
    link: (hash: string) => `${tagged}login-link:${hash}`,
    /** string (expires, renewed while used): a device session by the sha256 of its secret. */
    session: (hash: string) => `${tagged}device:${hash}`,
    /** hash: session id -> sha256, the site's device sessions. */
    index: `${tagged}devices`,
  };
}
