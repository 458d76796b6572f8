import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Express, Request, Response } from 'express';
import type { TokenRecord } from './auth/token-store.ts';
import { bearerToken } from './auth/auth.ts';
import type { TenantRead } from './data/tenant-read.ts';
import type { Operation } from './openapi.ts';

/**
 * The fast lane of the API's GET routes (issue 15), in front of Express's router: the
 * server's request handler (the app function, `app.handle`) answers a GET with a bearer
 * token and no body, on the exact path of an operation, itself: one matcher step, one Redis
 * round trip at most for the caller, the operation's own checks and handler, and the answer
 * written at once. Express's router never runs for it: its ~10 layers before a tenant route
 * (each a path test and a closure), finalhandler and res.send's content-type re-parsing were
 * a tenth of a cache-off request's CPU, where bare Express pays one layer.
 *
 * The answer is the same, byte for byte, as the ordinary chain's (api/tenant-lane.test.ts
 * sends the same requests both ways): the lane runs the same first middleware (security
 * headers, the request log), sets Cache-Control as the `/api` middleware does, runs the
 * same route body (roles, a tenant's own account only, validation, the handler), answers
 * errors with the same error handler, and writes a JSON, CSV or HTML body with the headers
 * res.send would set (anything else goes through res.send/res.json themselves).
 *
 * Everything else goes to Express unchanged, which then answers exactly as before: another
 * method, HEAD, a body, a conditional request (If-None-Match / If-Modified-Since: res.send
 * can answer 304), a percent-encoded or trailing-slash or differently-cased path, a
 * device-session cookie without Authorization, a malformed header, an unknown or revoked
 * token, a blocked address (the chain counts the failure and answers 401 or 429).
 */
export interface LaneOptions {
  /** The GET operations that need a caller (public ones stay on the ordinary chain). */
  readonly operations: readonly Operation[];
  /**
   * The caller of a bearer token, or undefined to leave the request to Express (unknown
   * token, blocked address); `read`: what the request's one round trip read (cache off).
   * A rejection (a store down) is answered by `fail`, as the chain's error handler would.
   */
  readonly authenticate: (req: Request, token: string, op: Operation, params: Record<string, string>) => Promise<{ record: TokenRecord; read?: TenantRead } | undefined>;
  /** What the chain's middleware before the routes does to every /api request (security headers, request log, Cache-Control). */
  readonly prepare: (req: Request, res: Response) => void;
  /** The operation's route body (checks and handler; api/app.ts routeAnswer): what the route sends. */
  readonly answer: (op: Operation, req: Request, res: Response) => Promise<unknown>;
  /** The chain's error handler. */
  readonly fail: (err: unknown, req: Request, res: Response) => void;
}

interface Compiled {
  readonly op: Operation;
  /** Per path segment: a literal, or null for a parameter. */
  readonly literals: readonly (string | null)[];
  readonly names: readonly string[];
}

/** Content types the lane writes itself: exactly what res.send leaves them as (setCharset of a type already carrying `charset=utf-8`). */
const SENT_AS_IS = new Set(['application/json; charset=utf-8', 'text/csv; charset=utf-8', 'text/html; charset=utf-8']);
const JSON_TYPE = 'application/json; charset=utf-8';

/** Puts the lane in front of the app's router (the app function calls `app.handle` for every request). */
export function installTenantLane(app: Express, opts: LaneOptions): void {
  const compiled: Compiled[] = opts.operations.map((op) => {
    const segs = op.path.split('/');
    return { op, literals: segs.map((s) => (/^\{\w+\}$/.test(s) ? null : s)), names: segs.filter((s) => /^\{\w+\}$/.test(s)).map((s) => s.slice(1, -1)) };
  });
  const match = (path: string): { op: Operation; params: Record<string, string> } | undefined => {
    const segs = path.split('/');
    for (const c of compiled) {
      if (c.literals.length !== segs.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      let p = 0;
      for (let i = 0; i < segs.length && ok; i++) {
        const lit = c.literals[i];
        if (lit === null) {
          if (segs[i] === '') ok = false;
          else params[c.names[p++]] = segs[i];
        } else ok = lit === segs[i];
      }
      if (ok) return { op: c.op, params };
    }
    return undefined;
  };

  const plain = app as unknown as { handle(req: IncomingMessage, res: ServerResponse, cb?: unknown): void; request: object; response: object };
  const express = plain.handle.bind(app);

  /** Answers the request and returns true, or returns false having touched nothing Express would not set up the same way. */
  const serve = async (req: Request, res: Response, m: { op: Operation; params: Record<string, string> }, token: string): Promise<boolean> => {
    let who: Awaited<ReturnType<LaneOptions['authenticate']>>;
    try {
      who = await opts.authenticate(req, token, m.op, m.params);
    } catch (err) {
      opts.prepare(req, res);
      opts.fail(err, req, res);
      return true;
    }
    if (!who) return false;
    opts.prepare(req, res);
    res.locals.auth = who.record;
    if (who.read) res.locals.tenantRead = who.read;
    req.params = m.params;
    let out: unknown;
    try {
      out = await opts.answer(m.op, req, res);
    } catch (err) {
      opts.fail(err, req, res);
      return true;
    }
    send(res, out);
    return true;
  };

  plain.handle = (raw: IncomingMessage, rawRes: ServerResponse, cb?: unknown) => {
    const url = raw.url ?? '';
    const h = raw.headers;
    if (
      raw.method !== 'GET' ||
      !url.startsWith('/api/v1/') ||
      h.authorization === undefined ||
      // A body (express.json would parse and may refuse it); a conditional request (res.send may answer 304).
      h['content-length'] !== undefined ||
      h['transfer-encoding'] !== undefined ||
      h['if-none-match'] !== undefined ||
      h['if-modified-since'] !== undefined
    )
      return express(raw, rawRes, cb);
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    // Percent-encoding (Express decodes parameters) and trailing slashes stay on the ordinary chain.
    if (path.includes('%') || path.endsWith('/')) return express(raw, rawRes, cb);
    const m = match(path);
    if (!m) return express(raw, rawRes, cb);
    const b = bearerToken(h.authorization);
    if ('problem' in b) return express(raw, rawRes, cb);
    // What app.handle does first (Express 5): the request and response get Express's API
    // (req.ip through `trust proxy`, res.type...), exactly as for the chain.
    const req = raw as Request;
    const res = rawRes as Response;
    req.res = res;
    res.req = req;
    Object.setPrototypeOf(req, plain.request);
    Object.setPrototypeOf(res, plain.response);
    if (!res.locals) res.locals = Object.create(null) as Response['locals'];
    serve(req, res, m, b.token).then(
      (done) => {
        if (!done) express(raw, rawRes, cb);
      },
      (err: unknown) => opts.fail(err, req, res),
    );
  };
}

/**
 * What the route function's last step (res.send / res.json) writes, without its per-request
 * content-type parsing and freshness check (the lane leaves conditional requests to
 * Express): a stored result's bytes or the JSON text, Content-Type as res.send leaves it,
 * Content-Length. Anything unusual (another status, a body without a type, another type)
 * goes through res.send / res.json themselves.
 */
function send(res: Response, out: unknown): void {
  if (res.statusCode !== 200 || out === undefined || out === null) return finishAsExpress(res, out);
  const type = res.getHeader('content-type');
  if (Buffer.isBuffer(out)) {
    // A stored result's bytes (api/data/site-versions.ts): res.send keeps a Buffer's type as the handler set it.
    if (typeof type !== 'string') return finishAsExpress(res, out);
    res.setHeader('Content-Length', String(out.length));
    res.end(out);
    return;
  }
  let body: string;
  if (typeof out === 'string') {
    if (typeof type !== 'string' || !SENT_AS_IS.has(type)) return finishAsExpress(res, out);
    body = out;
  } else if (typeof out === 'object') {
    // res.json: JSON.stringify (no replacer, spaces or escape set on the app), its default type.
    if (type !== undefined) return finishAsExpress(res, out);
    body = JSON.stringify(out);
    res.setHeader('Content-Type', JSON_TYPE);
  } else return finishAsExpress(res, out);
  res.setHeader('Content-Length', String(Buffer.byteLength(body)));
  res.end(body);
}

/** The route function's own last step (api/app.ts). */
function finishAsExpress(res: Response, out: unknown): void {
  if (res.statusCode === 204) res.end();
  else if (typeof out === 'string' || Buffer.isBuffer(out)) res.send(out);
  else res.json(out);
}
