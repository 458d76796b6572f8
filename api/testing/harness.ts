import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import { buildApp } from '../app.ts';
import { answerClientErrors } from '../client-errors.ts';
import type { ApiDeps } from '../app.ts';
import { openapiDocument, operations } from '../openapi.ts';
import { SiteRef } from '../site-ref.ts';
import { OpenApiValidator } from '../validate.ts';
import { NOW } from './fixture.ts';
import type { Fixture } from './fixture.ts';

/** The API of a fixture on a free port, with a `fetch` that checks every answer against the OpenAPI document. */
export interface Harness {
  readonly base: string;
  readonly server: Server;
  /** Any request; when the path is a documented operation, the answer must conform to the document. */
  req(method: string, path: string, opts?: { token?: string; body?: unknown; rawBody?: string | Buffer; headers?: Record<string, string> }): Promise<{ status: number; type: string; body: any; text: string; headers: Headers }>;
  close(): Promise<void>;
}

const validator = new OpenApiValidator(openapiDocument());
const ops = operations();

/** The OpenAPI path template a concrete path matches, if any. */
function templateOf(method: string, path: string): string | undefined {
  const p = path.split('?')[0];
  for (const o of ops) {
    if (o.method !== method.toLowerCase()) continue;
    const re = new RegExp(`^${o.path.replace(/\{\w+\}/g, '[^/]+')}$`);
    if (re.test(p)) return o.path;
  }
  return undefined;
}

/** An app on a free port of 127.0.0.1 (tests that build the app with their own deps). */
export async function serveApp(app: ReturnType<typeof buildApp>): Promise<{ base: string; close(): Promise<void> }> {
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export async function startHarness(fx: Fixture, extra: Partial<ApiDeps> = {}): Promise<Harness> {
  const app = buildApp({ site: new SiteRef(fx.site), influx: fx.influx, redis: fx.redis, keyPrefix: fx.prefix, workersKeyPrefix: fx.workersPrefix, now: () => NOW, cacheMs: 0, ...extra });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  answerClientErrors(server);
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    server,
    async req(method, path, opts = {}) {
      const headers: Record<string, string> = { ...(opts.headers ?? {}) };
      if (opts.token) headers.authorization = `Bearer ${opts.token}`;
      if (opts.body !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
      const r = await fetch(`${base}${path}`, { method, headers, body: opts.rawBody ?? (opts.body !== undefined ? JSON.stringify(opts.body) : undefined) });
      const text = await r.text();
      const type = r.headers.get('content-type') ?? '';
      const body = type.startsWith('application/json') && text ? JSON.parse(text) : text;
      const tpl = templateOf(method, path);
      if (tpl && r.status !== 405) {
        const problems = validator.response(tpl, method.toLowerCase(), r.status, r.status === 204 ? undefined : type, r.status === 204 ? undefined : body);
        expect(problems, `${method} ${path} -> ${r.status} ${text.slice(0, 300)}`).toEqual([]);
      }
      return { status: r.status, type, body, text, headers: r.headers };
    },
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
    },
  };
}
