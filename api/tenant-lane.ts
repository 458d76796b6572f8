import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { TokenRecord } from './auth/token-store.ts';
import { bearerToken } from './auth/auth.ts';
import type { Operation } from './openapi.ts';

/**
 * The fast lane of the API's GET routes (issue 15): a request with a bearer token and no
 * body, on the exact path of a GET operation, is matched against the operations in one
 * step and authenticated in one Redis round trip at most, instead of walking Express's
 * ~50 layers (each path tested one by one) and its auth middleware's separate reads.
 *
 * It answers only what it is sure of, through the same route function Express would run
 * (roles, a tenant's own account only, validation, the handler). Everything else goes on
 * to the ordinary chain unchanged, which then answers exactly as before: HEAD, a body, a
 * percent-encoded or trailing-slash or differently-cased path, a device-session cookie, a
 * malformed header, an unknown or revoked token, a blocked address (the chain counts the
 * failure and answers 401 or 429).
 */
export interface LaneOptions {
  /** The GET operations that need a caller (public ones stay on the ordinary chain). */
  readonly operations: readonly Operation[];
  /** The route function of an operation (the one Express mounts). */
  readonly routeOf: (op: Operation) => (req: Request, res: Response, next: NextFunction) => Promise<void>;
  /**
   * The caller of a bearer token, or undefined to leave the request to the ordinary
   * chain (unknown token, blocked address). `account`: the account the path names.
   */
  readonly authenticate: (req: Request, res: Response, token: string, op: Operation, params: Record<string, string>) => Promise<TokenRecord | undefined>;
}

interface Compiled {
  readonly op: Operation;
  /** Per path segment: a literal, or null for a parameter. */
  readonly literals: readonly (string | null)[];
  readonly names: readonly string[];
}

export function tenantLane(opts: LaneOptions): RequestHandler {
  const compiled: Compiled[] = opts.operations.map((op) => {
    const segs = op.path.split('/');
    return { op, literals: segs.map((s) => (/^\{\w+\}$/.test(s) ? null : s)), names: segs.filter((s) => /^\{\w+\}$/.test(s)).map((s) => s.slice(1, -1)) };
  });
  const match = (path: string): { op: Operation; params: Record<string, string> } | undefined => {
    const segs = path.split('/');
    for (const c of compiled) {
      if (c.literals.length !== segs.length) continue;
      const values: string[] = [];
      let ok = true;
      for (let i = 0; i < segs.length && ok; i++) {
        const lit = c.literals[i];
        if (lit === null) {
          if (segs[i] === '') ok = false;
          else values.push(segs[i]);
        } else ok = lit === segs[i];
      }
      if (!ok) continue;
      const params: Record<string, string> = {};
      c.names.forEach((n, i) => (params[n] = values[i]));
      return { op: c.op, params };
    }
    return undefined;
  };

  return (req, res, next) => {
    if (req.method !== 'GET' || !req.url.startsWith('/api/v1/')) return next();
    // A body (express.json would parse and may refuse it), a header the ordinary chain must see.
    if (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined || req.headers.authorization === undefined) return next();
    const path = req.path;
    // Percent-encoding (Express decodes parameters) and trailing slashes stay on the ordinary chain.
    if (path.includes('%') || path.endsWith('/')) return next();
    const m = match(path);
    if (!m) return next();
    const b = bearerToken(req.headers.authorization);
    if ('problem' in b) return next();
    // As the ordinary chain sets it first, so an error answer (503 when a store is down) has it too.
    res.setHeader('Cache-Control', 'no-store');
    opts.authenticate(req, res, b.token, m.op, m.params).then(
      (auth) => {
        if (!auth) return next();
        res.locals.auth = auth;
        req.params = m.params;
        return opts.routeOf(m.op)(req, res, next);
      },
      (err: unknown) => next(err),
    );
  };
}
