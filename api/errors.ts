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
  /** 405: the methods the path has (the Allow header). */
  readonly allow?: string;
  constructor(status: number, code: string, message: string, extra: { issues?: ApiErrorBody['issues']; at?: string; allow?: string } = {}) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.code = code;
    this.issues = extra.issues;
    this.at = extra.at;
    this.allow = extra.allow;
  }
}

export const badRequest = (message: string, at?: string) => new HttpError(400, 'bad_request', message, { at });
export const unauthorized = (message = 'a valid bearer token is required') => new HttpError(401, 'unauthorized', message);
export const forbidden = (message = 'this token may not do that') => new HttpError(403, 'forbidden', message);
/** Also what a tenant gets for another tenant's account: the account's existence is not revealed. */
export const notFound = (message = 'not found') => new HttpError(404, 'not_found', message);
export const conflict = (message: string) => new HttpError(409, 'conflict', message);
export const unsupportedMediaType = (message: string) => new HttpError(415, 'unsupported_media_type', message);

export function errorBody(req: Request, code: string, message: string, at?: string): ApiErrorBody {
  return { error: code, message, path: at ?? req.path };
}

export const notFoundHandler: RequestHandler = (req, _res, next) => next(new HttpError(404, 'not_found', `no route ${req.method} ${req.path}`));

/** Body-parser failures (4xx) by their `type`: the code and a message of ours (theirs can quote internals). */
const BODY_ERRORS: Record<string, { code: string; message: (e: { message?: string; limit?: number }) => string }> = {
  'entity.parse.failed': { code: 'bad_json', message: (e) => `the body is not valid JSON: ${String(e.message ?? '').slice(0, 200)}` },
  'entity.too.large': { code: 'payload_too_large', message: (e) => `the body is larger than ${e.limit ?? 16384} bytes` },
  'encoding.unsupported': { code: 'unsupported_media_type', message: () => 'unsupported Content-Encoding; send identity or gzip' },
  'charset.unsupported': { code: 'unsupported_media_type', message: () => 'unsupported charset; send UTF-8 JSON' },
  'request.aborted': { code: 'bad_request', message: () => 'the request body was aborted' },
  'request.size.invalid': { code: 'bad_request', message: () => 'the request body does not match its Content-Length' },
};

const STATUS_CODES: Record<number, string> = { 400: 'bad_request', 404: 'not_found', 405: 'method_not_allowed', 413: 'payload_too_large', 414: 'uri_too_long', 415: 'unsupported_media_type', 431: 'headers_too_large' };

/** A data store that is down, overloaded or refusing: InfluxDB or Redis. */
export function isStoreError(err: unknown): boolean {
  const name = (err as Error | undefined)?.name;
  return name === 'InfluxError' || name === 'MaxRetriesPerRequestError' || name === 'ReplyError' || /Connection is closed|ECONNREFUSED|ECONNRESET|Stream isn't writeable|enableOfflineQueue/.test(String((err as Error | undefined)?.message));
}

/** Seconds a client should wait before retrying a request that needed a store that is down. */
export const RETRY_AFTER_S = 5;

/**
 * The last middleware: turns any error into the JSON error shape. Only our own messages
 * reach a client: never a storage engine's text, a stack or a server file path (issue 11);
 * the details go to the log.
 */
export function errorHandler(log: { error: (obj: object, msg: string) => void; warn?: (obj: object, msg: string) => void }): ErrorRequestHandler {
  return (err, req, res, _next) => {
    if (res.headersSent) return;
    if (err instanceof HttpError) {
      if (err.status === 405 && err.allow) res.setHeader('Allow', err.allow);
      const body: ApiErrorBody = { ...errorBody(req, err.code, err.message, err.at), ...(err.issues ? { issues: err.issues } : {}) };
      res.status(err.status).json(body);
      return;
    }
    const e = err as { status?: number; statusCode?: number; type?: string; message?: string; limit?: number };
    const status = e.status ?? e.statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      const known = e.type ? BODY_ERRORS[e.type] : undefined;
      (log.warn ?? log.error)({ err, path: req.path, method: req.method }, 'bad request');
      res.status(status).json(errorBody(req, known?.code ?? STATUS_CODES[status] ?? 'bad_request', known ? known.message(e) : status === 404 ? `no route ${req.method} ${req.path}` : 'the request could not be read'));
      return;
    }
    // A store that is down, overloaded or refusing is the server's problem, and temporary:
    // 503 with Retry-After, so clients and the page retry instead of showing a broken answer.
    if (isStoreError(err)) {
      log.error({ err, path: req.path, method: req.method }, 'store unavailable');
      res.setHeader('Retry-After', String(RETRY_AFTER_S));
      res.status(503).json(errorBody(req, 'unavailable', 'a data store is unavailable; try again shortly'));
      return;
    }
    log.error({ err, path: req.path, method: req.method }, 'request failed');
    res.status(500).json(errorBody(req, 'internal', 'internal error; see the server log'));
  };
}
