import type { ErrorRequestHandler, Request, RequestHandler } from 'express';

/**
 * Every error the API answers is JSON `{error, message, path}` (issue 5): `error` a stable
 * machine code, `message` for people, `path` the request path (or, for a validation
 * failure, the request path plus the offending parameter), so a client can log one line.
 */
export interface ApiErrorBody {
  readonly error: string;
  readonly message: string;
  readonly path: string;
  readonly issues?: readonly { readonly path: string; readonly message: string; readonly line?: number }[];
}

export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly issues?: ApiErrorBody['issues'];
  /** Overrides the request path in the body (validation errors point at the parameter). */
  readonly at?: string;
  constructor(status: number, code: string, message: string, extra: { issues?: ApiErrorBody['issues']; at?: string } = {}) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.code = code;
    this.issues = extra.issues;
    this.at = extra.at;
  }
}

export const badRequest = (message: string, at?: string) => new HttpError(400, 'bad_request', message, { at });
export const unauthorized = (message = 'a valid bearer token is required') => new HttpError(401, 'unauthorized', message);
export const forbidden = (message = 'this token may not do that') => new HttpError(403, 'forbidden', message);
/** Also what a tenant gets for another tenant's account: the account's existence is not revealed. */
export const notFound = (message = 'not found') => new HttpError(404, 'not_found', message);
export const conflict = (message: string) => new HttpError(409, 'conflict', message);

export function errorBody(req: Request, code: string, message: string, at?: string): ApiErrorBody {
  return { error: code, message, path: at ?? req.path };
}

export const notFoundHandler: RequestHandler = (req, _res, next) => next(new HttpError(404, 'not_found', `no route ${req.method} ${req.path}`));

/** The last middleware: turns any error into the JSON error shape; 5xx details go to the log only. */
export function errorHandler(log: { error: (obj: object, msg: string) => void }): ErrorRequestHandler {
  return (err, req, res, _next) => {
    if (res.headersSent) return;
    if (err instanceof HttpError) {
      const body: ApiErrorBody = { ...errorBody(req, err.code, err.message, err.at), ...(err.issues ? { issues: err.issues } : {}) };
      res.status(err.status).json(body);
      return;
    }
    // body-parser errors carry status/type (malformed JSON, too large).
    const e = err as { status?: number; type?: string; message?: string };
    if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
      res.status(e.status).json(errorBody(req, e.type === 'entity.parse.failed' ? 'bad_json' : 'bad_request', e.message ?? 'bad request'));
      return;
    }
    // A store that is down or overloaded is the server's problem, and temporary: 503 with
    // Retry-After, so clients and the page retry instead of showing a broken answer.
    const name = (err as Error)?.name;
    if ((name === 'InfluxError' && (err as { retryable?: boolean }).retryable) || name === 'MaxRetriesPerRequestError' || /Connection is closed|ECONNREFUSED/.test(String((err as Error)?.message))) {
      log.error({ err, path: req.path, method: req.method }, 'store unavailable');
      res.setHeader('Retry-After', '5');
      res.status(503).json(errorBody(req, 'unavailable', 'a data store is unavailable; try again shortly'));
      return;
    }
    log.error({ err, path: req.path, method: req.method }, 'request failed');
    res.status(500).json(errorBody(req, 'internal', 'internal error; see the server log'));
  };
}
