import type { TokenRecord, TokenStore } from './token-store.ts';
import { hashToken } from './token-store.ts';

/**
 * Looked-up credentials kept in the process while the site's credentials version is
 * unchanged (issue 15: a token lookup was a Redis round trip on every request). Every
 * revocation bumps the version (token-store.ts, device-sessions.ts), and every API process
 * reads it at most a second old (api/data/site-versions.ts), so a revoked token or session
 * stops working everywhere within a second; in the revoking process at once. An entry is
 * also dropped after an hour, so a session still in use goes on being renewed in Redis.
 * Unknown tokens are never kept (a guess costs a lookup and counts as a failure).
 */
export class CredentialCache<T> {
  private readonly entries = new Map<string, { version: string; at: number; value: T }>();
  constructor(
    private readonly maxAgeMs = 3_600_000,
    private readonly maxEntries = 100_000,
  ) {}

  async get(key: string, version: string, fetch: () => Promise<T | undefined>): Promise<T | undefined> {
    const now = Date.now();
    const hit = this.entries.get(key);
    if (hit && hit.version === version && now - hit.at < this.maxAgeMs) return hit.value;
    const value = await fetch();
    if (value === undefined) {
      this.entries.delete(key);
      return undefined;
    }
    if (this.entries.size >= this.maxEntries) this.entries.clear();
    this.entries.set(key, { version, at: now, value });
    return value;
  }

  clear(): void {
    this.entries.clear();
  }
}

/** A TokenStore whose lookups are served from a CredentialCache (revocations go through to the store and clear it). */
export class CachedTokenStore implements TokenStore {
  private readonly cache = new CredentialCache<TokenRecord>();
  constructor(
    private readonly inner: TokenStore,
    /** The site's credentials version (VersionWatch). */
    private readonly version: (site: string) => Promise<string>,
    /** Called after a revocation here (drops this process's version, so the next lookup reads it). */
    private readonly onRevoke: () => void = () => undefined,
  ) {}

  create(...args: Parameters<TokenStore['create']>): ReturnType<TokenStore['create']> {
    return this.inner.create(...args);
  }

  async lookup(token: string, site: string): Promise<TokenRecord | undefined> {
    return this.cache.get(`${site}\u0000${hashToken(token)}`, await this.version(site), () => this.inner.lookup(token, site));
  }

  list(site: string): Promise<TokenRecord[]> {
    return this.inner.list(site);
  }

  async revoke(site: string, id: string): Promise<boolean> {
    const ok = await this.inner.revoke(site, id);
    this.cache.clear();
    this.onRevoke();
    return ok;
  }
}
