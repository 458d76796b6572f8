import { randomBytes } from 'node:crypto';
import type { RedisClient } from '../../lib/redis.ts';
import { CredentialCache } from './credential-cache.ts';
import { sessionKeys } from '../redis-keys.ts';
import { hashToken } from './token-store.ts';
import type { TokenRecord } from './token-store.ts';

/**
 * Phone logins for tenants (issue 11): typing a 47-character token into every new tab is
 * no way to read a balance. A manager issues a **login link** (also shown as a QR code)
 * for one account: short-lived (30 min by default, a day at most) and single-use. Opening
 * it once on a phone creates a **device session**: a long-lived (180 days, renewed while
 * used), revocable secret kept in an HttpOnly, SameSite=Strict cookie (Secure behind TLS),
 * which the page's script cannot read and other sites cannot make the browser send.
 * Bearer tokens stay for programs.
 *
 * Like tokens, only the sha256 of a link code or a session secret is stored; the secrets
 * are shown once (the link) or live only in the cookie. Keys carry the site's hash tag.
 */
export const LINK_PREFIX = 'sml_';
export const SESSION_PREFIX = 'sms_';
export const SESSION_COOKIE = 'submeter_session';
export const DEFAULT_LINK_MINUTES = 30;
export const MAX_LINK_MINUTES = 24 * 60;
export const SESSION_DAYS = 180;

export interface DeviceSession {
  /** Public handle for listing and revoking (random, unrelated to the secret). */
  readonly id: string;
  readonly site: string;
  readonly account: string;
  /** The manager's label of the link it came from ("Shop 101 front desk phone"). */
  readonly label?: string;
  /** RFC 3339 UTC. */
  readonly created: string;
}

interface LinkRecord {
  readonly site: string;
  readonly account: string;
  readonly label?: string;
  /** Token id of the manager who issued it. */
  readonly by: string;
  readonly created: string;
}

const SESSION_MS = SESSION_DAYS * 86_400_000;
/** A session is renewed (its expiry pushed out) at most this often per process. */
const RENEW_MS = 3_600_000;

export class DeviceSessions {
  private readonly renewed = new Map<string, number>();
  /** Looked-up sessions, while the site's credentials version is unchanged (at most an hour: the renewal below still happens). */
  private readonly cache = new CredentialCache<DeviceSession>(RENEW_MS);
  constructor(
    private readonly redis: RedisClient,
    /** Key prefix with the site's hash tag, e.g. `submeter:api:{plaza}:`. */
    private readonly prefix: string,
    private readonly now: () => number = Date.now,
    /** The site's credentials version (api/data/site-versions.ts); without it every lookup reads Redis. */
    private readonly version?: () => Promise<string>,
    private readonly onRevoke: () => void = () => undefined,
  ) {}

  private linkKey(hash: string): string {
    return sessionKeys(this.prefix).link(hash);
  }
  private sessionKey(hash: string): string {
    return sessionKeys(this.prefix).session(hash);
  }
  private indexKey(): string {
    return sessionKeys(this.prefix).index;
  }

  /** A new single-use login link for one account; the code is returned once. */
  async issueLink(input: { site: string; account: string; label?: string; by: string; minutes?: number }): Promise<{ code: string; expiresAt: number }> {
    const minutes = input.minutes ?? DEFAULT_LINK_MINUTES;
    if (!Number.isInteger(minutes) || minutes < 1 || minutes > MAX_LINK_MINUTES) throw new RangeError(`a login link lives 1..${MAX_LINK_MINUTES} minutes, got ${minutes}`);
    const code = `${LINK_PREFIX}${randomBytes(32).toString('base64url')}`;
    const record: LinkRecord = { site: input.site, account: input.account, ...(input.label ? { label: input.label } : {}), by: input.by, created: new Date(this.now()).toISOString() };
    await this.redis.set(this.linkKey(hashToken(code)), JSON.stringify(record), 'PX', minutes * 60_000);
    return { code, expiresAt: this.now() + minutes * 60_000 };
  }

  /**
   * Uses a login link: GETDEL takes it atomically, so two devices opening the same link at
   * once get one session between them. Undefined when the code is unknown, used or expired.
   */
  async redeem(code: string, site: string): Promise<{ secret: string; session: DeviceSession } | undefined> {
    const raw = (await this.redis.getdel(this.linkKey(hashToken(code)))) as string | null;
    if (!raw) return undefined;
    const link = JSON.parse(raw) as LinkRecord;
    if (link.site !== site) return undefined;
    const secret = `${SESSION_PREFIX}${randomBytes(32).toString('base64url')}`;
    const hash = hashToken(secret);
    const session: DeviceSession = { id: randomBytes(8).toString('hex'), site, account: link.account, ...(link.label ? { label: link.label } : {}), created: new Date(this.now()).toISOString() };
    await this.redis.multi().set(this.sessionKey(hash), JSON.stringify(session), 'PX', SESSION_MS).hset(this.indexKey(), session.id, hash).exec();
    return { secret, session };
  }

  /** The session of a cookie's secret, renewed while in use; undefined when unknown, revoked or expired. */
  async lookup(secret: string): Promise<DeviceSession | undefined> {
    if (!secret.startsWith(SESSION_PREFIX) || secret.length > 100) return undefined;
    const hash = hashToken(secret);
    if (!this.version) return this.fetch(hash);
    return this.cache.get(hash, await this.version(), () => this.fetch(hash));
  }

  private async fetch(hash: string): Promise<DeviceSession | undefined> {
    const raw = await this.redis.get(this.sessionKey(hash));
    if (!raw) return undefined;
    const session = JSON.parse(raw) as DeviceSession;
    const last = this.renewed.get(hash) ?? 0;
    if (this.now() - last > RENEW_MS) {
      if (this.renewed.size > 100_000) this.renewed.clear();
      this.renewed.set(hash, this.now());
      await this.redis.pexpire(this.sessionKey(hash), SESSION_MS);
    }
    return session;
  }

  /** The live sessions of an account (or all), oldest first. */
  async list(account?: string): Promise<DeviceSession[]> {
    const index = await this.redis.hgetall(this.indexKey());
    const ids = Object.keys(index);
    if (ids.length === 0) return [];
    const raws = await this.redis.mget(ids.map((id) => this.sessionKey(index[id])));
    const gone = ids.filter((_, i) => raws[i] === null);
    if (gone.length) await this.redis.hdel(this.indexKey(), ...gone); // expired: forget them
    return raws
      .filter((r): r is string => r !== null)
      .map((r) => JSON.parse(r) as DeviceSession)
      .filter((s) => account === undefined || s.account === account)
      .sort((a, b) => (a.created < b.created ? -1 : a.created > b.created ? 1 : a.id < b.id ? -1 : 1));
  }

  /** Ends a session at once (a lost phone, a tenant who moved out). False when no such session. */
  async revoke(id: string): Promise<boolean> {
    const hash = await this.redis.hget(this.indexKey(), id);
    if (!hash) return false;
    // The credentials version (api/data/site-versions.ts): every API process drops its cached lookups.
    const [[, deleted]] = (await this.redis.multi().del(this.sessionKey(hash)).hdel(this.indexKey(), id).incr(`${this.prefix}credentials-version`).exec()) as [[unknown, number], [unknown, number]];
    this.cache.clear();
    this.onRevoke();
    return deleted === 1;
  }

  /** What the rest of the API sees of a session: a tenant of its account. */
  static asRecord(s: DeviceSession): TokenRecord {
    return { id: s.id, site: s.site, role: 'tenant', account: s.account, ...(s.label ? { label: s.label } : {}), created: s.created, via: 'session' };
  }
}

/** The value of one cookie in a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
