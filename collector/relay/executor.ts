import { Worker } from 'bullmq';
import type { Job } from 'bullmq';
import { createRedis } from '../../lib/redis.ts';
import type { Meter, Site } from '../../core/index.ts';
import { RELAY_EVENT, relayEventLine } from '../../influx/relay.ts';
import { createLogger } from '../../lib/logger.ts';
import type { Logger } from '../../lib/logger.ts';
import { RelayStore } from '../../lib/relay-store.ts';
import type { CommandRecord, CommandStatus, MeterCommandProgress, RelayAuditEntry } from '../../lib/relay-store.ts';
import { parsePayload, RELAY_QUEUE, RelayJob, relayQueuePrefix, UnrecoverableError } from '../../workers/index.ts';
import type { BusRegistry } from '../bus/index.ts';
import { MeterReadError } from '../input.ts';
import type { ModbusTcpPool } from '../inputs/modbus-tcp/tcp-pool.ts';
import { meterAt } from '../meter-config.ts';
import { createRelayDriver, relayUnsupported } from './driver.ts';
import type { RelayCommand, RelayDriver, RelayReadback } from './driver.ts';
import type { RelaySecrets } from './secrets.ts';

/**
 * The collector's side of prepaid enforcement (issue 13): the bus belongs to the
 * collector, so the workers' relay jobs are carried out here, through the same bus
 * scheduler as the polling (commands with priority) and the same Modbus TCP connections.
 *
 * A job is (account, target, version): its meters are switched one by one, and each
 * meter's progress is written to Redis *before* the next step, so a SIGKILL anywhere
 * leaves enough to finish without a second effective command:
 *
 * 1. read back first; a relay already in the target state is done (nothing sent);
 * 2. mark the command sent, then send; record the meter's reply (accepted / refused);
 * 3. read back until the target state or the read-back window ends: done or mismatch.
 *
 * A retried job (lock lost with the process) reads back again: if the relay is in the
 * target state the earlier command worked; if the meter had accepted, only the read-back
 * wait is repeated; only a command with no recorded reply is sent again, and never to a
 * relay already in the target state. A refusal (wrong password, deadline passed,
 * protected) and a mismatch are final: reported, never retried. Wire faults retry a few
 * times (RELAY_JOB_OPTS), then the command is `failed`.
 */

export interface RelayExecutorOptions {
  readonly site: Site;
  readonly redisUrl: string;
  /** BullMQ prefix the workers use (the relay queue adds the site's hash tag). @defaultValue 'bull' */
  readonly queuePrefix?: string;
  /** Prefix of the relay state keys (the workers' keyPrefix). @defaultValue 'submeter' */
  readonly keyPrefix?: string;
  readonly buses: BusRegistry;
  readonly tcp: ModbusTcpPool;
  readonly secrets: RelaySecrets;
  /** Relay events into InfluxDB (the collector's spool). */
  readonly writeLines: (lines: string[]) => Promise<void>;
  /** How often the read-back is polled while waiting for the new state. @defaultValue 2000 */
  readonly readbackPollMs?: number;
  /** Relay state of every relay meter, read this often (and at start). @defaultValue 300000 */
  readonly statusEveryMs?: number;
  /** BullMQ lock: a SIGKILLed executor's job is taken over after about this long. @defaultValue 30000 */
  readonly lockDurationMs?: number;
  readonly now?: () => number;
  readonly log?: Logger;
}

export interface RelayExecutor {
  /** Reads every relay meter's state now (also done every statusEveryMs). */
  pollStates(): Promise<void>;
  /**
   * The site file in force after a reload (same site id): commands from now on reach the
   * meters it lists, at the address each has at the command's time (a replacement in place
   * names a new address, billing.md section 11), and the status poll covers its relays.
   */
  setSite(next: Site): void;
  close(): Promise<void>;
}

const FINAL: readonly string[] = ['done', 'refused', 'mismatch', 'unsupported', 'failed'];

export async function startRelayExecutor(opts: RelayExecutorOptions): Promise<RelayExecutor> {
  let site = opts.site;
  const log = (opts.log ?? createLogger('collector')).child({ part: 'relay' });
  const now = opts.now ?? Date.now;
  const redis = createRedis(opts.redisUrl, { maxRetriesPerRequest: null });
  redis.on('error', (err) => log.warn({ err: err.message }, 'redis connection error (retrying)'));
  const store = new RelayStore(redis, site.id, opts.keyPrefix ?? 'submeter');
  const pollMs = opts.readbackPollMs ?? 2000;
  let meters = new Map(site.meters.map((m) => [m.id, m]));

  const driverOf = (m: Meter, validityMs: number): RelayDriver =>
    // The address in force now: a meter replaced in place is switched at its new address.
    createRelayDriver(meterAt(m, now()), { site, buses: opts.buses, tcp: opts.tcp, secrets: opts.secrets, now, commandValiditySeconds: Math.round(validityMs / 1000) });

  const readback = async (m: Meter, d: RelayDriver): Promise<RelayReadback> => {
    const r = await d.readState();
    await store.setReadback(m.id, { state: r.state, raw: r.raw, ...(r.commandTrip !== undefined ? { commandTrip: r.commandTrip } : {}), ...(r.protect !== undefined ? { protect: r.protect } : {}), text: r.text, at: now() });
    return r;
  };
  const audit = (e: Omit<RelayAuditEntry, 'time'>) => store.audit({ time: now(), ...e });
  const event = (kind: (typeof RELAY_EVENT)[keyof typeof RELAY_EVENT], account: string, meter: string, detail: string, balanceFen?: number) =>
    opts.writeLines([relayEventLine({ site: site.id, kind, account, meter, time: now(), detail, ...(balanceFen !== undefined ? { balanceFen } : {}) })]).catch((err: Error) => log.error({ err: err.message }, 'relay event not stored'));

  /** Records a meter's progress; with `step`, its audit entry in the same transaction. */
  async function progress(id: string, meter: string, p: MeterCommandProgress, status?: CommandStatus, step?: Omit<RelayAuditEntry, 'time'>): Promise<CommandRecord> {
    const rec = (await store.command(id))!;
    const next: CommandRecord = { ...rec, meters: { ...rec.meters, [meter]: p }, ...(status ? { status } : {}), updatedAt: now() };
    await store.putCommand(next, step ? { time: now(), ...step } : undefined);
    return next;
  }

  async function switchMeter(job: RelayJob, id: string, m: Meter): Promise<void> {
    const rec = (await store.command(id))!;
    let p: MeterCommandProgress = rec.meters[m.id] ?? { status: 'queued' };
    if (FINAL.includes(p.status)) return;
    const base = { account: job.account, meter: m.id, ...(job.balanceFen !== undefined ? { balanceFen: job.balanceFen } : {}), reason: job.reason, by: job.by };
    const why = relayUnsupported(m, opts.secrets);
    if (why) {
      await progress(id, m.id, { ...p, status: 'unsupported', replyText: why }, undefined, { kind: 'unsupported', ...base, detail: why });
      await event(RELAY_EVENT.unsupported, job.account, m.id, why, job.balanceFen);
      return;
    }
    const driver = driverOf(m, job.commandValidityMs);
    const command: RelayCommand = job.target === 'open' ? 'trip' : job.close === 'permit' ? 'close-permit' : 'close';
    const before = await readback(m, driver);
    const beforeReg = { state: before.state, raw: before.raw };
    if (!p.before) p = { ...p, before: beforeReg };
    if (before.state === job.target) {
      // Already there: the earlier attempt's command worked, or nothing needed doing.
      await progress(id, m.id, { ...p, status: 'done', after: beforeReg }, undefined, { kind: 'readback', ...base, command, before: p.before, after: beforeReg, detail: `${p.sentAt ? 'in the target state after the earlier send' : 'already in the target state: nothing sent'}: ${before.text}` });
      return;
    }
    // A command the meter accepted before a crash is not sent again, only read back.
    const resumed = p.reply === 'accepted';
    if (!resumed) {
      p = { ...p, status: 'sent', sentAt: now(), sends: (p.sends ?? 0) + 1 };
      await progress(id, m.id, p, 'running', { kind: 'send', ...base, command, before: beforeReg, detail: `${command} (v${job.version}, send ${p.sends})` });
      let outcome;
      try {
        outcome = await driver.send(command);
      } catch (err) {
        p = { ...p, reply: 'no-reply', replyText: (err as Error).message };
        await progress(id, m.id, p, undefined, { kind: 'reply', ...base, command, detail: `no reply: ${(err as Error).message}` });
        throw err;
      }
      p = { ...p, reply: outcome.accepted ? 'accepted' : 'refused', replyText: outcome.text };
      // The reply and its audit entry together: a crash right after the meter answered must
      // not lose the entry (the restarted executor reads back, it does not send again).
      await progress(id, m.id, p, undefined, { kind: 'reply', ...base, command, detail: outcome.text });
      if (!outcome.accepted) {
        await progress(id, m.id, { ...p, status: 'refused' }, undefined, { kind: 'refused', ...base, command, before: beforeReg, detail: `${outcome.text}: not retried` });
        await event(RELAY_EVENT.refused, job.account, m.id, outcome.text, job.balanceFen);
        log.warn({ meter: m.id, command, reply: outcome.text }, 'relay command refused');
        return;
      }
    }
    // Read back until the target state or the end of the window: real time from the send
    // (from the resumption after a crash), whatever clock stamps the records.
    const until = Date.now() + job.readbackMs;
    let after = before;
    for (;;) {
      try {
        after = await readback(m, driver);
      } catch (err) {
        log.warn({ meter: m.id, err: (err as Error).message }, 'relay read-back failed; trying again');
      }
      const reached = after.state === job.target || (command === 'close-permit' && after.commandTrip === false);
      if (reached || Date.now() >= until) break;
      await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(10, until - Date.now()))));
    }
    const afterReg = { state: after.state, raw: after.raw };
    if (after.state === job.target || (command === 'close-permit' && after.commandTrip === false)) {
      await progress(id, m.id, { ...p, status: 'done', after: afterReg });
      // Resumed after a crash: the relay may have moved before the restart (the early return
      // above) or while this read-back waited; the trail says the same in both cases.
      const prefix = `${resumed ? 'in the target state after the earlier send: ' : ''}${command === 'close-permit' && after.state !== 'closed' ? 'close permitted: waiting for the tenant to press the meter button; ' : ''}`;
      await audit({ kind: 'readback', ...base, command, before: p.before, after: afterReg, detail: `${prefix}${after.text}` });
      return;
    }
    const text = `${command} accepted but the relay reads ${after.state} ${Math.round(job.readbackMs / 1000)} s later (${after.text}): stuck relay or wiring`;
    await progress(id, m.id, { ...p, status: 'mismatch', after: afterReg }, undefined, { kind: 'mismatch', ...base, command, before: p.before, after: afterReg, detail: text });
    await event(RELAY_EVENT.mismatch, job.account, m.id, text, job.balanceFen);
    log.error({ meter: m.id, command, after: after.text }, 'relay mismatch');
  }

  async function run(job: Job): Promise<CommandStatus> {
    const data = parsePayload(RelayJob, RELAY_QUEUE as never, job.data);
    if (data.site !== site.id) throw new UnrecoverableError(`relay job for site ${data.site} reached the collector of ${site.id}`);
    const id = job.id!;
    if (!(await store.command(id))) {
      // The record is written before the job; recreate it if Redis lost it.
      await store.putCommand({ id, account: data.account, target: data.target, version: data.version, reason: data.reason, by: data.by, status: 'queued', meters: {}, createdAt: now(), updatedAt: now(), detail: data.detail });
    }
    for (const mid of data.meters) {
      const m = meters.get(mid);
      if (!m) {
        const why = `no meter ${mid} in this collector's site file`;
        await progress(id, mid, { status: 'unsupported', replyText: why }, undefined, { kind: 'unsupported', account: data.account, meter: mid, reason: data.reason, by: data.by, detail: why });
        continue;
      }
      await switchMeter(data, id, m);
    }
    const rec = (await store.command(id))!;
    const statuses = Object.values(rec.meters).map((p) => p.status);
    const status: CommandStatus = statuses.includes('mismatch') ? 'mismatch' : statuses.includes('refused') ? 'refused' : statuses.includes('unsupported') ? 'unsupported' : 'done';
    await store.putCommand({ ...rec, status, updatedAt: now() });
    return status;
  }

  const worker = new Worker(
    RELAY_QUEUE,
    async (job) => {
      try {
        return await run(job);
      } catch (err) {
        const last = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
        log.warn({ job: job.id, attempt: job.attemptsMade + 1, last, err: (err as Error).message }, last ? 'relay command failed for good' : 'relay command failed; will retry');
        if (last && job.id) {
          const rec = await store.command(job.id);
          const data = job.data as RelayJob;
          const entry = { kind: 'failed', account: data.account, reason: data.reason, detail: `gave up after ${job.attemptsMade + 1} attempts: ${(err as Error).message}` } as const;
          if (rec) await store.putCommand({ ...rec, status: 'failed', updatedAt: now() }, { time: now(), ...entry });
          else await audit(entry);
          for (const mid of data.meters ?? []) await event(RELAY_EVENT.failed, data.account, mid, `relay command failed: ${(err as Error).message}`, data.balanceFen);
        }
        if (err instanceof MeterReadError && !err.retryable) throw new UnrecoverableError(err.message);
        throw err;
      }
    },
    {
      connection: redis,
      prefix: relayQueuePrefix(site.id, opts.queuePrefix),
      // One command at a time per collector: commands on one bus serialise anyway, and the
      // per-bus budget is the workers'.
      concurrency: 1,
      lockDuration: opts.lockDurationMs ?? 30_000,
      stalledInterval: Math.ceil((opts.lockDurationMs ?? 30_000) / 2),
      maxStalledCount: 10,
    },
  );
  worker.on('error', (err) => log.warn({ err: err.message }, 'relay worker error'));

  let relayMeters = site.meters.filter((m) => m.relay && !relayUnsupported(m));
  let polling = false;
  const pollStates = async () => {
    if (polling) return;
    polling = true;
    try {
      for (const m of relayMeters) {
        try {
          await readback(m, driverOf(m, 300_000));
        } catch (err) {
          const prev = (await store.readbacks()).get(m.id);
          await store.setReadback(m.id, { state: prev?.state ?? 'unknown', ...(prev?.raw !== undefined ? { raw: prev.raw } : {}), text: prev?.text ?? 'never read', at: prev?.at ?? now(), error: (err as Error).message });
        }
      }
    } finally {
      polling = false;
    }
  };
  const timer = setInterval(() => void pollStates(), opts.statusEveryMs ?? 300_000);
  timer.unref?.();
  void pollStates();
  log.info({ site: site.id, relayMeters: relayMeters.map((m) => m.id), secrets: opts.secrets.source }, 'relay executor started');

  return {
    pollStates,
    setSite(next) {
      if (next.id !== site.id) throw new Error(`relay executor of site ${site.id} cannot take site ${next.id}`);
      site = next;
      meters = new Map(site.meters.map((m) => [m.id, m]));
      relayMeters = site.meters.filter((m) => m.relay && !relayUnsupported(m));
      log.info({ site: site.id, relayMeters: relayMeters.map((m) => m.id) }, 'relay executor follows the reloaded site file');
    },
    async close() {
      clearInterval(timer);
      await worker.close();
      redis.disconnect();
    },
  };
}
