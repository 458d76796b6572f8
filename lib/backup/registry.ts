import type { RedisClient } from '../redis.ts';
import { scanKeys } from '../redis.ts';

/**
 * What `submeter backup` saves of a site, as a registry (issue 16): each feature that keeps
 * durable state in Redis or InfluxDB registers it next to its own code (api/backup-sections.ts,
 * workers/backup-sections.ts, influx/site-export.ts), so a feature landing later (top-up
 * orders, relay audit) adds its keys in one place and backup and restore follow.
 */

export interface BackupContext {
  readonly site: string;
  /** Key prefix of each prefix kind in this deployment (`api`, `workers`, ...). */
  readonly prefixes: Readonly<Record<string, string>>;
}

export interface RedisSection {
  /** Stable name in archives, e.g. `api.tokens`. */
  readonly id: string;
  /** One line for the manifest and docs/deploy.md. */
  readonly what: string;
  /** Which prefix its keys start with; archives keep keys relative to it, so a restore may use other prefixes. */
  readonly prefixKind: string;
  /** The section's keys of a site that exist now (may read Redis: an index names the rest). */
  keys(redis: RedisClient, ctx: BackupContext): Promise<string[]>;
}

export interface MeasurementSection {
  readonly measurement: string;
  readonly what: string;
}

/**
 * Keys of a site that a backup leaves out on purpose, declared beside the code that owns
 * them so that every key is accounted for (site-backup.test.ts checks that each key of the
 * site is either in a section or here): derived state the code rebuilds from InfluxDB or
 * from the backed-up keys (the balance job's live snapshot, version stamps of the API's
 * stored results), and transient state (locks, rate windows, single-use login links).
 */
export interface DerivedKeys {
  /** Stable name, e.g. `workers.live`. */
  readonly id: string;
  /** What the keys hold and why losing them costs nothing but a recomputation. */
  readonly what: string;
  readonly prefixKind: string;
  /** SCAN globs of the site's keys in this declaration. */
  patterns(ctx: BackupContext): string[];
}

const redisSections = new Map<string, RedisSection>();
const derivedKeys = new Map<string, DerivedKeys>();
const measurements = new Map<string, MeasurementSection>();
const defaultPrefixes = new Map<string, string>();

export function registerRedisSection(s: RedisSection): void {
  if (redisSections.has(s.id)) throw new Error(`backup: Redis section '${s.id}' is already registered`);
  redisSections.set(s.id, s);
}

export function registerDerivedKeys(d: DerivedKeys): void {
  if (derivedKeys.has(d.id) || redisSections.has(d.id)) throw new Error(`backup: '${d.id}' is already registered`);
  derivedKeys.set(d.id, d);
}

export function derivedKeysRegistered(): DerivedKeys[] {
  return [...derivedKeys.values()];
}

export function registerMeasurement(s: MeasurementSection): void {
  if (!measurements.has(s.measurement)) measurements.set(s.measurement, s);
}

/** The prefix a kind has unless the deployment says otherwise (e.g. `api` -> `submeter:api:`). */
export function registerPrefixKind(kind: string, prefix: string): void {
  if (!defaultPrefixes.has(kind)) defaultPrefixes.set(kind, prefix);
}

export function redisSectionsRegistered(): RedisSection[] {
  return [...redisSections.values()];
}

export function measurementsRegistered(): MeasurementSection[] {
  return [...measurements.values()];
}

export function prefixesWith(overrides: Readonly<Record<string, string>> = {}): Record<string, string> {
  return { ...Object.fromEntries(defaultPrefixes), ...overrides };
}

/** Keys matching a glob, by SCAN on every primary of a cluster (lib/redis.ts; never KEYS, which blocks a busy Redis). */
export { scanKeys };

/** The given keys that exist (in order). */
export async function existingKeys(redis: RedisClient, keys: readonly string[]): Promise<string[]> {
  const flags = await Promise.all(keys.map((k) => redis.exists(k)));
  return keys.filter((_, i) => flags[i] === 1);
}

/** A literal string as a SCAN glob (escapes * ? [ ] \\). */
export function globLiteral(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
