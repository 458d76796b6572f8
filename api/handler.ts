import type { Request, Response } from 'express';
import type { Site } from '../core/index.ts';
import type { TokenRecord } from './auth/token-store.ts';

/** What a route handler gets: the request, the site served, the caller, and the validated parameters. */
export interface HandlerCtx {
  readonly req: Request;
  readonly res: Response;
  readonly site: Site;
  readonly auth: TokenRecord;
  readonly params: Record<string, string>;
  readonly query: Record<string, string>;
  readonly body: Record<string, unknown>;
}

/** A route handler: the JSON (or text, or a stored result's bytes) to answer, or undefined for 204. */
export type RouteHandler = (ctx: HandlerCtx) => Promise<unknown>;
