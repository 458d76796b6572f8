import type { NextFunction, Request, Response } from 'express';
import type { RedisClient } from '../../lib/redis.ts';
import { HttpError, unauthorized } from '../errors.ts';
import type { TokenRecord, TokenStore } from './token-store.ts';

export interface AuthFailureLimit {
  /** Failed authentications allowed per address and window. @defaultValue 20 */
  readonly limit: number;
  /** @defaultValue 900000 (15 min) */
  readonly windowMs: number;
}

// Counts one failure atomically and returns the new count; the window starts with the
// first failure (PEXPIRE only on a new key).
const FAIL = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}
`;

/**
 * Failed authentications per client address, counted in Redis so that the limit holds
 * across API processes and against a parallel burst (issue 11: an in-process counter let
 * a burst of parallel guesses get more 401s than the limit). Each failure is counted with
 * one atomic INCR, which tells it its rank: the first `limit` failures of a window are
 * answered 401, every later one 429, however many arrive at once and at whichever API
 * process; once the limit is reached, every request from the address (valid ones too) is
 * answered 429 before its token is looked up, until the window ends. Successes are never
 * counted, so a burst of valid requests from one NAT is never refused. (A guess that is in
 * flight while the limit is reached is still looked up; with 256-bit tokens nothing can be
 * guessed, the limit keeps scanners out of the logs and off the store.)
 */
export class AuthFailureLimiter {
  readonly opts: AuthFailureLimit;
  /** Per address: blocked until (epoch ms; 0 = not blocked), as read at `at`. */
  private readonly seen = new Map<string, { at: number; until: number }>();
  constructor(
    private readonly redis: RedisClient,
    /** Key prefix with the site's hash tag, e.g. `submeter:api:{plaza}:`. */
    private readonly prefix: string,
    opts: AuthFailureLimit = { limit: 20, windowMs: 15 * 60_000 },
    /**
     * How long this process trusts what it read of an address (issue 15: a Redis round trip
     * per request cost the API a third of its throughput). Its own failures update it at once;
     * an address blocked by another process is refused here within this long. 0: read every time.
     */
    private readonly refreshMs = 1000,
  ) {
    this.opts = opts;
  }

  /** The address's failure counter (the one-round-trip tenant read reads it too: api/data/tenant-read.ts). */
  key(address: string): string {
    return `${this.prefix}auth-failures:${address}`;
  }

  /** Undefined when the address may try, else the ms until its window ends. */
  async blocked(address: string): Promise<number | undefined> {
    const now = Date.now();
    const hit = this.seen.get(address);
    if (hit && this.refreshMs > 0 && now - hit.at < this.refreshMs) return hit.until > now ? hit.until - now : undefined;
    const [n, ttl] = await this.redis.multi().get(this.key(address)).pttl(this.key(address)).exec().then((r) => (r ?? []).map((x) => x[1]) as [string | null, number]);
    return this.blockedBy(address, n, ttl, now);
  }

  /** `blocked` from the counter and its PTTL as read elsewhere (in the same round trip as the token). */
  blockedBy(address: string, count: string | null, ttlMs: number, now = Date.now()): number | undefined {
    const wait = Number(count ?? 0) >= this.opts.limit ? Math.max(ttlMs, 1000) : undefined;
    this.remember(address, now, wait);
    return wait;
  }

  /** Counts a failure: undefined when it is within the limit (answer 401), else the ms until the window ends (answer 429). */
  async fail(address: string): Promise<number | undefined> {
    const [n, ttl] = (await this.redis.eval(FAIL, 1, this.key(address), this.opts.windowMs)) as [number, number];
    const wait = n > this.opts.limit ? Math.max(ttl, 1000) : undefined;
    // At the limit the address is blocked now (its next request gets 429 before any lookup).
    this.remember(address, Date.now(), n >= this.opts.limit ? Math.max(ttl, 1000) : undefined);
    return wait;
  }

  private remember(address: string, now: number, wait: number | undefined): void {
    if (this.refreshMs <= 0) return;
    if (this.seen.size > 100_000) this.seen.clear();
    this.seen.set(address, { at: now, until: wait === undefined ? 0 : now + wait });
  }
}

declare module 'express-serve-static-core' {
  interface Locals {
    auth?: TokenRecord;
  }
}

/**
 * `Authorization: Bearer <token>`, the scheme name case-insensitive (RFC 7235 section 2.1;
 * RFC 6750 tokens are token68). Returns the token, or why the header is unusable.
 */
export function bearerToken(header: string | undefined): { token: string } | { problem: string } {
  if (!header) return { problem: 'missing Authorization: Bearer <token>' };
  const m = /^bearer +([A-Za-z0-9_\-.~+/]{10,200}=*) *$/i.exec(header);
  return m ? { token: m[1] } : { problem: 'malformed Authorization header; expected Bearer <token>' };
}

/** What else may authenticate a request without an Authorization header (a tenant's device session cookie); undefined: not present. */
export type SecondaryAuth = (req: Request, res: Response) => Promise<{ record?: TokenRecord } | undefined>;

/** Bearer authentication for the site this API serves; a token of another site is invalid here. */
export function authenticate(tokens: TokenStore, limiter: AuthFailureLimiter, siteId: () => string, secondary?: SecondaryAuth) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    try {
      const address = req.ip ?? 'unknown';
      const tooMany = (waitMs: number) => {
        res.setHeader('Retry-After', String(Math.ceil(waitMs / 1000)));
        next(new HttpError(429, 'too_many_requests', 'too many failed authentications from this address; try again later'));
      };
      const wait = await limiter.blocked(address);
      if (wait !== undefined) return tooMany(wait);
      const fail = async (message: string) => {
        const over = await limiter.fail(address);
        if (over !== undefined) return tooMany(over);
        res.setHeader('WWW-Authenticate', 'Bearer realm="submeter"');
        next(unauthorized(message));
      };
      let record: TokenRecord | undefined;
      let problem: string;
      if (req.headers.authorization === undefined && secondary) {
        const other = await secondary(req, res);
        record = other?.record;
        problem = other ? 'this device is no longer signed in; ask for a new login link' : 'missing Authorization: Bearer <token>';
      } else {
        const b = bearerToken(req.headers.authorization);
        if ('problem' in b) return await fail(b.problem);
        record = await tokens.lookup(b.token, siteId());
        problem = 'invalid or revoked token';
      }
      if (!record || record.site !== siteId()) return await fail(problem);
      res.locals.auth = record;
      next();
    } catch (err) {
      next(err);
    }
  };
}
