import type { RedisClient } from '../lib/redis.ts';
import { redisKeys } from './keys.ts';
import { JOB_OPTS, SettlementJob } from './queues.ts';
import type { Queues } from './queues.ts';

/**
 * How a site's days get settled one after the other, at the speed of the work.
 *
 * Before: every request to settle a day again was a job of its own, and the jobs of one
 * site fought over the site's settlement lock; the losers failed and backed off
 * exponentially (a month's import of a 6-meter site took ~14 minutes to settle, attempt
 * 10 seen). Now:
 *
 * - A request (late data, a meter back from silence, an import) records the day in the
 *   site's Redis hash `settle-requests` (day -> "seq|reason"), then asks for the site's
 *   one settlement job.
 * - That job is deduplicated per site (BullMQ `deduplication` with `keepLastIfActive`):
 *   while one is waiting, more requests add nothing; while one is running, one follow-up
 *   is kept and started when it finishes. So one settlement per site runs at a time, by
 *   construction, and a request made while it runs is never lost.
 * - The job (settlement.ts, drainSite) settles every due day not yet settled and every
 *   requested day that is due, in day order, removing a request only if it was not made
 *   again meanwhile (its seq), and looks again until none is left.
 * - The hourly cron tick and start-up only ask for that job too (`settle-tick`).
 *
 * The per-site lock stays as a guard for jobs added by hand and for a SIGKILLed holder's
 * job that BullMQ hands to another worker; it is not contended in normal operation.
 */

/** Job names on the settlement queue. */
export const SETTLE_JOB = {
  /** The site's one settlement job: due days and requested days, in order. */
  drain: 'settle',
  /** The cron tick and start-up: asks for the site's drain job. */
  tick: 'settle-tick',
} as const;

/** Where requests go: the queues, the workers' Redis and their key prefix (a WorkerContext has all three). */
export interface SettleRequestTarget {
  readonly queues: Pick<Queues, 'settlement'>;
  readonly redis: RedisClient;
  readonly keyPrefix: string;
}

/** A recorded request: the day, why, and its stored value (compared when it is completed). */
export interface SettleRequest {
  readonly day: string;
  readonly reason: string;
  readonly value: string;
}

/** The reason is stored with the line protocol string field limit of the job schema in mind. */
const MAX_REASON = 500;

/**
 * Records a request for `day`: a new seq (so a request made while the day is being
 * settled survives that settlement's completion), and the reason, joined to a pending
 * one's when they differ and both fit. KEYS: requests hash, seq counter (one site, one
 * slot). ARGV: day, reason.
 */
const RECORD = `
local seq = redis.call('INCR', KEYS[2])
local reason = ARGV[2]
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local old = string.match(cur, '^%d+|(.*)$')
  if old and old ~= '' and old ~= reason and string.find(old, reason, 1, true) == nil and #old + 2 + #reason <= ${MAX_REASON} then
    reason = old .. '; ' .. reason
  end
end
redis.call('HSET', KEYS[1], ARGV[1], seq .. '|' .. reason)
return seq`;

/** Removes a request only if it is still the one that was settled. KEYS: requests hash. ARGV: day, value. */
const COMPLETE = `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0`;

/** Deduplication id of a site's drain job. */
export function drainJobId(site: string): string {
  return `settle|${site}`;
}

/** Asks for the site's settlement job (deduplicated: at most one waiting and one running per site). */
export async function requestSiteSettlement(queues: Pick<Queues, 'settlement'>, site: string): Promise<void> {
  const data: SettlementJob = SettlementJob.parse({ site });
  await queues.settlement.add(SETTLE_JOB.drain, data, { ...JOB_OPTS, deduplication: { id: drainJobId(site), keepLastIfActive: true } });
}

/**
 * Asks for days to be settled (again) because their readings changed; the reason is
 * written on the adjustment lines. Repeating a request is harmless: the day is settled
 * once more and, with unchanged readings, writes nothing.
 */
export async function requestResettlements(target: SettleRequestTarget, site: string, days: readonly string[], reason: string): Promise<void> {
  const why = reason.length > MAX_REASON ? `${reason.slice(0, MAX_REASON - 3)}...` : reason;
  for (const day of days) SettlementJob.parse({ site, day, reason: why }); // a bad day or site is refused before anything is recorded
  const keys = redisKeys(target.keyPrefix, site);
  for (const day of days) await target.redis.eval(RECORD, 2, keys.settleRequests, keys.settleRequestSeq, day, why);
  if (days.length > 0) await requestSiteSettlement(target.queues, site);
}

/** One day: see requestResettlements. */
export function requestResettlement(target: SettleRequestTarget, site: string, day: string, reason: string): Promise<void> {
  return requestResettlements(target, site, [day], reason);
}

/** The site's recorded requests, oldest day first. */
export async function pendingSettlements(target: Pick<SettleRequestTarget, 'redis' | 'keyPrefix'>, site: string): Promise<SettleRequest[]> {
  const all = await target.redis.hgetall(redisKeys(target.keyPrefix, site).settleRequests);
  return Object.entries(all)
    .map(([day, value]) => ({ day, value, reason: value.slice(value.indexOf('|') + 1) }))
    .sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : 0));
}

/** Marks a request done unless it was made again since it was read; true when removed. */
export async function completeSettlement(target: Pick<SettleRequestTarget, 'redis' | 'keyPrefix'>, site: string, req: SettleRequest): Promise<boolean> {
  return (await target.redis.eval(COMPLETE, 1, redisKeys(target.keyPrefix, site).settleRequests, req.day, req.value)) === 1;
}
