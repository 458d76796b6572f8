import type { NextFunction, Request, Response } from 'express';
import { HttpError, unauthorized } from '../errors.ts';
import type { TokenRecord, TokenStore } from './token-store.ts';

export interface AuthFailureLimit {
  /** Failed authentications allowed per address and window. @defaultValue 20 */
  readonly limit: number;
  /** @defaultValue 900000 (15 min) */
  readonly windowMs: number;
}

/**
 * Counts failed authentications per client address; past the limit every request from
 * it gets 429 until the window ends. Counted on failures only, after the fact: a counter
 * that is raised on every request and lowered on success (express-rate-limit's
 * skipSuccessfulRequests) would refuse bursts of valid requests once more than `limit`
 * are in flight, which the live-status polling of many tenants behind one NAT produces.
 */
export class AuthFailureLimiter {
  private readonly hits = new Map<string, { count: number; until: number }>();
  constructor(readonly opts: AuthFailureLimit = { limit: 20, windowMs: 15 * 60_000 }) {}

  blocked(key: string, now: number): number | undefined {
    const h = this.hits.get(key);
    if (!h) return undefined;
    if (h.until <= now) {
      this.hits.delete(key);
      return undefined;
    }
    return h.count >= this.opts.limit ? h.until : undefined;
  }

  fail(key: string, now: number): void {
    const h = this.hits.get(key);
    if (!h || h.until <= now) {
      if (this.hits.size > 100_000) this.hits.clear(); // bounded memory under a spray of addresses
      this.hits.set(key, { count: 1, until: now + this.opts.windowMs });
    } else h.count++;
  }
}

declare module 'express-serve-static-core' {
  interface Locals {
    auth?: TokenRecord;
  }
}

/** Bearer authentication for the site this API serves; a token of another site is invalid here. */
export function authenticate(tokens: TokenStore, limiter: AuthFailureLimiter, siteId: () => string) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const now = Date.now();
    const key = req.ip ?? 'unknown';
    const until = limiter.blocked(key, now);
    if (until !== undefined) {
      res.setHeader('Retry-After', String(Math.ceil((until - now) / 1000)));
      return next(new HttpError(429, 'too_many_requests', 'too many failed authentications from this address; try again later'));
    }
    const header = req.headers.authorization;
    const m = header ? /^Bearer ([A-Za-z0-9_\-.~+/]{10,200}=*)$/.exec(header) : null;
    const fail = (message: string) => {
      limiter.fail(key, now);
      res.setHeader('WWW-Authenticate', 'Bearer realm="submeter"');
      next(unauthorized(message));
    };
    if (!header) return fail('missing Authorization: Bearer <token>');
    if (!m) return fail('malformed Authorization header; expected Bearer <token>');
    const site = siteId();
    const record = await tokens.lookup(m[1], site);
    if (!record || record.site !== site) return fail('invalid or revoked token');
    res.locals.auth = record;
    next();
  };
}
