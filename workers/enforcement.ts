import type { Queue } from 'bullmq';
import { commandBudget, decideRelay, DEFAULT_ENFORCEMENT, nextWarning, occupantAt, policyFor, staleReasons, zoneOf } from '../core/index.ts';
import type { Account, Meter, RelayDecision, Site, WarningLevel } from '../core/index.ts';
import { quoteString } from '../influx/client.ts';
import { RELAY_EVENT, relayEventLine, relayLine } from '../influx/relay.ts';
import { F, M, T } from '../influx/schema.ts';
import { RelayStore } from '../lib/relay-store.ts';
import type { CommandRecord, ReadbackRecord, WantedRecord } from '../lib/relay-store.ts';
import { enqueueNotifications } from './balance.ts';
import { idRegex, siteOf } from './context.ts';
import type { WorkerContext } from './context.ts';
import { openRelayQueue, relayJobId } from './queues.ts';
import type { EnforcementJob, RelayJob } from './queues.ts';

/**
 * Prepaid enforcement (issue 13, docs/enforcement.md): every balance cycle, for each
 * account with a relay meter, read what the policy needs (the balance worker's last
 * `balance` point, the meters' health, the collector's state), ask the core's
 * `decideRelay`, and act on the answer:
 *
 * - the wanted state is stored (Redis, versioned: a new version on every change) and
 *   every change of decision goes to the audit trail with the balance and the reason;
 * - `on`: a change becomes one relay job per (account, target, version), bounded by the
 *   per-bus command budget; the collector carries it out and reports the read-back;
 * - `dry-run`: the same decisions and audit entries, marked dry-run; nothing is enqueued;
 * - warnings go to the tenant once per crossing (event + notification);
 * - a `relay` point per account for Grafana (wanted, read-back, mismatch, ...).
 *
 * The balance is read, never recomputed here: it is the one the tenant sees, with every
 * share the settlement will charge.
 */

export interface EnforcementResult {
  readonly accounts: number;
  readonly enqueued: string[];
  readonly deferredByBudget: string[];
  readonly decisions: Readonly<Record<string, RelayDecision>>;
}

/** Relay queues of the sites, opened once per worker context (closed by closeRelayQueues). */
const relayQueues = new WeakMap<WorkerContext, Map<string, Queue>>();

function relayQueueOf(ctx: WorkerContext, site: string): Queue {
  let bySite = relayQueues.get(ctx);
  if (!bySite) relayQueues.set(ctx, (bySite = new Map()));
  let q = bySite.get(site);
  if (!q) {
    q = openRelayQueue(ctx.redis, site, ctx.queuePrefix);
    bySite.set(site, q);
  }
  return q;
}

export async function closeRelayQueues(ctx: WorkerContext): Promise<void> {
  const bySite = relayQueues.get(ctx);
  if (!bySite) return;
  relayQueues.delete(ctx);
  await Promise.all([...bySite.values()].map((q) => q.close()));
}

/** The bus a meter's commands travel on: its serial port, or its Modbus TCP endpoint. */
export function busOf(m: Meter): string {
  const c = m.connection;
  if (!c) return 'none';
  return c.protocol === 'modbus-tcp' ? `tcp:${c.host}:${c.port}` : `serial:${c.port}`;
}

/** The relay meters of the units an account occupies at t (billing.md section 11: never a unit it left, nor a vacant one). */
/** The account occupying a tenant meter at t (none when vacant). */
function occupantOf(site: Site, m: Meter, t: number): string | undefined {
  const s = occupantAt(site, m, t);
  return s.vacant ? undefined : s.account;
}

/** Occupant -> its tenant meters at t, in site-file order (the core's metersOccupiedBy for every account in one pass). */
function metersByOccupant(site: Site, t: number, only: (m: Meter) => boolean = () => true): Map<string, Meter[]> {
  const out = new Map<string, Meter[]>();
  for (const m of site.meters) {
    if (m.role !== 'tenant' || !only(m)) continue;
    const a = occupantOf(site, m, t);
    if (a === undefined) continue;
    const list = out.get(a);
    if (list) list.push(m);
    else out.set(a, [m]);
  }
  return out;
}

/** The account's read-back: closed/open when all its relay meters agree and were read, else undefined. */
function accountState(meters: readonly Meter[], readbacks: ReadonlyMap<string, ReadbackRecord>): 'open' | 'closed' | undefined {
  const states = meters.map((m) => readbacks.get(m.id)?.state ?? 'unknown');
  if (states.every((s) => s === 'closed')) return 'closed';
  if (states.every((s) => s === 'open')) return 'open';
  return undefined;
}

async function latestBy(ctx: WorkerContext, q: string, tag: string): Promise<Map<string, Record<string, unknown>>> {
  const [series = []] = await ctx.influx.queryRaw(q);
  const out = new Map<string, Record<string, unknown>>();
  for (const s of series) {
    const v = s.values[0];
    if (!v) continue;
    const row: Record<string, unknown> = {};
    s.columns.forEach((c, i) => (row[c] = v[i]));
    out.set(s.tags?.[tag] ?? '', row);
  }
  return out;
}

export async function processEnforcement(ctx: WorkerContext, job: EnforcementJob): Promise<EnforcementResult> {
  const site = siteOf(ctx, job.site);
  const cfg = site.enforcement ?? DEFAULT_ENFORCEMENT;
  const now = ctx.now();
  // Each occupant's relay meters in one pass over the meters (a pass per account was
  // accounts x meters every balance cycle: 9 % of the workers' CPU at 100 sites of 1,000
  // accounts without a single relay).
  const relayOf = metersByOccupant(site, now, (m) => m.relay !== undefined);
  const accounts = site.accounts.filter((a) => relayOf.has(a.id));
  if (accounts.length === 0) return { accounts: 0, enqueued: [], deferredByBudget: [], decisions: {} };

  const zone = zoneOf(site.timezone);
  const store = new RelayStore(ctx.redis, site.id, ctx.keyPrefix);
  const sq = quoteString(site.id);
  const since = now - 7 * 86_400_000;
  const ids = accounts.map((a) => a.id);
  const occupiedBy = metersByOccupant(site, now);
  const meterIds = ids.flatMap((id) => occupiedBy.get(id) ?? []).map((m) => m.id);
  const [balances, health, collectors, wanted, readbacks, overrides, warnings, commands] = await Promise.all([
    latestBy(ctx, `SELECT ${F.balanceFen}, ${F.hoursLeft} FROM ${M.balance} WHERE ${T.site} = ${sq} AND ${T.account} =~ ${idRegex(ids)} AND time >= ${since}ms AND time <= ${now}ms GROUP BY ${T.account} ORDER BY time DESC LIMIT 1`, T.account),
    latestBy(ctx, `SELECT ${F.lastSeen}, ${F.consecutiveErrors} FROM ${M.meterHealth} WHERE ${T.site} = ${sq} AND ${T.meter} =~ ${idRegex(meterIds)} AND time >= ${since}ms AND time <= ${now}ms GROUP BY ${T.meter} ORDER BY time DESC LIMIT 1`, T.meter),
    latestBy(ctx, `SELECT ${F.spoolSamples}, ${F.spoolFull} FROM ${M.collector} WHERE ${T.site} = ${sq} AND time >= ${since}ms AND time <= ${now}ms GROUP BY ${T.host} ORDER BY time DESC LIMIT 1`, T.host),
    store.wanted(),
    store.readbacks(),
    store.overrides(),
    store.warnings(),
    store.commands(),
  ]);
  // The most recent collector state; a full spool on any collector counts.
  let collector: { time: number; spoolSamples: number; spoolFull: boolean } | undefined;
  for (const r of collectors.values()) {
    const c = { time: r.time as number, spoolSamples: Number(r[F.spoolSamples] ?? 0), spoolFull: r[F.spoolFull] === true };
    if (!collector || c.time > collector.time) collector = { ...c, spoolFull: c.spoolFull || (collector?.spoolFull ?? false) };
    else if (c.spoolFull) collector = { ...collector, spoolFull: true };
  }

  const lines: string[] = [];
  const decisions: Record<string, RelayDecision> = {};
  const newWarnings: Record<string, string> = {};
  const candidates: { account: Account; meters: Meter[]; record: WantedRecord; decision: RelayDecision }[] = [];
  const notices: { account: Account; kind: 'warning' | 'final'; decision: RelayDecision }[] = [];

  for (const a of accounts) {
    const policy = policyFor(cfg, a.id);
    const meters = relayOf.get(a.id)!;
    const prev = wanted.get(a.id);
    const b = balances.get(a.id);
    const balance = b && typeof b[F.balanceFen] === 'number' ? { fen: b[F.balanceFen] as number, ...(typeof b[F.hoursLeft] === 'number' ? { hoursLeft: b[F.hoursLeft] as number } : {}) } : undefined;
    const stale = staleReasons({
      now,
      maxAgeMs: cfg.maxDataAgeMs,
      maxSpoolSamples: cfg.maxSpoolSamples,
      ...(b ? { balanceTime: b.time as number } : {}),
      meters: (occupiedBy.get(a.id) ?? [])
        .filter((m) => m.connection)
        .map((m) => {
          const h = health.get(m.id);
          return { id: m.id, ...(typeof h?.[F.lastSeen] === 'number' ? { lastSeen: h[F.lastSeen] as number } : {}), ...(typeof h?.[F.consecutiveErrors] === 'number' ? { consecutiveErrors: h[F.consecutiveErrors] as number } : {}) };
        }),
      ...(collector ? { collector } : {}),
    });
    const o = overrides.get(a.id);
    const d = decideRelay({ now, policy, zone, holidays: site.holidays, ...(balance ? { balance } : {}), stale, ...(o ? { override: o } : {}), wanted: prev?.state ?? 'closed' });
    decisions[a.id] = d;
    const changed = !prev || prev.state !== d.wanted;
    const record: WantedRecord = {
      state: d.wanted,
      version: changed ? (prev?.version ?? 0) + 1 : prev.version,
      since: changed ? now : prev.since,
      reason: d.reason,
      detail: d.detail,
      mode: policy.mode,
      restoreFen: d.restoreFen,
      ...(d.deferred ? { deferred: d.deferred } : {}),
      warning: d.warning,
      ...(balance ? { balanceFen: balance.fen } : {}),
      decidedAt: now,
    };
    // Audit every change of decision (not every cycle): the state, the reason, the deferral.
    const news = changed || prev.reason !== d.reason || prev.deferred?.reason !== d.deferred?.reason || prev.mode !== policy.mode;
    if (news && policy.mode !== 'off') {
      await store.audit({
        time: now,
        kind: policy.mode === 'dry-run' && changed ? 'dry-run' : d.deferred ? 'deferred' : 'decision',
        account: a.id,
        ...(balance ? { balanceFen: balance.fen } : {}),
        reason: d.reason,
        detail: `${policy.mode === 'dry-run' ? `dry-run (nothing sent): would ${d.wanted === 'open' ? 'trip' : 'keep or put power on'}; ` : ''}${d.detail}`,
        command: `wanted ${d.wanted} v${record.version}`,
      });
      if (changed && (prev || d.wanted === 'open') && policy.mode === 'on') {
        lines.push(relayEventLine({ site: site.id, kind: d.wanted === 'open' ? RELAY_EVENT.trip : RELAY_EVENT.close, account: a.id, time: now, detail: d.detail, ...(balance ? { balanceFen: balance.fen } : {}) }));
      }
    }
    if (policy.mode !== 'off') await store.setWanted(a.id, record);
    else if (prev) await store.setWanted(a.id, { ...prev, mode: 'off', decidedAt: now });

    // Warnings once per crossing (the tenant is told; a payment re-arms them).
    const w = nextWarning((warnings.get(a.id) ?? 'none') as WarningLevel, policy.mode === 'off' ? 'none' : d.warning);
    if (w.state !== (warnings.get(a.id) ?? 'none')) newWarnings[a.id] = w.state;
    if (w.send) notices.push({ account: a, kind: w.send, decision: d });
    else if (policy.mode !== 'off' && d.deferred?.reason === 'protected-window' && prev?.deferred?.reason !== 'protected-window') {
      // Already warned, but the cut now has a time: tell the tenant when it comes.
      notices.push({ account: a, kind: 'final', decision: d });
    }

    // Commands: one per wanted version, only in `on`, and only for a real transition (or
    // when the meters read back the other state).
    const id = relayJobId(site.id, a.id, d.wanted, record.version);
    const readState = accountState(meters, readbacks);
    // Never decided before: the relay is taken as closed (power on), as meters ship.
    const transition = d.wanted !== (prev?.state ?? 'closed');
    const needs = policy.mode === 'on' && !commands.has(id) && (transition || (readState !== undefined && readState !== d.wanted));
    if (needs) candidates.push({ account: a, meters, record, decision: d });

    const pending = [...commands.values()].filter((c) => c.account === a.id && (c.status === 'queued' || c.status === 'running')).length;
    const cmd = commands.get(id);
    const mismatch =
      policy.mode === 'on' &&
      (cmd?.status === 'mismatch' || (readState !== undefined && readState !== record.state && (cmd?.status === 'done' || now - record.since > 2 * cfg.readbackMs)));
    lines.push(
      relayLine({
        site: site.id,
        account: a.id,
        time: now,
        wanted: policy.mode === 'off' ? (readState ?? 'closed') : record.state,
        ...(readState ? { state: readState } : {}),
        mismatch,
        mode: policy.mode,
        decision: d.reason,
        ...(d.deferred ? { deferred: d.deferred.reason } : {}),
        restoreFen: d.restoreFen,
        warning: d.warning,
        pending,
      }),
    );
  }

  // Enqueue within each bus's budget; the rest wait for the next cycle (same job id).
  const enqueued: string[] = [];
  const deferredByBudget: string[] = [];
  const budget = new Map<string, number>();
  for (const c of candidates) {
    const buses = [...new Set(c.meters.map(busOf))];
    for (const bus of buses) if (!budget.has(bus)) budget.set(bus, commandBudget(await store.recentOnBus(bus, now), now, cfg.commandsPerMinute));
    if (buses.some((bus) => (budget.get(bus) ?? 0) < c.meters.filter((m) => busOf(m) === bus).length)) {
      deferredByBudget.push(c.account.id);
      if (await store.noteBudgetWait(relayJobId(site.id, c.account.id, c.record.state, c.record.version), now)) await store.audit({ time: now, kind: 'deferred', account: c.account.id, reason: 'rate-limit', detail: `command to ${c.record.state === 'open' ? 'trip' : 'close'} waits: more than ${cfg.commandsPerMinute} commands a minute on ${buses.join(', ')}` });
      continue;
    }
    const policy = policyFor(cfg, c.account.id);
    const id = relayJobId(site.id, c.account.id, c.record.state, c.record.version);
    const by = overrides.get(c.account.id)?.by && (c.decision.reason === 'force-trip' || c.decision.reason === 'force-close' || c.decision.reason === 'hold') ? overrides.get(c.account.id)!.by : 'policy';
    const record: CommandRecord = {
      id,
      account: c.account.id,
      target: c.record.state,
      version: c.record.version,
      reason: c.decision.reason,
      by,
      status: 'queued',
      meters: Object.fromEntries(c.meters.map((m) => [m.id, { status: 'queued' as const }])),
      createdAt: now,
      updatedAt: now,
      detail: c.decision.detail,
    };
    // HSETNX first: a crash after it and before the add leaves a record the next cycle sees
    // (no second record), and the job id makes a repeated add a no-op.
    const created = await store.createCommand(record);
    const data: RelayJob = {
      site: site.id,
      account: c.account.id,
      target: c.record.state,
      version: c.record.version,
      meters: c.meters.map((m) => m.id),
      reason: c.decision.reason,
      detail: c.decision.detail,
      by,
      close: policy.close,
      ...(c.record.balanceFen !== undefined ? { balanceFen: c.record.balanceFen } : {}),
      readbackMs: cfg.readbackMs,
      commandValidityMs: cfg.commandValidityMs,
    };
    await relayQueueOf(ctx, site.id).add('relay', data, { jobId: id });
    for (const m of c.meters) {
      await store.noteOnBus(busOf(m), `${id}|${m.id}`, now);
      budget.set(busOf(m), (budget.get(busOf(m)) ?? 0) - 1);
    }
    if (created) {
      await store.audit({ time: now, kind: 'command', account: c.account.id, command: `${c.record.state === 'open' ? 'trip' : 'close'} v${c.record.version}`, ...(c.record.balanceFen !== undefined ? { balanceFen: c.record.balanceFen } : {}), reason: c.decision.reason, detail: `enqueued for ${c.meters.map((m) => m.id).join(', ')}: ${c.decision.detail}`, by });
    }
    enqueued.push(id);
  }

  for (const n of notices) {
    const kind = n.kind === 'final' ? RELAY_EVENT.finalWarning : RELAY_EVENT.warning;
    const text = warningText(site, n.account, n.kind, n.decision);
    lines.push(relayEventLine({ site: site.id, kind, account: n.account.id, time: now, detail: text }));
    await store.audit({ time: now, kind: 'warning', account: n.account.id, reason: n.kind, detail: text });
    await enqueueNotifications(ctx, site, n.account, kind, now, `${n.kind === 'final' ? 'Final warning' : 'Warning'}: power supply of ${n.account.id} (${site.name})`, text);
  }
  await store.setWarnings(newWarnings);
  if (lines.length) await ctx.influx.write(lines);
  if (enqueued.length || deferredByBudget.length) ctx.log.info({ site: site.id, enqueued, deferredByBudget }, 'relay commands');
  return { accounts: accounts.length, enqueued, deferredByBudget, decisions };
}

function warningText(site: Site, a: Account, kind: 'warning' | 'final', d: RelayDecision): string {
  const zone = zoneOf(site.timezone);
  const head = `${a.name} (${a.id}): `;
  if (d.deferred?.reason === 'protected-window' && d.deferred.until !== undefined) {
    return `${head}your prepaid balance is used up; power will be cut at ${zone.format(d.deferred.until)} unless you top up before then. ${d.detail}`;
  }
  if (kind === 'final') return `${head}final warning: your prepaid electricity is about to run out and power will then be cut. Please top up now. ${d.detail}`;
  return `${head}your prepaid electricity runs out soon (${d.detail}); power is cut when it is used up. Please top up.`;
}
