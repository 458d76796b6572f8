import { Point } from '@influxdata/influxdb-client';
import type { RedisClient } from '../lib/redis.ts';
import type { Site } from '../core/site/index.ts';
import { moneyText } from '../core/units.ts';
import type { InfluxV1 } from '../influx/client.ts';
import { quoteString } from '../influx/client.ts';
import { F, M, T } from '../influx/schema.ts';
import { MAX_TIME_MS, redisKeys } from './keys.ts';

/**
 * The one way a payment enters submeter (the API and `submeter pay` both call
 * recordPayment). Design (docs/workers.md, "Payments"):
 *
 * - Redis holds the idempotency index: an atomic Lua check-and-set of reference -> content,
 *   so two API processes racing with one reference cannot both win.
 * - InfluxDB holds the ledger: the `payment` point, keyed by (site, account, reference,
 *   instant), so writing it again is a no-op. influxd fsyncs its WAL before answering 204,
 *   so once recordPayment resolves the payment survives a crash of either server; Redis
 *   (AOF everysec) may lose its last second, which is why the ledger is checked first.
 * - The balance worker reads payments from the ledger only, so a reservation whose ledger
 *   write failed moves no money; it is released, or completed by a retry of the same payment.
 */

export interface PaymentInput {
  readonly account: string;
  /** Integer fen; negative for a refund or correction, never 0. */
  readonly fen: number;
  /** The payer's unique reference (bank or gateway transaction id). */
  readonly reference: string;
  /** Epoch ms of the payment's instant. */
  readonly time: number;
}

export interface RecordedPayment extends PaymentInput {
  readonly site: string;
  /** 'recorded' the first time; 'duplicate' when the same payment was already recorded (nothing changes). */
  readonly status: 'recorded' | 'duplicate';
}

/** A payment refused because its reference is taken by different content, or the input is invalid. Not retryable. */
export class PaymentRejectedError extends Error {
  readonly code: 'conflict' | 'invalid';
  constructor(code: 'conflict' | 'invalid', message: string) {
    super(message);
    this.name = 'PaymentRejectedError';
    this.code = code;
  }
}

export interface PaymentDeps {
  readonly site: Site;
  readonly influx: InfluxV1;
  readonly redis: RedisClient;
  /** Redis key prefix (tests isolate with a random one). @defaultValue 'submeter' */
  readonly keyPrefix?: string;
}

/** Canonical content of a payment (billing.md section 1: instant, account, numeric amount). */
function contentOf(p: PaymentInput): string {
  return `${p.time}|${p.account}|${p.fen}`;
}

function describe(content: string): string {
  const [time, account, fen] = content.split('|');
  return `${moneyText(Number(fen))} to ${account} at ${new Date(Number(time)).toISOString()}`;
}

// Returns {state, content}: 'new' when this call reserved the reference, else what is stored.
const RESERVE = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return {'new', ARGV[2]}
end
return {'existing', cur}
`;

// Releases a reservation only if it still holds our content (a failed ledger write).
const RELEASE = `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
`;

export function paymentLine(site: string, p: PaymentInput): string {
  return new Point(M.payment).tag(T.site, site).tag(T.account, p.account).tag(T.reference, p.reference).intField(F.fen, p.fen).timestamp(p.time).toLineProtocol()!;
}

function validate(site: Site, p: PaymentInput): void {
  const bad = (m: string) => new PaymentRejectedError('invalid', m);
  if (!site.accounts.some((a) => a.id === p.account)) throw bad(`unknown account ${JSON.stringify(p.account)} for site ${site.id}`);
  if (!Number.isSafeInteger(p.fen) || p.fen === 0) throw bad(`amount must be a non-zero whole number of fen, got ${p.fen}`);
  if (!p.reference || p.reference.length > 200 || /[\n\r]/.test(p.reference)) throw bad('reference must be 1..200 characters on one line');
  if (!Number.isSafeInteger(p.time) || p.time < 0) throw bad(`payment time must be epoch milliseconds, got ${p.time}`);
}

/** The ledger's record of a reference, if any (survives a Redis that lost its last second). */
async function ledgerContent(influx: InfluxV1, site: string, reference: string): Promise<string | undefined> {
  const rows = await influx.query(
    `SELECT ${F.fen}, ${T.account} FROM ${M.payment} WHERE ${T.site} = ${quoteString(site)} AND ${T.reference} = ${quoteString(reference)} ORDER BY time ASC LIMIT 1`,
  );
  const r = rows[0];
  return r ? `${r.time as number}|${r.account as string}|${r.fen as number}` : undefined;
}

/**
 * Records a payment: resolves once it is durable in the ledger. The same reference with
 * the same content again resolves 'duplicate' (and re-writes the identical point, which
 * completes a first attempt that crashed half-way). A different content under a taken
 * reference throws PaymentRejectedError('conflict'); server faults throw the InfluxError
 * or Redis error (retryable: calling again with the same input is safe).
 */
export async function recordPayment(deps: PaymentDeps, input: PaymentInput): Promise<RecordedPayment> {
  const { site, influx, redis } = deps;
  validate(site, input);
  const key = redisKeys(deps.keyPrefix, site.id).payments;
  const content = contentOf(input);
  const ledger = await ledgerContent(influx, site.id, input.reference);
  if (ledger !== undefined) await redis.hsetnx(key, input.reference, ledger);
  const [state, stored] = (await redis.eval(RESERVE, 1, key, input.reference, content)) as [string, string];
  if (stored !== content) {
    const message = `payment reference ${JSON.stringify(input.reference)} is already used by ${describe(stored)}; refusing ${describe(content)} (payment_conflict)`;
    // The data-quality flag of billing.md section 1, as an event the managers see; best
    // effort (the refusal is the answer either way). Keyed by the refused payment's instant.
    await influx
      .write(new Point(M.event).tag(T.site, site.id).tag(T.kind, 'payment_conflict').tag(T.account, input.account).stringField(F.detail, message).timestamp(input.time).toLineProtocol()!)
      .catch(() => undefined);
    throw new PaymentRejectedError('conflict', message);
  }
  try {
    await influx.write(paymentLine(site.id, input));
  } catch (err) {
    // Nothing moved: free the reference so a corrected retry is not refused, unless it was
    // already there before us (a duplicate whose ledger point we were re-writing).
    if (state === 'new') await redis.eval(RELEASE, 1, key, input.reference, content).catch(() => undefined);
    throw err;
  }
  return { ...input, site: site.id, status: state === 'new' && ledger === undefined ? 'recorded' : 'duplicate' };
}

export interface LedgerPayment {
  readonly account: string;
  readonly reference: string;
  readonly fen: number;
  readonly time: number;
}

/** Every payment of a site in [fromMs, toMs) from the ledger, sorted by time then reference. */
export async function loadPayments(influx: InfluxV1, site: string, fromMs = 0, toMs = MAX_TIME_MS): Promise<LedgerPayment[]> {
  const rows = await influx.query(
    `SELECT ${F.fen} FROM ${M.payment} WHERE ${T.site} = ${quoteString(site)} AND time >= ${fromMs}ms AND time < ${toMs}ms GROUP BY ${T.account}, ${T.reference}`,
  );
  return rows
    .map((r) => ({ account: r.account as string, reference: r.reference as string, fen: r.fen as number, time: r.time as number }))
    .sort((a, b) => a.time - b.time || (a.reference < b.reference ? -1 : a.reference > b.reference ? 1 : 0));
}
