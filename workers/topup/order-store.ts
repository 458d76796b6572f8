import { randomBytes } from 'node:crypto';
import type { RedisClient } from '../../lib/redis.ts';
import type { OrderFacts, OrderState, TopupProviderName } from '../../core/index.ts';

/**
 * Top-up orders in Redis (docs/topup.md, "Orders"). Every key of a site carries the
 * `{site}` hash tag, so a site's order, its indexes and its refunds share one cluster slot
 * and a Lua script may touch them together. A state changes only by compare-and-set on the
 * state the caller judged (core judgePayment), so two notifications racing for one order
 * flip it once. The durable record of a paid order is the payment ledger in InfluxDB; an
 * order lost with Redis's last second is found again by the daily reconciliation.
 */

export interface TopupOrder extends OrderFacts {
  readonly site: string;
  readonly created: number;
  readonly providerOrderId?: string;
  readonly qrCode?: string;
  readonly payUrl?: string;
  readonly paidAt?: number;
  /** Paid after its expiry: credited (the money arrived) and flagged. */
  readonly late: boolean;
  /** notification, query (the pending-order poll) or reconciliation. */
  readonly creditedBy?: string;
  /** Refunds asked of the provider and not yet confirmed. */
  readonly pendingRefundFen: number;
  readonly conflict?: string;
}

export interface RefundRecord {
  readonly refundNo: string;
  readonly order: string;
  readonly fen: number;
  readonly state: 'pending' | 'succeeded' | 'failed';
  readonly created: number;
  readonly reason: string;
  readonly refundId?: string;
  readonly time?: number;
  readonly detail?: string;
}

export function topupKeys(prefix: string, site: string) {
  const base = `${prefix}:{${site}}:topup`;
  return {
    order: (id: string) => `${base}:order:${id}`,
    /** zset id -> created ms: every order, newest last. */
    orders: `${base}:orders`,
    /** zset id -> created ms: orders still `created`, for the pending poll. */
    open: `${base}:open`,
    /** hash refundNo -> RefundRecord JSON. */
    refunds: `${base}:refunds`,
    /** hash "date|provider" -> reconciliation report JSON. */
    reports: `${base}:reports`,
  };
}

/** Order ids: `T` + UTC yymmddHHMMss + 10 random base32 characters (<= 32, WeChat's out_trade_no charset). */
export function newOrderId(now: number): string {
  const t = new Date(now).toISOString().replace(/\D/g, '').slice(2, 14);
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  const r = randomBytes(10);
  let s = '';
  for (const b of r) s += alphabet[b & 31];
  return `T${t}${s}`;
}

export function newRefundNo(now: number): string {
  return `R${newOrderId(now).slice(1)}`;
}

// Sets fields only if the state is still the one the caller judged; removes the order from
// the open index once it is no longer `created`.
const CAS = `
if redis.call('HGET', KEYS[1], 'state') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
if redis.call('HGET', KEYS[1], 'state') ~= 'created' then redis.call('ZREM', KEYS[2], ARGV[2]) end
return 1
`;

// Reserves a refund: paid or refunded, and what is left covers it. ARGV: refundNo, fen, record JSON.
const RESERVE_REFUND = `
local st = redis.call('HGET', KEYS[1], 'state')
if st ~= 'paid' and st ~= 'refunded' then return {0, st or 'missing'} end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return {0, 'refund number in use'} end
local left = tonumber(redis.call('HGET', KEYS[1], 'fen')) - tonumber(redis.call('HGET', KEYS[1], 'refunded_fen') or '0') - tonumber(redis.call('HGET', KEYS[1], 'pending_refund_fen') or '0')
if tonumber(ARGV[2]) > left then return {0, 'only ' .. left .. ' fen left to refund'} end
redis.call('HINCRBY', KEYS[1], 'pending_refund_fen', ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return {1, 'ok'}
`;

// Completes (succeeded) or releases (failed) a pending refund, once. ARGV: refundNo, outcome, record JSON.
const FINISH_REFUND = `
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if not cur then return 0 end
local rec = cjson.decode(cur)
if rec['state'] ~= 'pending' then return 0 end
local fen = tonumber(rec['fen'])
redis.call('HINCRBY', KEYS[1], 'pending_refund_fen', -fen)
if ARGV[2] == 'succeeded' then
  redis.call('HINCRBY', KEYS[1], 'refunded_fen', fen)
  redis.call('HSET', KEYS[1], 'state', 'refunded')
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
`;

export class OrderStore {
  private readonly k: ReturnType<typeof topupKeys>;
  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    private readonly site: string,
  ) {
    this.k = topupKeys(prefix, site);
  }

  get keys() {
    return this.k;
  }

  async create(o: Omit<TopupOrder, 'refundedFen' | 'pendingRefundFen' | 'late' | 'state'>): Promise<void> {
    const fields: Record<string, string> = {
      id: o.id,
      site: o.site,
      account: o.account,
      provider: o.provider,
      fen: String(o.fen),
      currency: o.currency,
      state: 'created',
      created: String(o.created),
      expires_at: String(o.expiresAt),
      refunded_fen: '0',
      pending_refund_fen: '0',
      ...(o.providerOrderId ? { provider_order: o.providerOrderId } : {}),
      ...(o.qrCode ? { qr_code: o.qrCode } : {}),
      ...(o.payUrl ? { pay_url: o.payUrl } : {}),
    };
    await this.redis.multi().hset(this.k.order(o.id), fields).zadd(this.k.orders, o.created, o.id).zadd(this.k.open, o.created, o.id).exec();
  }

  async get(id: string): Promise<TopupOrder | undefined> {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) return undefined;
    const h = await this.redis.hgetall(this.k.order(id));
    return h.id ? fromHash(h) : undefined;
  }

  async many(ids: readonly string[]): Promise<Map<string, TopupOrder>> {
    const out = new Map<string, TopupOrder>();
    const valid = [...new Set(ids)].filter((id) => /^[A-Za-z0-9_-]{1,64}$/.test(id));
    if (!valid.length) return out;
    const p = this.redis.pipeline();
    for (const id of valid) p.hgetall(this.k.order(id));
    const res = (await p.exec()) ?? [];
    res.forEach(([err, h]) => {
      const hash = h as Record<string, string>;
      if (!err && hash?.id) out.set(hash.id, fromHash(hash));
    });
    return out;
  }

  /** Compare-and-set of the state: true when this call made the change. */
  async transition(id: string, from: OrderState, fields: Record<string, string>): Promise<boolean> {
    const args = Object.entries(fields).flat();
    return (await this.redis.eval(CAS, 2, this.k.order(id), this.k.open, from, id, ...args)) === 1;
  }

  async setFields(id: string, fields: Record<string, string>): Promise<void> {
    await this.redis.hset(this.k.order(id), fields);
  }

  /** Orders still `created` that were created at or before `before` (ms). */
  async openBefore(before: number, limit = 500): Promise<string[]> {
    return this.redis.zrangebyscore(this.k.open, '-inf', before, 'LIMIT', 0, limit);
  }

  async dropOpen(id: string): Promise<void> {
    await this.redis.zrem(this.k.open, id);
  }

  async list(limit: number): Promise<TopupOrder[]> {
    const ids = await this.redis.zrevrange(this.k.orders, 0, limit - 1);
    const m = await this.many(ids);
    return ids.map((id) => m.get(id)).filter((o): o is TopupOrder => o !== undefined);
  }

  async reserveRefund(r: RefundRecord): Promise<string | undefined> {
    const [ok, why] = (await this.redis.eval(RESERVE_REFUND, 2, this.k.order(r.order), this.k.refunds, r.refundNo, r.fen, JSON.stringify(r))) as [number, string];
    return ok === 1 ? undefined : why;
  }

  async finishRefund(r: RefundRecord): Promise<boolean> {
    return (await this.redis.eval(FINISH_REFUND, 2, this.k.order(r.order), this.k.refunds, r.refundNo, r.state, JSON.stringify(r))) === 1;
  }

  async refund(refundNo: string): Promise<RefundRecord | undefined> {
    const t = await this.redis.hget(this.k.refunds, refundNo);
    return t ? (JSON.parse(t) as RefundRecord) : undefined;
  }

  async refunds(): Promise<RefundRecord[]> {
    return Object.values(await this.redis.hgetall(this.k.refunds)).map((t) => JSON.parse(t) as RefundRecord);
  }

  async saveReport(date: string, provider: TopupProviderName, report: object): Promise<void> {
    await this.redis.hset(this.k.reports, `${date}|${provider}`, JSON.stringify(report));
  }

  async reports(): Promise<unknown[]> {
    const h = await this.redis.hgetall(this.k.reports);
    return Object.keys(h)
      .sort()
      .reverse()
      .map((k) => JSON.parse(h[k]) as unknown);
  }
}

function fromHash(h: Record<string, string>): TopupOrder {
  const num = (k: string) => (h[k] !== undefined && h[k] !== '' ? Number(h[k]) : undefined);
  return {
    id: h.id,
    site: h.site,
    account: h.account,
    provider: h.provider as TopupProviderName,
    fen: Number(h.fen),
    currency: h.currency,
    state: h.state as OrderState,
    created: Number(h.created),
    expiresAt: Number(h.expires_at),
    refundedFen: num('refunded_fen') ?? 0,
    pendingRefundFen: num('pending_refund_fen') ?? 0,
    late: h.late === '1',
    ...(h.transaction ? { transaction: h.transaction } : {}),
    ...(h.provider_order ? { providerOrderId: h.provider_order } : {}),
    ...(h.qr_code ? { qrCode: h.qr_code } : {}),
    ...(h.pay_url ? { payUrl: h.pay_url } : {}),
    ...(num('paid_at') !== undefined ? { paidAt: num('paid_at') } : {}),
    ...(h.credited_by ? { creditedBy: h.credited_by } : {}),
    ...(h.conflict ? { conflict: h.conflict } : {}),
  };
}
