/**
 * The one InfluxDB adapter (style.md practice 2): the v1 HTTP API only, so the same code
 * runs on InfluxDB 1.x, 2.x (DBRP mapping) and 3.x (protocols.md, "InfluxDB"):
 * line protocol `POST /write?db=&precision=`, InfluxQL `POST /query?db=&q=`.
 * Build lines with `Point` from @influxdata/influxdb-client (see lines.ts).
 */

export interface InfluxOptions {
  /** Base URL, e.g. http://127.0.0.1:8096 */
  readonly url: string;
  /** Database (1.x) or bucket name through its DBRP mapping (2.x, 3.x). */
  readonly db: string;
  /** 2.x/3.x token, sent as `Authorization: Token <token>`; never logged. */
  readonly token?: string;
  /** Per-request timeout. @defaultValue 10000 */
  readonly timeoutMs?: number;
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
  private readonly timeoutMs: number;

  constructor(opts: InfluxOptions) {
    if (!/^https?:\/\//.test(opts.url)) throw new Error(`influx url must start with http:// or https://, got ${JSON.stringify(opts.url)}`);
    if (!opts.db) throw new Error('influx db must be a non-empty name');
    this.url = opts.url.replace(/\/+$/, '');
    this.db = opts.db;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.headers = opts.token ? { Authorization: `Token ${opts.token}` } : {};
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

  /** Runs InfluxQL statements; returns the series of each statement's result. */
  async queryRaw(q: string, opts: { epoch?: Precision; db?: string | null } = {}): Promise<Series[][]> {
    const params = new URLSearchParams({ q, epoch: opts.epoch ?? 'ms' });
    const db = opts.db === undefined ? this.db : opts.db;
    if (db) params.set('db', db);
    let res: Response;
    try {
      res = await fetch(`${this.url}/query`, {
        method: 'POST',
        headers: { ...this.headers, 'Content-Type': 'application/x-www-form-urlencoded' },
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
