import type { RedisClient } from './redis.ts';

/**
 * The relay state of a site in Redis (issue 13), shared by the three processes that touch
 * it: the workers decide (wanted state, warnings, command records), the collector executes
 * (read-back, command progress) and the API shows and overrides. Every key carries the
 * site's hash tag `{site}`, so a site's keys share one Redis Cluster slot and its Lua-free
 * multi-key reads stay on one node.
 *
 * Wanted and read-back are kept apart on purpose: what the policy asks for and what the
 * meter says are two facts, and their disagreement is the alarm.
 */

export type RelayState = 'open' | 'closed';

/** What the policy wants for an account, with why (lib shape of core's RelayDecision). */
export interface WantedRecord {
  readonly state: RelayState;
  /** Increments each time the wanted state changes: the relay job id carries it. */
  readonly version: number;
  /** Epoch ms since this state is wanted. */
  readonly since: number;
  readonly reason: string;
  readonly detail: string;
  readonly mode: 'off' | 'dry-run' | 'on';
  /** Fen to pay to get power back (0 when power is wanted on). */
  readonly restoreFen: number;
  readonly deferred?: { readonly reason: string; readonly until?: number; readonly detail: string };
  readonly warning: 'none' | 'warning' | 'final';
  readonly balanceFen?: number;
  /** Epoch ms of the decision that last confirmed this record. */
  readonly decidedAt: number;
}

/** What a meter's relay read back as, and when. */
export interface ReadbackRecord {
  readonly state: RelayState | 'unknown';
  readonly raw?: number;
  readonly commandTrip?: boolean;
  readonly protect?: boolean;
  readonly text: string;
  readonly at: number;
  /** The last read failed (the state is the previous one). */
  readonly error?: string;
}

export interface OverrideRecord {
  readonly kind: 'hold' | 'force-close' | 'force-trip';
  readonly reason: string;
  readonly by: string;
  readonly at: number;
  readonly until?: number;
}

export type CommandStatus = 'queued' | 'running' | 'done' | 'refused' | 'mismatch' | 'unsupported' | 'failed';

export interface MeterCommandProgress {
  readonly status: CommandStatus | 'sent';
  /** Epoch ms the command went on the wire (written before sending). */
  readonly sentAt?: number;
  /** The meter's answer: accepted, refused (with why), or none recorded (crash, timeout). */
  readonly reply?: 'accepted' | 'refused' | 'no-reply';
  readonly replyText?: string;
  readonly before?: { readonly state: string; readonly raw?: number };
  readonly after?: { readonly state: string; readonly raw?: number };
  readonly sends?: number;
}

export interface CommandRecord {
  /** The relay job id: relay|site|account|target|version. */
  readonly id: string;
  readonly account: string;
  readonly target: RelayState;
  readonly version: number;
  readonly reason: string;
  readonly by: string;
  readonly status: CommandStatus;
  readonly meters: Readonly<Record<string, MeterCommandProgress>>;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly detail?: string;
}

/** One line of the audit trail (decisions, commands, replies, read-backs, overrides). */
export interface RelayAuditEntry {
  readonly time: number;
  readonly kind: 'decision' | 'dry-run' | 'command' | 'send' | 'reply' | 'readback' | 'mismatch' | 'refused' | 'unsupported' | 'override' | 'release' | 'warning' | 'failed' | 'deferred';
  readonly account?: string;
  readonly meter?: string;
  readonly command?: string;
  readonly balanceFen?: number;
  readonly reason?: string;
  readonly detail?: string;
  readonly before?: { readonly state: string; readonly raw?: number };
  readonly after?: { readonly state: string; readonly raw?: number };
  readonly by?: string;
}

export function relayKeys(prefix: string, site: string) {
  const base = `${prefix}:{${site}}:relay`;
  return {
    wanted: `${base}:wanted`,
    readback: `${base}:readback`,
    override: `${base}:override`,
    warning: `${base}:warning`,
    commands: `${base}:commands`,
    /** hash job id -> epoch ms: commands held back by the per-bus budget (audited once). */
    budgetWait: `${base}:budget-wait`,
    audit: `${base}:audit`,
    /** Sorted set per bus: member command|meter, score = epoch ms the command was enqueued. */
    rate: (bus: string) => `${base}:rate:${bus}`,
  };
}

const parse = <T>(text: string | null | undefined): T | undefined => {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
};

const parseAll = <T>(h: Record<string, string>): Map<string, T> => {
  const out = new Map<string, T>();
  for (const [k, v] of Object.entries(h)) {
    const x = parse<T>(v);
    if (x !== undefined) out.set(k, x);
  }
  return out;
};

/** Audit entries kept per site (XADD MAXLEN ~): years of decisions at a few lines a day per account. */
const AUDIT_MAX = 1_000_000;

export class RelayStore {
  readonly keys: ReturnType<typeof relayKeys>;

  constructor(
    readonly redis: RedisClient,
    readonly site: string,
    readonly prefix = 'submeter',
  ) {
    this.keys = relayKeys(prefix, site);
  }

  async wanted(): Promise<Map<string, WantedRecord>> {
    return parseAll<WantedRecord>(await this.redis.hgetall(this.keys.wanted));
  }

  /** One account's wanted state (a tenant's page: not the site's whole hash, issue 15). */
  async wantedOf(account: string): Promise<WantedRecord | undefined> {
    return parse<WantedRecord>(await this.redis.hget(this.keys.wanted, account));
  }

  /** The read-backs of some meters only (a tenant's relay meters). */
  async readbacksOf(meters: readonly string[]): Promise<Map<string, ReadbackRecord>> {
    const out = new Map<string, ReadbackRecord>();
    if (meters.length === 0) return out;
    const texts = await this.redis.hmget(this.keys.readback, ...meters);
    meters.forEach((m, i) => {
      const r = parse<ReadbackRecord>(texts[i]);
      if (r !== undefined) out.set(m, r);
    });
    return out;
  }

  async setWanted(account: string, w: WantedRecord): Promise<void> {
    await this.redis.hset(this.keys.wanted, account, JSON.stringify(w));
  }

  async readbacks(): Promise<Map<string, ReadbackRecord>> {
    return parseAll<ReadbackRecord>(await this.redis.hgetall(this.keys.readback));
  }

  async setReadback(meter: string, r: ReadbackRecord): Promise<void> {
    await this.redis.hset(this.keys.readback, meter, JSON.stringify(r));
  }

  async overrides(): Promise<Map<string, OverrideRecord>> {
    return parseAll<OverrideRecord>(await this.redis.hgetall(this.keys.override));
  }

  async setOverride(account: string, o: OverrideRecord): Promise<void> {
    await this.redis.hset(this.keys.override, account, JSON.stringify(o));
  }

  /** Removes an account's override; true if there was one. */
  async clearOverride(account: string): Promise<boolean> {
    return (await this.redis.hdel(this.keys.override, account)) > 0;
  }

  async warnings(): Promise<Map<string, 'none' | 'warning' | 'final'>> {
    const h = await this.redis.hgetall(this.keys.warning);
    return new Map(Object.entries(h) as [string, 'none' | 'warning' | 'final'][]);
  }

  async setWarnings(levels: Record<string, string>): Promise<void> {
    if (Object.keys(levels).length) await this.redis.hset(this.keys.warning, levels);
  }

  async commands(): Promise<Map<string, CommandRecord>> {
    return parseAll<CommandRecord>(await this.redis.hgetall(this.keys.commands));
  }

  async command(id: string): Promise<CommandRecord | undefined> {
    return parse<CommandRecord>(await this.redis.hget(this.keys.commands, id));
  }

  /**
   * Stores a command's record; with `audit`, the record and its audit entry in one
   * transaction, so a crash between them cannot leave a step recorded but not audited
   * (a SIGKILL right after the meter's reply lost the 'reply' entry).
   */
  async putCommand(c: CommandRecord, audit?: RelayAuditEntry): Promise<void> {
    if (!audit) {
      await this.redis.hset(this.keys.commands, c.id, JSON.stringify(c));
      return;
    }
    const res = await this.redis.multi().hset(this.keys.commands, c.id, JSON.stringify(c)).xadd(this.keys.audit, 'MAXLEN', '~', AUDIT_MAX, '*', 'entry', JSON.stringify(audit)).exec();
    const failed = res?.find(([err]) => err);
    if (!res || failed) throw failed?.[0] ?? new Error(`relay command ${c.id}: transaction aborted`);
  }

  /** Creates the record only if it does not exist yet (a retried enqueue keeps the first). */
  async createCommand(c: CommandRecord): Promise<boolean> {
    return (await this.redis.hsetnx(this.keys.commands, c.id, JSON.stringify(c))) === 1;
  }

  /** Appends to the audit trail (XADD only: entries are never rewritten). */
  async audit(entry: RelayAuditEntry): Promise<string> {
    return (await this.redis.xadd(this.keys.audit, 'MAXLEN', '~', AUDIT_MAX, '*', 'entry', JSON.stringify(entry))) as string;
  }

  /** Audit entries, newest first; optionally only one account's. */
  async auditTrail(limit: number, account?: string): Promise<(RelayAuditEntry & { id: string })[]> {
    const out: (RelayAuditEntry & { id: string })[] = [];
    let end = '+';
    // Read in pages until `limit` entries of the account are found (or the stream ends).
    for (let guard = 0; guard < 50 && out.length < limit; guard++) {
      const rows = await this.redis.xrevrange(this.keys.audit, end, '-', 'COUNT', Math.max(limit, 200));
      if (rows.length === 0) break;
      for (const [id, fields] of rows) {
        if (id === end) continue;
        const e = parse<RelayAuditEntry>(fields[1]);
        if (e && (!account || e.account === account)) out.push({ id, ...e });
        if (out.length >= limit) break;
      }
      const last = rows[rows.length - 1][0];
      if (last === end) break;
      end = last;
    }
    return out;
  }

  /** Notes that a command waits for the bus budget; true the first time (audit it then, not every cycle). */
  async noteBudgetWait(id: string, now: number): Promise<boolean> {
    return (await this.redis.hsetnx(this.keys.budgetWait, id, String(now))) === 1;
  }

  /** Commands enqueued on a bus in the last minute (the per-bus budget). */
  async recentOnBus(bus: string, now: number): Promise<number[]> {
    const key = this.keys.rate(bus);
    await this.redis.zremrangebyscore(key, '-inf', now - 120_000);
    const rows = await this.redis.zrangebyscore(key, now - 60_000, '+inf', 'WITHSCORES');
    const out: number[] = [];
    for (let i = 1; i < rows.length; i += 2) out.push(Number(rows[i]));
    return out;
  }

  async noteOnBus(bus: string, member: string, now: number): Promise<void> {
    await this.redis.zadd(this.keys.rate(bus), now, member);
  }
}
