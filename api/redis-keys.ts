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
  };
}
