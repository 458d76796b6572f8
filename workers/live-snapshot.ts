import { randomBytes } from 'node:crypto';
import type { Period } from '../core/index.ts';
import type { BalancePoint } from '../influx/balance-lines.ts';
import type { RedisClient } from '../lib/redis.ts';
import { redisKeys } from './keys.ts';

/**
 * The balance job's last result per account, kept in one Redis hash per site
 * (`submeter:{site}:live`), for two readers:
 *
 * - the balance job itself, to write a `balance` point only when a figure changed, or as a
 *   heartbeat once a minute (issue 15: one point per account every 3 s was 33,000 points/s
 *   for 100,000 accounts, of data that mostly repeats);
 * - the API, which serves a tenant's live figures from it (no InfluxDB query on the common
 *   path) while the site was checked recently, and computes them itself otherwise.
 *
 * Everything in it is derived (the next balance run writes it again), so losing it costs
 * one heartbeat's worth of extra points, never a figure.
 */

/** A balance point is written at least this often per account, even when nothing changed. */
export const BALANCE_HEARTBEAT_MS = 60_000;

/** Hash field holding the time of the last balance run (account ids start with a letter or digit). */
export const CHECKED_FIELD = '@checked';

/** Hash field holding a token unique to the last balance run that saved the hash (the writer's cache: SnapshotCache). */
export const RUN_FIELD = '@run';

export type PointFigures = Omit<BalancePoint, 'account' | 'time'>;

export interface LiveEntry {
  /** The balance point's figures (billing.md section 5), as last computed. */
  readonly figures: PointFigures;
  /** Today's own energy per period, Wh (today's provisional own lines), when today could be settled provisionally. */
  readonly today?: readonly (readonly [Period, number])[];
  /** When the figures were computed, epoch ms. */
  readonly at: number;
  /** Time of the last `balance` point written for the account. */
  readonly written: number;
}

export interface LiveSnapshot {
  /** The last balance run of the site (every run sets it, changed or not). */
  readonly checked?: number;
  readonly accounts: ReadonlyMap<string, LiveEntry>;
}

function parseEntry(text: string): LiveEntry | undefined {
  try {
    const e = JSON.parse(text) as LiveEntry;
    return e && typeof e.written === 'number' && typeof e.at === 'number' && e.figures && typeof e.figures.balanceFen === 'number' ? e : undefined;
  } catch {
    return undefined;
  }
}

export async function readLiveSnapshot(redis: RedisClient, keyPrefix: string, site: string): Promise<LiveSnapshot> {
  const raw = await redis.hgetall(redisKeys(keyPrefix, site).live);
  const accounts = new Map<string, LiveEntry>();
  for (const [k, v] of Object.entries(raw)) {
    if (k === CHECKED_FIELD || k === RUN_FIELD) continue;
    const e = parseEntry(v);
    if (e) accounts.set(k, e);
  }
  const checked = Number(raw[CHECKED_FIELD]);
  return { ...(Number.isFinite(checked) && raw[CHECKED_FIELD] !== undefined ? { checked } : {}), accounts };
}

/**
 * One account's entry and the site's last run, without the rest of the hash: for a reader
 * that cannot share a site's snapshot between requests (the API with its cache off, where
 * reading a 1,000-account hash per request cost ~6 ms and held the route at 150 req/s).
 */
export async function readLiveEntry(redis: RedisClient, keyPrefix: string, site: string, account: string): Promise<LiveSnapshot> {
  const [checkedText, text] = await redis.hmget(redisKeys(keyPrefix, site).live, CHECKED_FIELD, account);
  const entry = text ? parseEntry(text) : undefined;
  const checked = Number(checkedText);
  return { ...(checkedText !== null && Number.isFinite(checked) ? { checked } : {}), accounts: new Map(entry ? [[account, entry]] : []) };
}

/** A figure as it reads back from the snapshot's JSON (a non-finite number is stored as null). */
function stored(v: unknown): unknown {
  return typeof v === 'number' && !Number.isFinite(v) ? null : v;
}

/**
 * Whether two runs' figures are the same, as their JSON would compare (the figures are
 * numbers and strings). Field by field: building a sorted JSON text of both per account was
 * 3 % of the workers' CPU at 100 sites of 1,000 accounts.
 */
function sameFigures(a: PointFigures, b: PointFigures): boolean {
  const ka = Object.keys(a) as (keyof PointFigures)[];
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (!(k in b) || stored(a[k]) !== stored(b[k])) return false;
  return true;
}

function sameToday(a: LiveEntry['today'], b: LiveEntry['today']): boolean {
  if (!a || !b) return a === b || (!a && !b);
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i][0] !== b[i][0] || a[i][1] !== b[i][1]) return false;
  return true;
}

export interface AccountResult {
  readonly account: string;
  readonly figures: PointFigures;
  readonly today?: readonly (readonly [Period, number])[];
}

export interface BalanceWrites {
  /** Accounts whose `balance` point is written now. */
  readonly write: ReadonlySet<string>;
  /** Hash fields to set (changed entries and the run's time). */
  readonly save: Record<string, string>;
  /** The changed entries, as saved. */
  readonly entries: ReadonlyMap<string, LiveEntry>;
}

/**
 * Which accounts get a `balance` point at `now`: those whose figures differ from the last
 * point written (or that have none), and those whose last point is a heartbeat old. The
 * snapshot entry is saved when its figures or today's energy changed, or a point is written.
 */
export function balanceWrites(prev: LiveSnapshot, results: readonly AccountResult[], now: number): BalanceWrites {
  const write = new Set<string>();
  const save: Record<string, string> = { [CHECKED_FIELD]: String(now) };
  const entries = new Map<string, LiveEntry>();
  for (const r of results) {
    const old = prev.accounts.get(r.account);
    const changed = !old || !sameFigures(old.figures, r.figures);
    const due = changed || now - old.written >= BALANCE_HEARTBEAT_MS || now < old.written;
    if (due) write.add(r.account);
    const todayChanged = !old || !sameToday(old.today, r.today);
    if (due || todayChanged) {
      const entry: LiveEntry = { figures: r.figures, ...(r.today ? { today: r.today } : {}), at: now, written: due ? now : old!.written };
      save[r.account] = JSON.stringify(entry);
      entries.set(r.account, entry);
    }
  }
  return { write, save, entries };
}

/**
 * The snapshot as the balance job of this process last saved it, per site: read again from
 * Redis (every account's JSON) only when another run saved it since (its run token differs).
 * Reading and parsing 1,000 entries on every run was ~5 % of the workers' CPU and most of
 * their Redis traffic at 100 sites.
 */
export class SnapshotCache {
  private readonly sites = new Map<string, { run: string; snapshot: LiveSnapshot }>();

  async read(redis: RedisClient, keyPrefix: string, site: string): Promise<LiveSnapshot> {
    const hit = this.sites.get(site);
    if (hit && (await redis.hget(redisKeys(keyPrefix, site).live, RUN_FIELD)) === hit.run) return hit.snapshot;
    this.sites.delete(site);
    return readLiveSnapshot(redis, keyPrefix, site);
  }

  /** Saves the run's writes with a new token (the hash is the record; this process keeps what it wrote). */
  async save(redis: RedisClient, keyPrefix: string, site: string, prev: LiveSnapshot, writes: BalanceWrites): Promise<void> {
    const run = randomBytes(8).toString('hex');
    this.sites.delete(site);
    await redis.hset(redisKeys(keyPrefix, site).live, { ...writes.save, [RUN_FIELD]: run });
    const accounts = new Map(prev.accounts);
    for (const [a, e] of writes.entries) accounts.set(a, e);
    this.sites.set(site, { run, snapshot: { checked: Number(writes.save[CHECKED_FIELD]), accounts } });
  }
}
