import { createHash, randomBytes } from 'node:crypto';
import type { RedisClient } from '../../lib/redis.ts';
import { credentialsVersionKey } from '../data/site-versions.ts';
import { apiKeys } from '../redis-keys.ts';

export const ROLES = ['manager', 'tenant', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

/** What a token grants. Never holds the token itself: only its id (public) is shown or logged. */
export interface TokenRecord {
  /** Public handle for listing and revoking (random, unrelated to the secret). */
  readonly id: string;
  readonly site: string;
  readonly role: Role;
  /** Tenant tokens only: the one account they may read. */
  readonly account?: string;
  readonly label?: string;
  /** RFC 3339 UTC. */
  readonly created: string;
  /** How the caller authenticated: a bearer token (default) or a tenant's device session cookie. */
  readonly via?: 'token' | 'session';
}

export interface NewToken {
  readonly site: string;
  readonly role: Role;
  readonly account?: string;
  readonly label?: string;
}

/**
 * Bearer tokens, stored hashed. A small interface so the store can move (file, SQL)
 * without touching auth; Redis is the one shipped because every deployment already runs
 * it for the workers' queues (AOF-persisted by scripts/services.sh) and several API
 * processes then see the same tokens and revocations at once.
 */
export interface TokenStore {
  /** Creates a token; the secret is returned once and never stored. */
  create(input: NewToken): Promise<{ token: string; record: TokenRecord }>;
  /** The token's record if it is a live token of `site` (tokens are per site). */
  lookup(token: string, site: string): Promise<TokenRecord | undefined>;
  list(site: string): Promise<TokenRecord[]>;
  /** False when no such token on that site. */
  revoke(site: string, id: string): Promise<boolean>;
}

/** 32 random bytes, base64url, with a prefix that makes leaked tokens easy to grep for. */
export function generateToken(): string {
  return `smt_${randomBytes(32).toString('base64url')}`;
}

/**
 * sha256 of the token. A fast hash is enough: the secret has 256 bits of entropy, so
 * there is nothing to brute-force, and the lookup is by hash, so no secret is compared
 * byte by byte (no timing side channel).
 */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function validateNewToken(input: NewToken): string | undefined {
  if (!(ROLES as readonly string[]).includes(input.role)) return `role must be one of ${ROLES.join(', ')}`;
  if (input.role === 'tenant' && !input.account) return 'a tenant token needs an account';
  if (input.role !== 'tenant' && input.account) return `a ${input.role} token is site-wide; drop the account`;
  return undefined;
}

/**
 * Keys: `<prefix>{<site>}:token:<sha256>` -> record JSON, and `<prefix>{<site>}:tokens`,
 * a hash id -> sha256 for listing and revoking. Both carry the site's hash tag, so the
 * MULTI that writes them together touches one slot of a Redis Cluster; that is also why
 * a lookup names the site (the API serves one site per process).
 */
export class RedisTokenStore implements TokenStore {
  constructor(
    private readonly redis: RedisClient,
    /** Key prefix; tests give each run its own. @defaultValue 'submeter:api:' */
    private readonly prefix = 'submeter:api:',
  ) {}

  private tokenKey(site: string, hash: string): string {
    return apiKeys(this.prefix).token(site, hash);
  }
  private siteKey(site: string): string {
    return apiKeys(this.prefix).tokens(site);
  }

  async create(input: NewToken): Promise<{ token: string; record: TokenRecord }> {
    const problem = validateNewToken(input);
    if (problem) throw new Error(problem);
    const token = generateToken();
    const hash = hashToken(token);
    const record: TokenRecord = {
      id: randomBytes(8).toString('hex'),
      site: input.site,
      role: input.role,
      ...(input.account ? { account: input.account } : {}),
      ...(input.label ? { label: input.label } : {}),
      created: new Date().toISOString(),
    };
    await this.redis.multi().set(this.tokenKey(input.site, hash), JSON.stringify(record)).hset(this.siteKey(input.site), record.id, hash).exec();
    return { token, record };
  }

  async lookup(token: string, site: string): Promise<TokenRecord | undefined> {
    const raw = await this.redis.get(this.tokenKey(site, hashToken(token)));
    return raw ? (JSON.parse(raw) as TokenRecord) : undefined;
  }

  async list(site: string): Promise<TokenRecord[]> {
    const hashes = Object.values(await this.redis.hgetall(this.siteKey(site)));
    if (hashes.length === 0) return [];
    const raws = await this.redis.mget(hashes.map((h) => this.tokenKey(site, h)));
    return raws
      .filter((r): r is string => r !== null)
      .map((r) => JSON.parse(r) as TokenRecord)
      .sort((a, b) => (a.created < b.created ? -1 : a.created > b.created ? 1 : a.id < b.id ? -1 : 1));
  }

  async revoke(site: string, id: string): Promise<boolean> {
    const hash = await this.redis.hget(this.siteKey(site), id);
    if (!hash) return false;
    // The credentials version: every API process drops its cached lookups (credential-cache.ts).
    await this.redis.multi().del(this.tokenKey(site, hash)).hdel(this.siteKey(site), id).incr(credentialsVersionKey(this.prefix, site)).exec();
    return true;
  }
}
