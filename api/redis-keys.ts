/**
 * Redis key names of the API's durable state, in one place (the stores and the backup
 * registry both use them). `prefix` is the API's key prefix (ApiDeps.keyPrefix).
 */
export const API_DEFAULT_PREFIX = 'submeter:api:';

export function apiKeys(prefix = API_DEFAULT_PREFIX) {
  return {
    /** string: the TokenRecord JSON of a token, by the sha256 of its secret. */
    token: (hash: string) => `${prefix}token:${hash}`,
    /** hash: token id -> sha256, the tokens of a site. */
    tokens: (site: string) => `${prefix}tokens:${site}`,
    /** stream: the site's audit log (manager actions, token changes). */
    audit: (site: string) => `${prefix}audit:${site}`,
    /** hash: month -> closed-month statements JSON, write-once. */
    closed: (site: string) => `${prefix}closed:${site}`,
    /**
     * Prefix of the site's hash-tagged keys (Redis Cluster: one slot per site): login links,
     * device sessions and failed-login counters (api/auth/device-sessions.ts, auth.ts).
     */
    tagged: (site: string) => `${prefix}{${site}}:`,
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
