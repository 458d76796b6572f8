import type { RedisClient } from '../lib/redis.ts';
import type { Site } from '../core/index.ts';
import { moneyText, paymentContent, paymentTimeProblem } from '../core/index.ts';
import type { InfluxV1 } from '../influx/client.ts';
import { InfluxError, quoteString } from '../influx/client.ts';
import { eventLine } from '../influx/event-lines.ts';
import { paymentLine as ledgerLine } from '../influx/payment-lines.ts';
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
  /** The clock that bounds a payment's time (no more than 5 minutes ahead). @defaultValue Date.now */
  readonly now?: () => number;
}

/**
 * What the index stores per reference: the recorded payment, `instant|account|fen`. Only
 * (account, fen) decide whether a later call is the same payment (billing.md section 1,
 * amended by issue 11); the instant is kept so that a retry re-writes the very same point.
 */
function stored(p: PaymentInput): string {
  return `${p.time}|${p.account}|${p.fen}`;
}

function parseStored(text: string): { time: number; account: string; fen: number } {
  const [time, account, fen] = text.split('|');
  return { time: Number(time), account, fen: Number(fen) };
}

function describe(text: string): string {
  const p = parseStored(text);
  return `${moneyText(p.fen)} to ${p.account} at ${new Date(p.time).toISOString()}`;
}

// Returns {state, stored}: 'new' when this call reserved the reference, else what is stored.
const RESERVE = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return {'new', ARGV[2]}
end
return {'existing', cur}
`;

// Releases a reservation only if it still holds our content (a ledger write that certainly failed).
const RELEASE = `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
`;

export function paymentLine(site: string, p: PaymentInput): string {
  return ledgerLine(site, p);
}

function validate(site: Site, p: PaymentInput, now: number): void {
  const bad = (m: string) => new PaymentRejectedError('invalid', m);
  if (!site.accounts.some((a) => a.id === p.account)) throw bad(`unknown account ${JSON.stringify(p.account)} for site ${site.id}`);
  if (!Number.isSafeInteger(p.fen) || p.fen === 0) throw bad(`amount must be a non-zero whole number of fen, got ${p.fen}`);
  if (!p.reference || p.reference.length > 200 || /[\n\r]/.test(p.reference)) throw bad('reference must be 1..200 characters on one line');
  if (!Number.isSafeInteger(p.time)) throw bad(`payment time must be epoch milliseconds, got ${p.time}`);
  // Not in the future (it would be listed but never credited) nor before the site's first day.
  const problem = paymentTimeProblem(site, p.time, now);
  if (problem) throw bad(problem);
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
 * Records a payment: resolves once it is durable in the ledger. The same reference with the
 * same account and amount again resolves 'duplicate' whatever its time (a client that
 * retries a payment it sent without a time stamps it "now" again), and re-writes the point
 * of the payment as first recorded, so a first attempt whose write is still in flight or
 * was lost is completed before the answer: a client is never told "duplicate" for money
 * that is not in the ledger, and never told "refused" for money that is. A different
 * account or amount under a taken reference throws PaymentRejectedError('conflict'); server
 * faults throw the InfluxError or Redis error (retryable: calling again is always safe).
 */
export async function recordPayment(deps: PaymentDeps, input: PaymentInput): Promise<RecordedPayment> {
  const { site, influx, redis } = deps;
  validate(site, input, (deps.now ?? Date.now)());
  const key = redisKeys(deps.keyPrefix, site.id).payments;
  const mine = stored(input);
  const ledger = await ledgerContent(influx, site.id, input.reference);
  if (ledger !== undefined) await redis.hsetnx(key, input.reference, ledger);
  const [state, current] = (await redis.eval(RESERVE, 1, key, input.reference, mine)) as [string, string];
  // The ledger is the truth when it has the reference (Redis may have lost its last second).
  const truth = ledger ?? current;
  const recorded = parseStored(truth);
  if (paymentContent(recorded) !== paymentContent(input)) {
    const message = `payment reference ${JSON.stringify(input.reference)} is already used by ${describe(truth)}; refusing ${describe(mine)} (payment_conflict)`;
    // The data-quality flag of billing.md section 1, as an event the managers see (never
    // shown to tenants: it names another payment); best effort, the refusal is the answer
    // either way. Keyed by the refused payment's instant.
    await influx
      .write(eventLine(site.id, { kind: 'payment_conflict', account: input.account, detail: message, time: input.time }))
      .catch(() => undefined);
    throw new PaymentRejectedError('conflict', message);
  }
  // The payment as first recorded (a retry's own time is not it).
  const payment: PaymentInput = { account: recorded.account, fen: recorded.fen, reference: input.reference, time: recorded.time };
  try {
    await influx.write(paymentLine(site.id, payment));
  } catch (err) {
    // Free the reference only when the write certainly did not land (InfluxDB refused it,
    // or the connection never opened), so a corrected retry is not refused. After a timeout
    // the point may still land: the reservation stays, and the same payment retried
    // completes it (same point, credited once) while a different one is refused.
    const certain = err instanceof InfluxError && (err.notSent || (err.status !== undefined && err.status >= 400 && err.status < 500));
    if (state === 'new' && certain) await redis.eval(RELEASE, 1, key, input.reference, mine).catch(() => undefined);
    throw err;
  }
  return { ...payment, site: site.id, status: state === 'new' && ledger === undefined ? 'recorded' : 'duplicate' };
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
