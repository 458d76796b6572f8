import type { RedisClient } from '../lib/redis.ts';
import { apiKeys } from './redis-keys.ts';
import type { AccountStatement } from './data/read-model.ts';

/** A closed month: the statements as they were at closing, never rewritten. */
export interface ClosedMonth {
  readonly month: string;
  readonly closed_at: string;
  /** Token id of the manager who closed it. */
  readonly by: string;
  readonly statements: readonly AccountStatement[];
}

export interface MonthStore {
  /** False when the month was already closed (the stored one stays). */
  close(site: string, closed: ClosedMonth): Promise<boolean>;
  get(site: string, month: string): Promise<ClosedMonth | undefined>;
  list(site: string): Promise<Omit<ClosedMonth, 'statements'>[]>;
}

/**
 * One Redis hash per site, month -> frozen statements. HSETNX makes closing atomic and
 * write-once: two managers closing at once get one winner, and nothing in the API can
 * overwrite a closed month (corrections show as the difference to it, never in it).
 */
export class RedisMonthStore implements MonthStore {
  private readonly cache = new Map<string, ClosedMonth>();
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix = 'submeter:api:',
  ) {}

  private key(site: string): string {
    return apiKeys(this.prefix).closed(site);
  }

  async close(site: string, closed: ClosedMonth): Promise<boolean> {
    return (await this.redis.hsetnx(this.key(site), closed.month, JSON.stringify(closed))) === 1;
  }

  async get(site: string, month: string): Promise<ClosedMonth | undefined> {
    // Immutable once written, so a process may keep what it has read.
    const k = `${site}|${month}`;
    const hit = this.cache.get(k);
    if (hit) return hit;
    const raw = await this.redis.hget(this.key(site), month);
    if (!raw) return undefined;
    const closed = JSON.parse(raw) as ClosedMonth;
    this.cache.set(k, closed);
    return closed;
  }

  async list(site: string): Promise<Omit<ClosedMonth, 'statements'>[]> {
    const all = await this.redis.hgetall(this.key(site));
    return Object.values(all)
      .map((raw) => {
        const { statements: _s, ...rest } = JSON.parse(raw) as ClosedMonth;
        return rest;
      })
      .sort((a, b) => (a.month < b.month ? -1 : 1));
  }
}
