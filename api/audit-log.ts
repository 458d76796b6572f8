import type { RedisClient } from '../lib/redis.ts';
import { apiKeys } from './redis-keys.ts';

/** One manager action: who (token id and role, never the token), what, on what, when. */
export interface AuditEntry {
  readonly time: string;
  readonly site: string;
  readonly actor: string;
  readonly action: string;
  readonly target?: string;
  readonly detail?: Record<string, unknown>;
}

export interface AuditLog {
  append(entry: AuditEntry): Promise<void>;
  /** Newest first. */
  list(site: string, limit: number): Promise<(AuditEntry & { id: string })[]>;
}

/**
 * A Redis stream per site: XADD only appends (entries are never rewritten), ids are
 * time-ordered, and the stream survives restarts with the AOF the services run with.
 */
export class RedisAuditLog implements AuditLog {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix = 'submeter:api:',
  ) {}

  private key(site: string): string {
    return apiKeys(this.prefix).audit(site);
  }

  async append(entry: AuditEntry): Promise<void> {
    await this.redis.xadd(this.key(entry.site), '*', 'entry', JSON.stringify(entry));
  }

  async list(site: string, limit: number): Promise<(AuditEntry & { id: string })[]> {
    const rows = await this.redis.xrevrange(this.key(site), '+', '-', 'COUNT', limit);
    return rows.map(([id, fields]) => ({ id, ...(JSON.parse(fields[1]) as AuditEntry) }));
  }
}
