import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * What every payment-provider simulator shares (docs/topup.md, "Simulators"): a local HTTP
 * server speaking the provider's API, the orders it was asked to create, and notifications
 * it signs with keys generated when the simulator starts, which a test can deliver once,
 * many times at once, late, until acknowledged, or tampered with.
 */

export interface SimOrder {
  readonly id: string;
  fen: number;
  readonly currency: string;
  readonly notifyUrl: string;
  readonly description: string;
  readonly expiresAt: number;
  /** The provider's own id (Stripe session). */
  providerId?: string;
  status: 'pending' | 'paid' | 'closed';
  transaction?: string;
  paidFen?: number;
  paidAt?: number;
  refunds: { refundNo: string; refundId: string; fen: number; at: number }[];
}

/** A signed notification, ready to POST to the merchant's notify URL. */
export interface SimNotification {
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

export interface SimOptions {
  /** Clock for signatures and payment times. @defaultValue Date.now */
  readonly now?: () => number;
}

export abstract class ProviderSim {
  readonly orders = new Map<string, SimOrder>();
  /** Every request the merchant made, for assertions (method path). */
  readonly requests: string[] = [];
  protected server?: Server;
  url = '';
  readonly now: () => number;
  private seq = 0;

  constructor(opts: SimOptions = {}) {
    this.now = opts.now ?? Date.now;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        this.requests.push(`${req.method} ${(req.url ?? '').split('?')[0]}`);
        Promise.resolve(this.handle(req, body, res)).catch((err: Error) => {
          if (!res.headersSent) {
            res.writeHead(500, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ error: err.message }));
          }
        });
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', () => resolve()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    this.onStart();
    return this;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server.closeAllConnections();
  }

  protected onStart(): void {}
  protected abstract handle(req: IncomingMessage, body: Buffer, res: ServerResponse): Promise<void> | void;

  /**
   * The payer pays: the order becomes paid at the provider (amount `fen` if given, to
   * simulate a tampered or wrong amount) and the signed notification is returned, not sent.
   */
  abstract pay(orderId: string, opts?: { fen?: number; at?: number }): SimNotification;

  /** The provider's statement file of one day, in its downloadable format. */
  abstract statementFile(date: string): Buffer;

  /** A unique id with a prefix. */
  protected id(prefix: string, digits = 28): string {
    this.seq++;
    return `${prefix}${String(this.now()).slice(-10)}${String(this.seq).padStart(4, '0')}${randomBytes(8).readBigUInt64BE().toString().padStart(20, '0')}`.slice(0, prefix.length + digits);
  }

  order(id: string): SimOrder {
    const o = this.orders.get(id);
    if (!o) throw new Error(`simulator has no order ${id}`);
    return o;
  }
}

/** POSTs a notification once; resolves the merchant's status and body. */
export async function deliver(n: SimNotification): Promise<{ status: number; body: string }> {
  try {
    const r = await fetch(n.url, { method: 'POST', headers: n.headers, body: n.body, signal: AbortSignal.timeout(15_000) });
    return { status: r.status, body: await r.text() };
  } catch (err) {
    // A merchant that died mid-request: the provider sees a failed delivery and retries.
    return { status: 0, body: (err as Error).message };
  }
}

/** The same notification `times` times, all at once (a provider's retry racing the first delivery). */
export async function deliverConcurrently(n: SimNotification, times: number): Promise<{ status: number; body: string }[]> {
  return Promise.all(Array.from({ length: times }, () => deliver(n)));
}

/**
 * As a provider does: deliver until the merchant acknowledges with a 2xx, waiting between
 * attempts (WeChat retries at 15 s, 15 s, 30 s, ...; compressed here). Returns every attempt.
 */
export async function deliverUntilAcknowledged(n: SimNotification, opts: { attempts?: number; intervalMs?: number; onAttempt?: (i: number) => Promise<void> | void } = {}): Promise<{ status: number; body: string }[]> {
  const out: { status: number; body: string }[] = [];
  for (let i = 0; i < (opts.attempts ?? 10); i++) {
    await opts.onAttempt?.(i);
    const r = await deliver(n);
    out.push(r);
    if (r.status >= 200 && r.status < 300) break;
    await new Promise((res) => setTimeout(res, opts.intervalMs ?? 200));
  }
  return out;
}

/** The notification with one byte of its body changed (signature left as it was). */
export function tamperBody(n: SimNotification): SimNotification {
  const b = Buffer.from(n.body);
  // Change a digit if there is one, else the last byte: the content must differ.
  let i = b.findIndex((c) => c >= 0x31 && c <= 0x39);
  if (i < 0) i = b.length - 1;
  b[i] = b[i] === 0x39 ? 0x31 : b[i] + 1;
  return { ...n, body: b };
}

/** The notification with its signature replaced by another valid-looking one. */
export function tamperSignature(n: SimNotification, headerName: string, change: (v: string) => string): SimNotification {
  return { ...n, headers: { ...n.headers, [headerName]: change(n.headers[headerName]) } };
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(text);
}
