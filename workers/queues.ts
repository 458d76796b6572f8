import { Queue, UnrecoverableError } from 'bullmq';
import type { ConnectionOptions, JobsOptions } from 'bullmq';
import { z } from 'zod';
import { isLocalDate } from '../core/index.ts';

/**
 * The one Redis/BullMQ module (style.md practice 2): queue names, payload types, job
 * options and the schedulers. Processors import their payload schema from here; nothing
 * else spells a queue name.
 *
 * Partitioning: every job names its site, and rollup jobs a meter batch of the site, so
 * any number of worker processes can share the queues; a site's settlement runs as one
 * deduplicated job per site (settle-requests.ts), so its days never run in parallel.
 */

export const QUEUE = {
  /** New raw readings -> 15-minute TOU buckets, per site and meter batch. */
  rollup: 'rollup',
  /** A site's due (or dirty) days -> charge lines and site summary. */
  settlement: 'settlement',
  /** Live balance, cost rate and hours to zero per account. */
  balance: 'balance',
  /** Low balance, meter offline, abnormal loss and data-quality events. */
  alerts: 'alerts',
  /** Tells a tenant about an alert (email, webhook); one job per event, retried. */
  notify: 'notify',
  /** Prepaid enforcement (issue 13): the relay decision per account, after each balance cycle. */
  enforcement: 'enforcement',
  /** Online top-up: pending orders queried from their provider, and the daily statement reconciliation (docs/topup.md). */
  topup: 'topup',
} as const;
export type QueueName = (typeof QUEUE)[keyof typeof QUEUE];

const siteId = z.string().min(1).max(200);

export const RollupJob = z.object({
  site: siteId,
  /** This job's batch of the site's meters (meters sorted by id, round-robin into `batches`). */
  batch: z.number().int().min(0),
  batches: z.number().int().min(1),
  /**
   * Roll up only the batch's meters marked for it (workers/rollup-dirty.ts: announced
   * meters, `*` for all). Absent (a job added by hand, one queued by an older worker):
   * every meter of the batch, as before.
   */
  marked: z.boolean().optional(),
});
export type RollupJob = z.infer<typeof RollupJob>;

export const SettlementJob = z.object({
  site: siteId,
  /** Settle (or re-settle) this local day; without it, every due day not yet settled. */
  day: z.string().refine(isLocalDate, 'must be a local date YYYY-MM-DD').optional(),
  /** Why a settled day is recomputed; written on its adjustment lines. */
  reason: z.string().max(500).optional(),
});
export type SettlementJob = z.infer<typeof SettlementJob>;

export const BalanceJob = z.object({ site: siteId });
export type BalanceJob = z.infer<typeof BalanceJob>;

export const AlertsJob = z.object({ site: siteId });
export type AlertsJob = z.infer<typeof AlertsJob>;

export const EnforcementJob = z.object({ site: siteId });
export type EnforcementJob = z.infer<typeof EnforcementJob>;

/**
 * Relay commands (issue 13): the workers decide and enqueue, the collector that owns the
 * meters' bus executes and reports the read-back. One queue per site, its keys under the
 * site's hash tag (`bull:{site}:relay:...`), so only that site's collector takes its jobs.
 * Not in QUEUE: no worker process runs it.
 */
export const RELAY_QUEUE = 'relay';

export const RelayJob = z.object({
  site: siteId,
  account: z.string().min(1),
  /** open = trip (power off), closed = close (power on). */
  target: z.enum(['open', 'closed']),
  /** The wanted-state version this command carries out (lib/relay-store.ts). */
  version: z.number().int().min(1),
  meters: z.array(z.string().min(1)).min(1),
  /** The policy's reason code, and its one-line explanation. */
  reason: z.string(),
  detail: z.string(),
  /** 'policy', or the manager (role:token id) whose override caused it. */
  by: z.string(),
  /** How to close: 1CH close now, or 1BH close permitted (the tenant presses the button). */
  close: z.enum(['now', 'permit']),
  balanceFen: z.number().int().optional(),
  /** The read-back window, ms: a relay not in the target state this long after the command is a mismatch. */
  readbackMs: z.number().int().positive(),
  /** DL/T 645 command deadline after sending, ms. */
  commandValidityMs: z.number().int().positive(),
});
export type RelayJob = z.infer<typeof RelayJob>;

/** One job per (account, target state, version): a retried or repeated enqueue is the same job, never a second command. */
export function relayJobId(site: string, account: string, target: 'open' | 'closed', version: number): string {
  return ['relay', site, account, target, version].join('|');
}

/** The BullMQ prefix of a site's relay queue: the workers' prefix plus the site's hash tag. */
export function relayQueuePrefix(site: string, prefix = 'bull'): string {
  return `${prefix}:{${site}}`;
}

/**
 * A relay command retries only wire faults (no reply, bus busy), a few times: a refusal or
 * a mismatch is final at once (the executor completes the job with that status), so a wrong
 * password is reported, not retried forever. Failed jobs are kept for inspection.
 */
export const RELAY_JOB_OPTS: JobsOptions = {
  attempts: 6,
  backoff: { type: 'exponential', delay: 5000 },
  removeOnComplete: { count: 10_000 },
  removeOnFail: false,
};

export function openRelayQueue(connection: ConnectionOptions, site: string, prefix?: string): Queue {
  return new Queue(RELAY_QUEUE, { connection, prefix: relayQueuePrefix(site, prefix), defaultJobOptions: RELAY_JOB_OPTS });
}

export const NotifyJob = z.object({
  site: siteId,
  account: z.string().min(1),
  /** Event kind, e.g. low_balance. */
  kind: z.string().min(1),
  /** One job per channel, so a webhook that fails does not resend the email on retry. */
  channel: z.enum(['email', 'webhook']),
  /** Epoch ms of the event (its point time in InfluxDB). */
  time: z.number().int(),
  subject: z.string(),
  text: z.string(),
});
export type NotifyJob = z.infer<typeof NotifyJob>;

export const TopupJob = z.object({
  site: siteId,
  /** pending: query unpaid orders; reconcile: compare a provider's statement with the ledger. */
  kind: z.enum(['pending', 'reconcile']),
  /** reconcile: the statement day (default: yesterday in the provider's zone). */
  date: z.string().refine(isLocalDate, 'must be a local date YYYY-MM-DD').optional(),
  provider: z.enum(['wechat', 'alipay', 'stripe']).optional(),
});
export type TopupJob = z.infer<typeof TopupJob>;

/** BullMQ job id of a notification: one per event and channel, so a re-raised event is not sent twice (custom ids may not contain ':'). */
export function notifyJobId(j: Pick<NotifyJob, 'site' | 'account' | 'kind' | 'time' | 'channel'>): string {
  return ['notify', j.site, j.account, j.kind, j.time, j.channel].join('|');
}

/**
 * Parses a job payload; bad data never becomes right by retrying, so it is an
 * UnrecoverableError (BullMQ fails the job at once) naming the queue and the field.
 */
export function parsePayload<T>(schema: z.ZodType<T>, queue: QueueName, data: unknown): T {
  const r = schema.safeParse(data);
  if (!r.success) {
    const why = r.error.issues.map((i) => `${i.path.join('.') || '(payload)'}: ${i.message}`).join('; ');
    throw new UnrecoverableError(`bad ${queue} job payload: ${why}`);
  }
  return r.data;
}

/** Scheduling defaults; every figure is documented in docs/workers.md. */
export interface ScheduleOptions {
  /**
   * The rollup's safety tick. The rollup runs on new data (the collector and `submeter
   * import` announce it on the new-data channel, lib/new-data-channel.ts): a run with
   * nothing new costs one InfluxDB request of a statement per meter, 100,000 meters every
   * 3 s were ~33,000 statements/s. The tick only covers a lost announcement or a writer that
   * does not announce (freshness is then up to this long). @defaultValue 30000
   */
  readonly rollupEveryMs?: number;
  /**
   * The balance's tick: figures that move with time alone (cost per hour an hour after the
   * last reading, the period in force, the trailing 24 h, hours left) and a safety net. It
   * also runs after every rollup that found readings and after a payment. @defaultValue 30000
   */
  readonly balanceEveryMs?: number;
  /**
   * How long a rollup request waits for more data of the same site before it runs: a
   * collector's poll round arrives in several batches; they are rolled up together.
   * @defaultValue 1000
   */
  readonly rollupCoalesceMs?: number;
  /** @defaultValue 60000 */
  readonly alertsEveryMs?: number;
  /**
   * Minutes after each local midnight when the day is settled, so readings straddling
   * midnight (and a short collector spool) are in. Cron in the site's time zone; under an
   * hour, the tick also runs at that minute of every hour as a catch-up.
   * @defaultValue 15
   */
  readonly settlementGraceMinutes?: number;
  /**
   * Meters per rollup job. A run reads its site's recent readings in one statement, which
   * InfluxDB 1.x costs per series of the site whatever the batch, so fewer batches a site is
   * less work: at 200 a batch, 100,000 meters were 500 jobs a round and the queue never
   * caught up (docs/scaling.md). A site of up to 2,000 meters is one job. @defaultValue 2000
   */
  readonly metersPerBatch?: number;
  /** Prepaid enforcement tick (issue 13); it also runs after every balance run of a site with relays. @defaultValue balanceEveryMs */
  readonly enforcementEveryMs?: number;
}

export const DEFAULTS = {
  rollupEveryMs: 30_000,
  balanceEveryMs: 30_000,
  rollupCoalesceMs: 1000,
  alertsEveryMs: 60_000,
  settlementGraceMinutes: 15,
  metersPerBatch: 2000,
} as const;

/**
 * Scheduler ticks of the per-site jobs only ask for the site's job (requestRollup,
 * requestBalance, requestEnforcement): every run of a site's rollup batch, balance or
 * enforcement goes through one deduplicated job (BullMQ `deduplication` with
 * `keepLastIfActive`: at most one waiting and one running), so a tick, an announcement of
 * new data and a follow-up never run a site's job twice at once, and data announced while
 * one runs is taken by the one after it.
 */
export const TICK = { rollup: 'rollup-tick', balance: 'balance-tick', enforcement: 'enforcement-tick' } as const;

/**
 * Asks for a rollup run of one batch of a site (deduplicated; runs after `delayMs`).
 * `marked`: the run takes only the meters marked for it (markRollup, workers/rollup-dirty.ts).
 */
export async function requestRollup(queues: Pick<Queues, 'rollup'>, site: string, batch: number, batches: number, delayMs = 0, marked = false): Promise<void> {
  const data: RollupJob = { site, batch, batches, ...(marked ? { marked } : {}) };
  await queues.rollup.add('rollup', data, { ...JOB_OPTS, ...(delayMs > 0 ? { delay: delayMs } : {}), deduplication: { id: `rollup|${site}|${batch}/${batches}`, keepLastIfActive: true } });
}

/** Asks for a balance run of a site (deduplicated). */
export async function requestBalance(queues: Pick<Queues, 'balance'>, site: string, delayMs = 0): Promise<void> {
  const data: BalanceJob = { site };
  await queues.balance.add('balance', data, { ...JOB_OPTS, ...(delayMs > 0 ? { delay: delayMs } : {}), deduplication: { id: `balance|${site}`, keepLastIfActive: true } });
}

/** Asks for an enforcement run of a site (deduplicated). */
export async function requestEnforcement(queues: Pick<Queues, 'enforcement'>, site: string): Promise<void> {
  const data: EnforcementJob = { site };
  await queues.enforcement.add('enforcement', data, { ...JOB_OPTS, deduplication: { id: `enforcement|${site}`, keepLastIfActive: true } });
}

/** Transient faults (Redis, InfluxDB away) retry with exponential backoff; bad data does not (UnrecoverableError). */
export const JOB_OPTS: JobsOptions = {
  attempts: 12,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: { count: 100 },
  removeOnFail: { count: 1000 },
};

/** Notifications retry longer (an SMTP relay may be down for a while) and keep failures for inspection. */
export const NOTIFY_OPTS: JobsOptions = {
  attempts: 20,
  backoff: { type: 'exponential', delay: 2000 },
  removeOnComplete: { count: 1000 },
  removeOnFail: false,
};

export interface SiteRef {
  readonly id: string;
  readonly timezone: string;
  readonly meters: readonly { readonly id: string }[];
  readonly topup?: { readonly reconcileAt: string };
}

/** How often unpaid top-up orders are looked at (each is queried once older than the site's query_after). */
export const TOPUP_POLL_MS = 60_000;

/** Number of rollup batches of a site. */
export function batchCount(site: SiteRef, metersPerBatch: number = DEFAULTS.metersPerBatch): number {
  return Math.max(1, Math.ceil(site.meters.length / metersPerBatch));
}

/** The meter ids of one rollup batch: sorted ids dealt round-robin, so batches stay even as meters are added. */
export function batchMeters(site: SiteRef, batch: number, batches: number): string[] {
  const ids = site.meters.map((m) => m.id).sort();
  return ids.filter((_, i) => i % batches === batch);
}

export type Queues = Record<QueueName, Queue>;

/**
 * BullMQ prefix of one queue: the base prefix plus the queue's hash tag,
 * `bull:{settlement}`. BullMQ's Lua scripts touch every key of a queue at once, so on a
 * Redis Cluster all of them must hash to one slot; a tag per queue (rather than one for
 * all) lets the five queues sit on different primaries. The queues are shared by all
 * sites (docs/scaling.md, "Redis Cluster"). The base must not hold braces itself.
 */
export function queuePrefix(base: string | undefined, queue: QueueName): string {
  const b = base ?? 'bull';
  if (/[{}]/.test(b)) throw new Error(`queue prefix ${JSON.stringify(b)} must not contain { or }: each queue adds its own hash tag`);
  return `${b}:{${queue}}`;
}

export function openQueues(connection: ConnectionOptions, prefix?: string): Queues {
  const q = (name: QueueName, defaultJobOptions: JobsOptions) => new Queue(name, { connection, prefix: queuePrefix(prefix, name), defaultJobOptions });
  return {
    rollup: q(QUEUE.rollup, JOB_OPTS),
    settlement: q(QUEUE.settlement, JOB_OPTS),
    balance: q(QUEUE.balance, JOB_OPTS),
    alerts: q(QUEUE.alerts, JOB_OPTS),
    notify: q(QUEUE.notify, NOTIFY_OPTS),
    enforcement: q(QUEUE.enforcement, JOB_OPTS),
    topup: q(QUEUE.topup, JOB_OPTS),
  };
}

export async function closeQueues(queues: Queues): Promise<void> {
  await Promise.all(Object.values(queues).map((q) => q.close()));
}

/**
 * Creates or updates every scheduler of a site (idempotent: upsertJobScheduler keyed by a
 * stable id, so several worker processes starting at once leave one scheduler each).
 * Settlement runs on a cron in the site's own time zone; a tick settles every due day
 * not yet settled, so a missed midnight (workers down) catches up on the next one, and
 * startup also enqueues one tick.
 */
export async function upsertSchedulers(queues: Queues, site: SiteRef, opts: ScheduleOptions = {}): Promise<void> {
  const o = { ...DEFAULTS, ...opts };
  const batches = batchCount(site, o.metersPerBatch);
  for (let b = 0; b < batches; b++) {
    const data: RollupJob = { site: site.id, batch: b, batches };
    await queues.rollup.upsertJobScheduler(`rollup:${site.id}:${b}/${batches}`, { every: o.rollupEveryMs }, { name: TICK.rollup, data, opts: JOB_OPTS });
  }
  // Batches beyond the current count (the site file lost meters) must stop.
  for (const s of await queues.rollup.getJobSchedulers(0, -1)) {
    const m = /^rollup:(.+):(\d+)\/(\d+)$/.exec(s.key);
    if (m && m[1] === site.id && Number(m[3]) !== batches) await queues.rollup.removeJobScheduler(s.key);
  }
  const grace = o.settlementGraceMinutes;
  if (!Number.isInteger(grace) || grace < 0 || grace > 23 * 60) throw new Error(`settlementGraceMinutes must be an integer 0..1380, got ${grace}`);
  // At minute `grace` of every local hour: the run after midnight settles the day; the
  // others are a cheap catch-up (two small queries) for a tick lost with a Redis crash.
  const pattern = grace < 60 ? `0 ${grace} * * * *` : `0 ${grace % 60} ${Math.floor(grace / 60)} * * *`;
  // The tick only asks for the site's one settlement job (settle-requests.ts): a
  // scheduler's jobs cannot carry the deduplication that keeps a site's days in order.
  const settle: SettlementJob = { site: site.id };
  await queues.settlement.upsertJobScheduler(`settlement:${site.id}`, { pattern, tz: site.timezone }, { name: 'settle-tick', data: settle, opts: JOB_OPTS });
  const bal: BalanceJob = { site: site.id };
  await queues.balance.upsertJobScheduler(`balance:${site.id}`, { every: o.balanceEveryMs }, { name: TICK.balance, data: bal, opts: JOB_OPTS });
  const al: AlertsJob = { site: site.id };
  await queues.alerts.upsertJobScheduler(`alerts:${site.id}`, { every: o.alertsEveryMs }, { name: 'alerts', data: al, opts: JOB_OPTS });
  // Enforcement on the balance cadence: a payment reconnects within one balance cycle.
  const en: EnforcementJob = { site: site.id };
  await queues.enforcement.upsertJobScheduler(`enforcement:${site.id}`, { every: o.enforcementEveryMs ?? o.balanceEveryMs }, { name: TICK.enforcement, data: en, opts: JOB_OPTS });
  if (site.topup) {
    const pending: TopupJob = { site: site.id, kind: 'pending' };
    await queues.topup.upsertJobScheduler(`topup-pending:${site.id}`, { every: TOPUP_POLL_MS }, { name: 'topup-pending', data: pending, opts: JOB_OPTS });
    // Providers publish yesterday's statement after about 10:00 China time (docs/topup.md).
    const [hh, mm] = site.topup.reconcileAt.split(':').map(Number);
    const rec: TopupJob = { site: site.id, kind: 'reconcile' };
    await queues.topup.upsertJobScheduler(`topup-reconcile:${site.id}`, { pattern: `0 ${mm} ${hh} * * *`, tz: site.timezone }, { name: 'topup-reconcile', data: rec, opts: JOB_OPTS });
  } else {
    await queues.topup.removeJobScheduler(`topup-pending:${site.id}`);
    await queues.topup.removeJobScheduler(`topup-reconcile:${site.id}`);
  }
}

export { UnrecoverableError };
