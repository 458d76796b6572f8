import { throwFirst } from '../lib/redis.ts';
import type { RedisClient } from '../lib/redis.ts';
import type { PaymentKind, Site } from '../core/index.ts';
import { moneyText, PAYMENT_KINDS, paymentContent, paymentKindProblem, paymentTimeProblem } from '../core/index.ts';
import type { InfluxV1 } from '../influx/client.ts';
import { InfluxError, quoteString } from '../influx/client.ts';
import { eventLine } from '../influx/event-lines.ts';
import { stampEventWrites } from './api-stamps.ts';
import { paymentLine as ledgerLine } from '../influx/payment-lines.ts';
import { F, M, T } from '../influx/schema.ts';
import { MAX_TIME_MS, redisKeys } from './keys.ts';
import { announceNewData } from '../lib/new-data-channel.ts';

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
  /**
   * Integer fen, never 0; negative for a refund or correction. A transfer moves this many
   * fen (> 0) from `account` to `to`.
   */
  readonly fen: number;
  /** billing.md section 11: payment (default), refund (< 0), deposit (held apart), transfer. */
  readonly kind?: PaymentKind;
  /** Transfers only: the receiving account. */
  readonly to?: string;
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
 * What the index stores per reference: the recorded payment, `instant|account|fen`, plus
 * `|kind` for other kinds than a plain payment (billing.md section 11; a transfer
 * `|transfer>TO`), so references stored before kinds existed read as plain payments. Only
 * (account, fen, kind, and a transfer's receiving account) decide whether a later call is
 * the same payment (billing.md section 1, amended by issue 11); the instant is kept so that
 * a retry re-writes the very same point.
 */
function stored(p: PaymentInput): string {
  const kind = p.kind ?? 'payment';
  if (kind === 'payment') return `${p.time}|${p.account}|${p.fen}`;
  return `${p.time}|${p.account}|${p.fen}|${kind === 'transfer' ? `transfer>${p.to}` : kind}`;
}

function parseStored(text: string): { time: number; account: string; fen: number; kind?: PaymentKind; to?: string } {
  const [time, account, fen, kind] = text.split('|');
  const base = { time: Number(time), account, fen: Number(fen) };
  if (!kind) return base;
  if (kind.startsWith('transfer>')) return { ...base, kind: 'transfer', to: kind.slice('transfer>'.length) };
  return { ...base, kind: kind as PaymentKind };
}

/** The content compared (billing.md section 1): a transfer's includes where it goes. */
function contentOf(p: { account: string; fen: number; kind?: PaymentKind; to?: string }): string {
  return `${paymentContent(p)}${p.kind === 'transfer' ? `>${p.to}` : ''}`;
}

function describe(text: string): string {
  const p = parseStored(text);
  const at = new Date(p.time).toISOString();
  if (p.kind === 'transfer') return `a transfer of ${moneyText(p.fen)} from ${p.account} to ${p.to} at ${at}`;
  return `${moneyText(p.fen)}${p.kind ? ` (${p.kind})` : ''} to ${p.account} at ${at}`;
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

function ledgerPoint(site: string, account: string, reference: string, kind: PaymentKind, fen: number, time: number): string {
  return ledgerLine(site, { account, reference, kind, fen, time });
}

/** The ledger points of a payment: one, or a transfer's two (out of `account`, into `to`) under one reference. */
export function paymentLines(site: string, p: PaymentInput): string[] {
  const kind = p.kind ?? 'payment';
  if (kind === 'transfer') return [ledgerPoint(site, p.account, p.reference, kind, -p.fen, p.time), ledgerPoint(site, p.to!, p.reference, kind, p.fen, p.time)];
  return [ledgerPoint(site, p.account, p.reference, kind, p.fen, p.time)];
}

export function paymentLine(site: string, p: PaymentInput): string {
  return paymentLines(site, p)[0];
}

function validate(site: Site, p: PaymentInput, now: number): void {
  const bad = (m: string) => new PaymentRejectedError('invalid', m);
  if (!site.accounts.some((a) => a.id === p.account)) throw bad(`unknown account ${JSON.stringify(p.account)} for site ${site.id}`);
  if (!Number.isSafeInteger(p.fen) || p.fen === 0) throw bad(`amount must be a non-zero whole number of fen, got ${p.fen}`);
  const kind = p.kind ?? 'payment';
  if (!(PAYMENT_KINDS as readonly string[]).includes(kind)) throw bad(`kind must be one of ${PAYMENT_KINDS.join(', ')}, got ${JSON.stringify(kind)}`);
  if (kind === 'transfer') {
    if (!(p.fen > 0)) throw bad('a transfer moves a positive amount from the account to `to`');
    if (!p.to || !site.accounts.some((a) => a.id === p.to)) throw bad(`a transfer needs a known receiving account, got ${JSON.stringify(p.to)}`);
    if (p.to === p.account) throw bad('a transfer needs two different accounts');
  } else {
    if (p.to !== undefined) throw bad('only a transfer has a receiving account');
    const problem = paymentKindProblem(kind, p.fen);
    if (problem) throw bad(problem);
  }
  if (!p.reference || p.reference.length > 200 || /[\n\r]/.test(p.reference)) throw bad('reference must be 1..200 characters on one line');
  if (!Number.isSafeInteger(p.time)) throw bad(`payment time must be epoch milliseconds, got ${p.time}`);
  // Not in the future (it would be listed but never credited) nor before the site's first day.
  const problem = paymentTimeProblem(site, p.time, now);
  if (problem) throw bad(problem);
}

/** The ledger's record of a reference, if any (survives a Redis that lost its last second). */
async function ledgerContent(influx: InfluxV1, site: string, reference: string): Promise<string | undefined> {
  const rows = await influx.query(
    `SELECT ${F.fen} FROM ${M.payment} WHERE ${T.site} = ${quoteString(site)} AND ${T.reference} = ${quoteString(reference)} GROUP BY ${T.account}, ${T.kind}`,
  );
  if (rows.length === 0) return undefined;
  rows.sort((a, b) => (a.time as number) - (b.time as number) || (a.fen as number) - (b.fen as number));
  const r = rows[0];
  const kind = ((r.kind as string) || 'payment') as PaymentKind;
  if (kind === 'transfer') {
    const into = rows.find((x) => x.kind === 'transfer' && x.time === r.time && (x.fen as number) === -(r.fen as number));
    return stored({ time: r.time as number, account: r.account as string, fen: -(r.fen as number), reference, kind, to: (into?.account as string) ?? '?' });
  }
  return stored({ time: r.time as number, account: r.account as string, fen: r.fen as number, reference, kind });
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
  if (contentOf(recorded) !== contentOf(input)) {
    const message = `payment reference ${JSON.stringify(input.reference)} is already used by ${describe(truth)}; refusing ${describe(mine)} (payment_conflict)`;
    // The data-quality flag of billing.md section 1, as an event the managers see (never
    // shown to tenants: it names another payment); best effort, the refusal is the answer
    // either way. Keyed by the refused payment's instant.
    await influx
      .write(eventLine(site.id, { kind: 'payment_conflict', account: input.account, detail: message, time: input.time }))
      .then(() => stampEventWrites(redis, deps.keyPrefix, site.id, [input.account])) // the API's stored alerts (workers/api-stamps.ts)
      .catch(() => undefined);
    throw new PaymentRejectedError('conflict', message);
  }
  // The payment as first recorded (a retry's own time is not it).
  const payment: PaymentInput = { account: recorded.account, fen: recorded.fen, reference: input.reference, time: recorded.time, ...(recorded.kind ? { kind: recorded.kind } : {}), ...(recorded.to ? { to: recorded.to } : {}) };
  try {
    // A transfer's two sides go in one write request (one WAL entry): never one without the other.
    await influx.write(paymentLines(site.id, payment));
  } catch (err) {
    // Free the reference only when the write certainly did not land (InfluxDB refused it,
    // or the connection never opened), so a corrected retry is not refused. After a timeout
    // the point may still land: the reservation stays, and the same payment retried
    // completes it (same point, credited once) while a different one is refused.
    const certain = err instanceof InfluxError && (err.notSent || (err.status !== undefined && err.status >= 400 && err.status < 500));
    if (state === 'new' && certain) await redis.eval(RELEASE, 1, key, input.reference, mine).catch(() => undefined);
    throw err;
  }
  // The API's stored statements of the account(s) are recomputed (api/data/site-versions.ts),
  // and the balance runs on it now, not at its next tick (best effort: the tick is the net).
  const accounts = payment.kind === 'transfer' ? [payment.account, payment.to!] : [payment.account];
  const keys = redisKeys(deps.keyPrefix, site.id);
  const bump = redis.multi();
  for (const a of accounts) bump.hincrby(keys.ledgerVersions, a, 1);
  // The site's counter: the balance job's payment sums are read again (workers/balance.ts).
  bump.incr(keys.ledgerVersion);
  throwFirst(await bump.exec());
  await announceNewData(redis, deps.keyPrefix, site.id, 'payment');
  return { ...payment, site: site.id, status: state === 'new' && ledger === undefined ? 'recorded' : 'duplicate' };
}

export interface LedgerPayment {
  readonly account: string;
  readonly reference: string;
  readonly fen: number;
  readonly time: number;
  /** Absent for a plain payment. */
  readonly kind?: PaymentKind;
}

/** Every ledger line of a site in [fromMs, toMs) (a transfer's two sides each), sorted by time then reference. */
export async function loadPayments(influx: InfluxV1, site: string, fromMs = 0, toMs = MAX_TIME_MS): Promise<LedgerPayment[]> {
  const rows = await influx.query(
    `SELECT ${F.fen} FROM ${M.payment} WHERE ${T.site} = ${quoteString(site)} AND time >= ${fromMs}ms AND time < ${toMs}ms GROUP BY ${T.account}, ${T.reference}, ${T.kind}`,
  );
  return rows
    // A plain payment has no kind (billing.md section 11: like every point written before kinds).
    .map((r) => ({ account: r.account as string, reference: r.reference as string, fen: r.fen as number, time: r.time as number, ...(r.kind ? { kind: r.kind as PaymentKind } : {}) }))
    .sort((a, b) => a.time - b.time || (a.reference < b.reference ? -1 : a.reference > b.reference ? 1 : 0));
}
