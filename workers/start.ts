import { UnrecoverableError, Worker } from 'bullmq';
import type { Job } from 'bullmq';
import { BillingInputError } from '../core/index.ts';
import type { Site } from '../core/index.ts';
import { InfluxError, InfluxV1 } from '../influx/client.ts';
import { createLogger } from '../lib/logger.ts';
import type { Logger } from '../lib/logger.ts';
import { createRedis, createSubscriber } from '../lib/redis.ts';
import { processAlerts } from './alerts.ts';
import { processBalance } from './balance.ts';
import { DEFAULT_TUNING, siteOf, UnknownSiteError } from './context.ts';
import { newDataChannel, parseNewDataMessage } from '../lib/new-data-channel.ts';
import type { Tuning, WorkerContext } from './context.ts';
import { createNotifier } from './notifier.ts';
import type { NotifierOptions } from './notifier.ts';
import { AlertsJob, BalanceJob, batchCount, closeQueues, DEFAULTS, EnforcementJob, JOB_OPTS, NotifyJob, openQueues, parsePayload, QUEUE, queuePrefix, requestBalance, requestEnforcement, requestRollup, RollupJob, SettlementJob, TICK, TopupJob, upsertSchedulers } from './queues.ts';
import { closeRelayQueues, processEnforcement } from './enforcement.ts';
import { createTopupProviders } from '../lib/topup/index.ts';
import type { TopupProviders } from '../lib/topup/index.ts';
import { processTopup, topupServices } from './topup/job.ts';
import type { QueueName, Queues, ScheduleOptions } from './queues.ts';
import { processRollup } from './rollup.ts';
import { allMember, announcedMarks, markRollup } from './rollup-dirty.ts';
import { runSettlementJob } from './settlement.ts';
import { requestSiteSettlement } from './settle-requests.ts';
import { siteReloadChannel, startSiteReloader } from './site-reload.ts';
import type { ReloadResult } from './site-reload.ts';

export interface StartWorkersOptions {
  /** Validated sites (lib/site-file.ts loadSiteFile). At least one. */
  readonly sites: readonly Site[];
  /** One server, or several nodes of a Redis Cluster (lib/redis.ts). @defaultValue process.env.SUBMETER_REDIS_URL ?? 'redis://127.0.0.1:6389' */
  readonly redisUrl?: string;
  /** @defaultValue url from SUBMETER_INFLUX_URL, db from SUBMETER_INFLUX_DB ('submeter') */
  readonly influx?: { readonly url: string; readonly db: string; readonly token?: string } | InfluxV1;
  /** BullMQ prefix (tests isolate with a random one). @defaultValue 'bull' */
  readonly queuePrefix?: string;
  /** Prefix of the workers' own Redis keys. @defaultValue 'submeter' */
  readonly keyPrefix?: string;
  readonly schedule?: ScheduleOptions;
  readonly tuning?: Partial<Tuning>;
  readonly notifier?: NotifierOptions;
  /** Queues this process works on; several processes may split them. @defaultValue all */
  readonly queues?: readonly QueueName[];
  /** Create/update the schedulers (one process is enough; more is harmless). @defaultValue true */
  readonly schedulers?: boolean;
  /** Jobs in flight per queue in this process. @defaultValue 2 */
  readonly concurrency?: number;
  /**
   * BullMQ job lock: a SIGKILLed worker's job is handed to another worker after about
   * this long (stalled check at half of it). @defaultValue 30000
   */
  readonly lockDurationMs?: number;
  /** Clock (tests). @defaultValue Date.now */
  readonly now?: () => number;
  readonly log?: Logger;
  /**
   * The files `sites` were read from, in the same order: they are read again when they
   * change on disk, on reloadSites() (SIGHUP in the CLI) and when the API's reload route
   * publishes (billing.md section 11, rule 9; workers/site-reload.ts).
   */
  readonly siteFiles?: readonly string[];
  /** Watch siteFiles for changes. @defaultValue true */
  readonly watchSiteFiles?: boolean;
  /**
   * Top-up provider adapters per site id (tests pass the simulators'). @defaultValue from
   * the credentials in the environment, for every site with a `topup` block
   */
  readonly topupProviders?: ReadonlyMap<string, TopupProviders>;
}

export interface RunningWorkers {
  readonly ctx: WorkerContext;
  readonly queues: Queues;
  readonly workers: readonly Worker[];
  /** Reads the site files again now (all, or one site's); nothing without siteFiles. */
  reloadSites(siteId?: string): Promise<ReloadResult[]>;
  /** Graceful stop: finishes jobs in flight, then closes connections. */
  close(): Promise<void>;
}

/**
 * Runs the workers (`submeter workers`, the demo, the tests). Every processor is thin:
 * load from InfluxDB -> core -> write back with deterministic keys, so any job may run
 * twice. Errors decide retries (style.md practice 5): bad payloads, unknown sites,
 * billing input errors and InfluxDB 4xx are UnrecoverableError; the rest back off.
 */
export async function startWorkers(opts: StartWorkersOptions): Promise<RunningWorkers> {
  if (!opts.sites.length) throw new Error('startWorkers: no sites given');
  const ids = new Set<string>();
  for (const s of opts.sites) {
    if (ids.has(s.id)) throw new Error(`startWorkers: site ${s.id} given twice`);
    ids.add(s.id);
  }
  const log = opts.log ?? createLogger('workers');
  const redisUrl = opts.redisUrl ?? process.env.SUBMETER_REDIS_URL ?? 'redis://127.0.0.1:6389';
  const influx =
    opts.influx instanceof InfluxV1
      ? opts.influx
      : new InfluxV1(opts.influx ?? { url: process.env.SUBMETER_INFLUX_URL ?? 'http://127.0.0.1:8096', db: process.env.SUBMETER_INFLUX_DB ?? 'submeter', token: process.env.SUBMETER_INFLUX_TOKEN });
  // maxRetriesPerRequest null: BullMQ's blocking commands must wait out a Redis restart.
  const redis = createRedis(redisUrl, { maxRetriesPerRequest: null });
  redis.on('error', (err) => log.warn({ err: err.message }, 'redis connection error (retrying)'));
  const queues = openQueues(redis, opts.queuePrefix);
  const ctx: WorkerContext = {
    sites: new Map(opts.sites.map((s) => [s.id, s])),
    influx,
    redis,
    queues,
    log,
    keyPrefix: opts.keyPrefix ?? 'submeter',
    queuePrefix: opts.queuePrefix ?? 'bull',
    now: opts.now ?? Date.now,
    tuning: { ...DEFAULT_TUNING, ...opts.tuning, ...(opts.schedule?.settlementGraceMinutes !== undefined ? { settlementGraceMs: opts.schedule.settlementGraceMinutes * 60_000 } : {}) },
  };
  await influx.createDatabase().catch((err: Error) => log.warn({ err: err.message }, 'could not create the InfluxDB database (retrying in jobs)'));
  const notifier = createNotifier(opts.notifier);
  // A site with a topup block and no credentials refuses to start (loadTopupCredentials names the keys).
  const topup = topupServices(ctx, opts.topupProviders ?? new Map(opts.sites.filter((s) => s.topup).map((s) => [s.id, createTopupProviders(s)])));

  const run = <T>(name: string, fn: (job: Job) => Promise<T>) => async (job: Job) => {
    const t0 = Date.now();
    try {
      const r = await fn(job);
      log.debug({ queue: name, job: job.id, ms: Date.now() - t0 }, 'job done');
      return r;
    } catch (err) {
      if (err instanceof UnrecoverableError) throw err;
      // Only a 400 from InfluxDB is bad data for sure; other "non-retryable" answers (e.g.
      // "database not found" while a restarted influxd loads its meta store) retry.
      if (err instanceof UnknownSiteError || err instanceof BillingInputError || (err instanceof InfluxError && err.status === 400)) {
        log.error({ queue: name, job: job.id, err: (err as Error).message }, 'job failed for good (bad data or config)');
        throw new UnrecoverableError((err as Error).message);
      }
      log.warn({ queue: name, job: job.id, attempt: job.attemptsMade + 1, err: (err as Error).message }, 'job failed; will retry with backoff');
      throw err;
    }
  };

  const processors: Record<QueueName, (job: Job) => Promise<unknown>> = {
    // A scheduler tick only asks for the site's deduplicated job (queues.ts, TICK).
    rollup: run('rollup', async (job): Promise<unknown> => {
      const data = parsePayload(RollupJob, QUEUE.rollup, job.data);
      if (job.name !== TICK.rollup) return processRollup(ctx, data);
      // The tick rolls up every meter of the batch (rollup-dirty.ts: the net under announcements).
      const id = siteOf(ctx, data.site).id;
      await markRollup(ctx.redis, ctx.keyPrefix, id, [allMember(data.batch, data.batches)]);
      return requestRollup(queues, id, data.batch, data.batches, 0, true);
    }),
    settlement: run('settlement', (job) => runSettlementJob(ctx, job)),
    balance: run('balance', async (job) => {
      const data = parsePayload(BalanceJob, QUEUE.balance, job.data);
      const site = siteOf(ctx, data.site);
      if (job.name === TICK.balance) return requestBalance(queues, site.id);
      const out = await processBalance(ctx, data);
      // Enforcement decides on the balance just written (a payment reconnects within one run).
      if (site.meters.some((m) => m.relay !== undefined)) await requestEnforcement(queues, site.id);
      // A job's return value is kept in Redis twice (its job hash and the queue's events
      // stream, up to 10,000 entries): the per-account figures (~50 KB for 1,000 accounts)
      // grew Redis by ~4 MB a minute at 1,000 accounts in the scale soak. A summary only.
      return { accounts: out.length, written: out.filter((a) => a.written).length };
    }),
    alerts: run('alerts', (job) => processAlerts(ctx, parsePayload(AlertsJob, QUEUE.alerts, job.data))),
    enforcement: run('enforcement', async (job): Promise<unknown> => {
      const data = parsePayload(EnforcementJob, QUEUE.enforcement, job.data);
      if (job.name === TICK.enforcement) return requestEnforcement(queues, siteOf(ctx, data.site).id);
      // A summary as return value, not every account's decision (see the balance job's).
      const r = await processEnforcement(ctx, data);
      return { accounts: r.accounts, enqueued: r.enqueued, deferredByBudget: r.deferredByBudget };
    }),
    notify: run('notify', async (job) => {
      const n = parsePayload(NotifyJob, QUEUE.notify, job.data);
      const site = ctx.sites.get(n.site);
      const account = site?.accounts.find((a) => a.id === n.account);
      if (!account) throw new UnrecoverableError(`notify: unknown account ${n.site}/${n.account}`);
      await notifier.send(account, n);
      log.info({ site: n.site, account: n.account, kind: n.kind, channel: n.channel }, 'tenant notified');
    }),
    topup: run('topup', (job) => processTopup(topup, parsePayload(TopupJob, QUEUE.topup, job.data))),
  };
  const which = opts.queues ?? (Object.values(QUEUE) as QueueName[]);
  const workers = which.map(
    (name) =>
      new Worker(name, processors[name], {
        connection: redis,
        prefix: queuePrefix(opts.queuePrefix, name),
        concurrency: opts.concurrency ?? 2,
        // A SIGKILLed worker's job is taken over after the lock expires (stalled check).
        lockDuration: opts.lockDurationMs ?? 30_000,
        stalledInterval: Math.ceil((opts.lockDurationMs ?? 30_000) / 2),
        maxStalledCount: 5,
      }),
  );
  for (const w of workers) w.on('error', (err) => log.warn({ queue: w.name, err: err.message }, 'worker error'));

  if (opts.schedulers ?? true) {
    for (const s of opts.sites) await upsertSchedulers(queues, s, opts.schedule);
    // Catch up at once (missed midnights while no worker ran) rather than at the next cron.
    for (const s of opts.sites) await requestSiteSettlement(queues, s.id);
  }
  // Site changes reach the running pipeline (billing.md section 11): file watch, reloadSites(), API publish.
  if (opts.siteFiles && opts.siteFiles.length !== opts.sites.length) throw new Error('startWorkers: siteFiles must list one file per site, in the same order');
  const reloader = opts.siteFiles
    ? startSiteReloader(ctx, { files: new Map(opts.sites.map((s, i) => [s.id, opts.siteFiles![i]])), watch: opts.watchSiteFiles ?? true, schedule: (opts.schedulers ?? true) ? (opts.schedule ?? {}) : false })
    : undefined;
  // New data announced by a collector, an import or a payment (lib/new-data-channel.ts):
  // the site's rollup batches (after a short wait that gathers a poll round's batches) or
  // its balance. Every worker process listens; the jobs are deduplicated, so N listeners
  // ask for one run.
  const dataChannel = newDataChannel(ctx.keyPrefix);
  const reloadChannel = siteReloadChannel(ctx.keyPrefix);
  const coalesceMs = opts.schedule?.rollupCoalesceMs ?? DEFAULTS.rollupCoalesceMs;
  const metersPerBatch = opts.schedule?.metersPerBatch ?? DEFAULTS.metersPerBatch;
  const onNewData = async (text: string) => {
    const m = parseNewDataMessage(text);
    const site = m && ctx.sites.get(m.site);
    if (!m || !site) return;
    if (m.kind === 'payment') return requestBalance(queues, site.id);
    const batches = batchCount(site, metersPerBatch);
    // Only the batches of the meters named (a message without meter ids: every batch, every meter).
    const marks = announcedMarks(site, batches, m.meters);
    await markRollup(ctx.redis, ctx.keyPrefix, site.id, [...marks.values()].flat());
    for (const b of marks.keys()) await requestRollup(queues, site.id, b, batches, coalesceMs, true);
  };
  const subscriber = createSubscriber(redisUrl, { maxRetriesPerRequest: null });
  subscriber.on('error', (err) => log.warn({ err: err.message }, 'redis subscriber error (retrying)'));
  subscriber.on('message', (channel: string, text: string) => {
    if (channel === dataChannel) void onNewData(text).catch((err: Error) => log.warn({ err: err.message }, 'could not queue the jobs for announced data (the safety tick will)'));
    else if (channel === reloadChannel && reloader) void reloader.reload(text).catch((err: Error) => log.error({ site: text, err: err.message }, 'site reload failed'));
  });
  await subscriber.subscribe(dataChannel, ...(reloader ? [reloadChannel] : []));
  log.info({ sites: [...ids], queues: which }, 'workers started');
  return {
    ctx,
    queues,
    workers,
    reloadSites: async (siteId) => (reloader ? reloader.reload(siteId) : []),
    async close() {
      await reloader?.close();
      subscriber.disconnect();
      await Promise.all(workers.map((w) => w.close()));
      await closeRelayQueues(ctx);
      await closeQueues(queues);
      notifier.close();
      redis.disconnect();
    },
  };
}
