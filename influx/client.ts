/**
 * The one InfluxDB adapter (style.md practice 2): the v1 HTTP API only, so the same code
 * runs on InfluxDB 1.x, 2.x (DBRP mapping) and 3.x (protocols.md, "InfluxDB"):
 * line protocol `POST /write?db=&precision=`, InfluxQL `POST /query?db=&q=`.
 * Build lines with `Point` from @influxdata/influxdb-client (see lines.ts).
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

export interface InfluxOptions {
  /** Base URL, e.g. http://127.0.0.1:8096 */
  readonly url: string;
  /** Database (1.x) or bucket name through its DBRP mapping (2.x, 3.x). */
  readonly db: string;
  /** 2.x/3.x token, sent as `Authorization: Token <token>`; never logged. */
  readonly token?: string;
  /** Per-request timeout. @defaultValue 10000 */
  readonly timeoutMs?: number;
  /**
   * Ask for gzip-compressed query answers. fetch asks for them by default and InfluxDB
   * compresses every answer then: on a loopback connection that is CPU spent twice (the
   * server compressing, this process inflating: 1.5 % of the workers' CPU and part of
   * InfluxDB's at 100,000 meters) for no bandwidth gained. @defaultValue false for a
   * loopback host (127.0.0.0/8, ::1, localhost), true otherwise
   */
  readonly compressAnswers?: boolean;
}

/** A loopback host, where compressing answers saves no bandwidth. */
function isLoopback(url: string): boolean {
  const host = new URL(url).hostname;
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export type Precision = 'ns' | 'u' | 'ms' | 's';

/** A write or query failure; `retryable` separates server/network faults from bad data. */
export class InfluxError extends Error {
  readonly status: number | undefined;
  readonly retryable: boolean;
  /**
   * True when the request certainly never reached the server (the connection was refused
   * or the name did not resolve). A timeout or a reset after sending is not that: a write
   * may still land, so a caller deciding money must treat its outcome as unknown.
   */
  readonly notSent: boolean;
  constructor(message: string, status: number | undefined, retryable: boolean, notSent = false) {
    super(message);
    this.name = 'InfluxError';
    this.status = status;
    this.retryable = retryable;
    this.notSent = notSent;
  }
}

/** Connect-phase failures of fetch (undici): nothing was sent. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);
function notSent(err: unknown): boolean {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return NOT_SENT_CODES.has(cause?.code ?? '') || cause?.message === 'bad port';
}

/** A kept-alive connection the server had closed: the request is sent again on a new one. */
class StaleSocketError extends Error {}
const NEWLINE = Buffer.from('\n');

export interface Series {
  readonly name: string;
  readonly tags?: Readonly<Record<string, string>>;
  readonly columns: readonly string[];
  readonly values: readonly (readonly unknown[])[];
}

/** A row of a series as an object: columns as keys, plus the series' tags. */
export type Row = Record<string, unknown>;

export class InfluxV1 {
  readonly url: string;
  readonly db: string;
  private readonly headers: Record<string, string>;
  /** Headers of a query: `headers`, plus `Accept-Encoding: identity` when answers are not to be compressed. */
  private readonly queryHeaders: Record<string, string>;
  private readonly timeoutMs: number;

  constructor(opts: InfluxOptions) {
    if (!/^https?:\/\//.test(opts.url)) throw new Error(`influx url must start with http:// or https://, got ${JSON.stringify(opts.url)}`);
    if (!opts.db) throw new Error('influx db must be a non-empty name');
    this.url = opts.url.replace(/\/+$/, '');
    this.db = opts.db;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.headers = opts.token ? { Authorization: `Token ${opts.token}` } : {};
    this.queryHeaders = { ...this.headers, 'Content-Type': 'application/x-www-form-urlencoded', ...((opts.compressAnswers ?? !isLoopback(this.url)) ? {} : { 'Accept-Encoding': 'identity' }) };
  }

  /** True when the server answers /ping. */
  async ping(): Promise<boolean> {
    try {
      const res = await fetch(`${this.url}/ping`, { headers: this.headers, signal: AbortSignal.timeout(Math.min(this.timeoutMs, 2000)) });
      await res.arrayBuffer();
      return res.status === 204 || res.ok;
    } catch {
      return false;
    }
  }

  /** Writes line protocol. Throws InfluxError; a 4xx (bad data) is not retryable, 5xx and network faults are. */
  async write(lines: string | readonly string[] | Uint8Array, precision: Precision = 'ms'): Promise<void> {
    // A Uint8Array is a body already joined and UTF-8 encoded (the collector's spool records).
    const body = typeof lines === 'string' || lines instanceof Uint8Array ? lines : lines.join('\n');
    if (body.length === 0) return;
    let res: Response;
    try {
      res = await fetch(`${this.url}/write?db=${encodeURIComponent(this.db)}&precision=${precision}`, {
        method: 'POST',
        headers: { ...this.headers, 'Content-Type': 'text/plain; charset=utf-8' },
        body,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new InfluxError(`influx write to ${this.url} failed: ${(err as Error).message}`, undefined, true, notSent(err));
    }
    if (res.status === 204 || res.ok) {
      // The server acknowledged the write; an error reading its (empty) body changes nothing.
      await res.arrayBuffer().catch(() => undefined);
      return;
    }
    const text = await res.text().catch(() => '');
    // 404 "database not found" is fixable by creating it; treat as retryable.
    const retryable = res.status >= 500 || res.status === 404 || res.status === 429;
    throw new InfluxError(`influx write rejected (${res.status}): ${text.slice(0, 500)}`, res.status, retryable);
  }

  /**
   * Writes line protocol given as parts joined by `\n` (the collector's spool records, as
   * they are in memory), with node:http on a keep-alive connection instead of fetch. Same
   * errors as `write`.
   *
   * Why not fetch here: the forwarder sends every sample through this. fetch copies a
   * Buffer body (WHATWG body extraction) after the caller concatenated the records into
   * one, and its stream machinery cost 3-4x the CPU of node:http per request in
   * bench/ingest.bench.ts (~130 vs ~35 ms for 40 requests of 500 kB), plus the garbage
   * collections of the copies, on the 2 cores InfluxDB needs. Parts go to the socket as
   * they are. One connection (one request in flight, as the forwarder sends), kept alive;
   * a request that fails on a kept-alive connection the server had already closed is
   * sent again once on a new one (Node http docs, "agent.reuseSocket"): writes are
   * idempotent, every line carries its timestamp.
   */
  async writeParts(parts: readonly (string | Uint8Array)[], precision: Precision = 'ms'): Promise<void> {
    if (parts.length === 0) return;
    try {
      await this.postParts(parts, precision);
    } catch (err) {
      if (!(err instanceof StaleSocketError)) throw err;
      await this.postParts(parts, precision);
    }
  }

  private agent: HttpAgent | undefined;

  private postParts(parts: readonly (string | Uint8Array)[], precision: Precision): Promise<void> {
    const u = new URL(`${this.url}/write?db=${encodeURIComponent(this.db)}&precision=${precision}`);
    const https = u.protocol === 'https:';
    this.agent ??= https ? new HttpsAgent({ keepAlive: true, maxSockets: 1 }) : new HttpAgent({ keepAlive: true, maxSockets: 1 });
    let length = parts.length - 1;
    for (const p of parts) length += typeof p === 'string' ? Buffer.byteLength(p) : p.byteLength;
    return new Promise<void>((resolve, reject) => {
      const onResponse = (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => void (chunks.length < 64 && chunks.push(c)));
        res.on('error', (err) => reject(new InfluxError(`influx write to ${this.url} failed while reading the answer: ${err.message}`, res.statusCode, true)));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status === 204 || (status >= 200 && status < 300)) return resolve();
          const text = Buffer.concat(chunks).toString('utf8');
          // As `write`: 404 "database not found" is fixable by creating it; retryable.
          const retryable = status >= 500 || status === 404 || status === 429;
          reject(new InfluxError(`influx write rejected (${status}): ${text.slice(0, 500)}`, status, retryable));
        });
      };
      const opts = { method: 'POST', agent: this.agent, timeout: this.timeoutMs, headers: { ...this.headers, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': length } };
      const req: ClientRequest = https ? httpsRequest(u, opts, onResponse) : httpRequest(u, opts, onResponse);
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) return reject(new StaleSocketError());
        reject(new InfluxError(`influx write to ${this.url} failed: ${err.message}`, undefined, true, NOT_SENT_CODES.has(err.code ?? '')));
      });
      parts.forEach((p, i) => {
        if (i > 0) req.write(NEWLINE);
        req.write(p);
      });
      req.end();
    });
  }

  /** Runs InfluxQL statements; returns the series of each statement's result. */
  async queryRaw(q: string, opts: { epoch?: Precision; db?: string | null } = {}): Promise<Series[][]> {
    const params = new URLSearchParams({ q, epoch: opts.epoch ?? 'ms' });
    const db = opts.db === undefined ? this.db : opts.db;
    if (db) params.set('db', db);
    let res: Response;
    try {
      res = await fetch(`${this.url}/query`, {
        method: 'POST',
        headers: this.queryHeaders,
        body: params.toString(),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new InfluxError(`influx query to ${this.url} failed: ${(err as Error).message}`, undefined, true, notSent(err));
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      // The body timed out or the connection dropped mid-answer: a server fault, retryable.
      throw new InfluxError(`influx query to ${this.url} failed while reading the answer: ${(err as Error).message}`, res.status, true);
    }
    if (!res.ok) throw new InfluxError(`influx query failed (${res.status}): ${text.slice(0, 500)}`, res.status, res.status >= 500);
    let json: { results?: { series?: Series[]; error?: string }[]; error?: string };
    try {
      json = JSON.parse(text) as typeof json;
    } catch {
      throw new InfluxError(`influx query answered ${res.status} with a body that is not JSON`, res.status, true);
    }
    // "database not found": a fresh or restarted server before the database is created
    // (the API creates it in the background); temporary, so retryable.
    const missingDb = (e: string) => /^database not found/.test(e);
    if (json.error) throw new InfluxError(`influx query error: ${json.error}`, res.status, missingDb(json.error));
    return (json.results ?? []).map((r) => {
      if (r.error) throw new InfluxError(`influx query error: ${r.error} (in: ${q.slice(0, 200)})`, res.status, missingDb(r.error));
      return r.series ?? [];
    });
  }

  /** One statement's rows as objects (series tags merged in). Times are epoch ms numbers by default. */
  async query(q: string, opts: { epoch?: Precision } = {}): Promise<Row[]> {
    const [series = []] = await this.queryRaw(q, opts);
    return rowsOf(series);
  }

  async createDatabase(): Promise<void> {
    await this.queryRaw(`CREATE DATABASE ${quoteIdent(this.db)}`, { db: null });
  }

  async dropDatabase(): Promise<void> {
    await this.queryRaw(`DROP DATABASE ${quoteIdent(this.db)}`, { db: null });
  }
}

export function rowsOf(series: readonly Series[]): Row[] {
  const rows: Row[] = [];
  for (const s of series) {
    for (const v of s.values) {
      const row: Row = { ...(s.tags ?? {}) };
      s.columns.forEach((c, i) => (row[c] = v[i]));
      rows.push(row);
    }
  }
  return rows;
}

/** Quotes an InfluxQL identifier ("name"). */
export function quoteIdent(name: string): string {
  return `"${name.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** Quotes an InfluxQL string literal ('value'), for tag values in WHERE clauses. */
export function quoteString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
