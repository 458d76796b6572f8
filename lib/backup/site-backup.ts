import type { RedisClient } from '../redis.ts';
import type { InfluxV1 } from '../../influx/client.ts';
import { writeWithRetry } from '../../influx/lines.ts';
import { exportSiteMeasurement, siteHasPoints } from '../../influx/site-export.ts';
import { ARCHIVE_FORMAT, ARCHIVE_VERSION, ArchiveWriter, readArchive } from './archive.ts';
import type { ArchiveRecord, RedisValue } from './archive.ts';
import { measurementsRegistered, prefixesWith, redisSectionsRegistered } from './registry.ts';

/**
 * `submeter backup` / `submeter restore` (issue 16): the durable state of one site, from
 * the registries of lib/backup/registry.ts, into one archive and back into empty servers.
 * Import api/index.ts and workers/index.ts first: their sections register on import.
 */

export interface BackupOptions {
  readonly site: string;
  /** The site file's text and name, saved with the state. */
  readonly siteFile?: { readonly name: string; readonly text: string };
  readonly influx: InfluxV1;
  readonly redis: RedisClient;
  /** Key prefixes of this deployment by kind; the registered defaults otherwise. */
  readonly prefixes?: Readonly<Record<string, string>>;
  readonly out: string;
  readonly onProgress?: (what: string, done: number, total: number) => void;
}

export type BackupCounts = Record<string, number>;

export async function backupSite(o: BackupOptions): Promise<BackupCounts> {
  const prefixes = prefixesWith(o.prefixes);
  const ctx = { site: o.site, prefixes };
  const sections = redisSectionsRegistered();
  const measurements = measurementsRegistered();
  const counts: BackupCounts = {};
  const w = new ArchiveWriter(o.out);
  try {
    await w.write({ type: 'manifest', format: ARCHIVE_FORMAT, version: ARCHIVE_VERSION, site: o.site, created: new Date().toISOString(), redis: sections.map((s) => ({ id: s.id, what: s.what })), influx: measurements.map((m) => ({ measurement: m.measurement, what: m.what })) });
    if (o.siteFile) await w.write({ type: 'site-file', name: o.siteFile.name, text: o.siteFile.text });
    for (const s of sections) {
      const prefix = prefixes[s.prefixKind];
      if (prefix === undefined) throw new Error(`backup: no prefix for kind '${s.prefixKind}' (section ${s.id})`);
      const keys = await s.keys(o.redis, ctx);
      for (const key of keys) {
        if (!key.startsWith(prefix)) throw new Error(`backup: key ${key} of section ${s.id} does not start with its prefix ${prefix}`);
        const value = await dumpKey(o.redis, key);
        if (!value) continue; // gone since it was listed
        const pttl = await o.redis.pttl(key);
        await w.write({ type: 'redis', section: s.id, prefixKind: s.prefixKind, key: key.slice(prefix.length), value, ...(pttl > 0 ? { pttl } : {}) });
      }
      counts[`redis:${s.id}`] = keys.length;
      o.onProgress?.(`redis ${s.id}`, 1, 1);
    }
    for (const m of measurements) {
      counts[`influx:${m.measurement}`] = await exportSiteMeasurement(
        o.influx,
        m.measurement,
        o.site,
        (lines) => w.write({ type: 'influx', measurement: m.measurement, lines }),
        (done, total) => o.onProgress?.(`influx ${m.measurement}`, done, total),
      );
    }
    await w.write({ type: 'end', counts });
  } finally {
    await w.close();
  }
  return counts;
}

async function dumpKey(redis: RedisClient, key: string): Promise<RedisValue | undefined> {
  const type = await redis.type(key);
  switch (type) {
    case 'string':
      return { t: 'string', v: (await redis.get(key)) ?? '' };
    case 'hash':
      return { t: 'hash', v: await redis.hgetall(key) };
    case 'set':
      return { t: 'set', v: (await redis.smembers(key)).sort() };
    case 'list':
      return { t: 'list', v: await redis.lrange(key, 0, -1) };
    case 'zset': {
      const flat = await redis.zrange(key, 0, -1, 'WITHSCORES');
      const v: [string, string][] = [];
      for (let i = 0; i < flat.length; i += 2) v.push([flat[i], flat[i + 1]]);
      return { t: 'zset', v };
    }
    case 'stream': {
      // In pages, so a long audit log is not one reply; entry ids are kept (restore re-adds them as they were).
      const v: [string, string[]][] = [];
      let start = '-';
      for (;;) {
        const page = (await redis.xrange(key, start, '+', 'COUNT', 1000)) as [string, string[]][];
        v.push(...page);
        if (page.length < 1000) break;
        start = `(${page[page.length - 1][0]}`;
      }
      return { t: 'stream', v };
    }
    case 'none':
      return undefined;
    default:
      throw new Error(`backup: key ${key} has Redis type ${type}, which the archive cannot hold`);
  }
}

export interface RestoreOptions {
  readonly archive: string;
  readonly influx: InfluxV1;
  readonly redis: RedisClient;
  readonly prefixes?: Readonly<Record<string, string>>;
  /** Overwrite a target that already holds state of the site. @defaultValue false */
  readonly force?: boolean;
  readonly onProgress?: (what: string, done: number) => void;
}

export interface RestoreResult {
  readonly site: string;
  readonly created: string;
  readonly counts: BackupCounts;
  readonly siteFile?: { readonly name: string; readonly text: string };
}

export class RestoreRefusedError extends Error {
  readonly exitCode = 3;
}

/**
 * Loads an archive into empty servers. A first pass checks the archive is whole (manifest
 * first, `end` last) and reads what it holds; then the target is checked: any key or point
 * of the site already there refuses the restore unless `force` (then keys are replaced and
 * points overwritten). Nothing is written before both checks pass.
 */
export async function restoreSite(o: RestoreOptions): Promise<RestoreResult> {
  const prefixes = prefixesWith(o.prefixes);
  let manifest: Extract<ArchiveRecord, { type: 'manifest' }> | undefined;
  let end: Extract<ArchiveRecord, { type: 'end' }> | undefined;
  let siteFile: { name: string; text: string } | undefined;
  const targetKeys: string[] = [];
  const measurements = new Set<string>();
  for await (const rec of readArchive(o.archive)) {
    if (end) throw new Error(`${o.archive}: records after the end record`);
    if (rec.type === 'manifest') {
      if (rec.version > ARCHIVE_VERSION) throw new Error(`${o.archive}: archive version ${rec.version} is newer than this submeter reads (${ARCHIVE_VERSION})`);
      manifest = rec;
    } else if (rec.type === 'site-file') siteFile = { name: rec.name, text: rec.text };
    else if (rec.type === 'redis') targetKeys.push(targetKey(rec.prefixKind, rec.key, prefixes));
    else if (rec.type === 'influx') measurements.add(rec.measurement);
    else if (rec.type === 'end') end = rec;
  }
  if (!manifest) throw new Error(`${o.archive}: no manifest`);
  if (!end) throw new Error(`${o.archive}: ends before its end record: the archive is truncated; nothing was restored`);
  const site = manifest.site;

  if (!o.force) {
    const ctx = { site, prefixes };
    const present: string[] = [];
    for (const k of targetKeys) if (await o.redis.exists(k)) present.push(k);
    for (const s of redisSectionsRegistered()) present.push(...(await s.keys(o.redis, ctx)));
    const points: string[] = [];
    for (const m of new Set([...measurements, ...measurementsRegistered().map((x) => x.measurement)])) if (await siteHasPoints(o.influx, m, site)) points.push(m);
    if (present.length || points.length) {
      const what = [present.length ? `Redis keys (${[...new Set(present)].slice(0, 3).join(', ')}${present.length > 3 ? ', ...' : ''})` : '', points.length ? `InfluxDB ${o.influx.db} points of site ${site} in ${points.join(', ')}` : ''].filter(Boolean).join(' and ');
      throw new RestoreRefusedError(`the target already holds state of site ${site}: ${what}. Restore into empty servers, or pass --force to overwrite`);
    }
  }

  await o.influx.createDatabase();
  const counts: BackupCounts = {};
  let pending: string[] = [];
  const flush = async () => {
    if (pending.length) await writeWithRetry(o.influx, pending, 5, 500);
    pending = [];
  };
  for await (const rec of readArchive(o.archive)) {
    if (rec.type === 'redis') {
      const key = targetKey(rec.prefixKind, rec.key, prefixes);
      await loadKey(o.redis, key, rec.value, rec.pttl);
      counts[`redis:${rec.section}`] = (counts[`redis:${rec.section}`] ?? 0) + 1;
    } else if (rec.type === 'influx') {
      pending.push(...rec.lines);
      counts[`influx:${rec.measurement}`] = (counts[`influx:${rec.measurement}`] ?? 0) + rec.lines.length;
      if (pending.length >= 5000) await flush();
      o.onProgress?.(`influx ${rec.measurement}`, counts[`influx:${rec.measurement}`]);
    }
  }
  await flush();
  return { site, created: manifest.created, counts, ...(siteFile ? { siteFile } : {}) };
}

function targetKey(kind: string, rel: string, prefixes: Readonly<Record<string, string>>): string {
  const prefix = prefixes[kind];
  if (prefix === undefined) throw new Error(`restore: the archive has keys of prefix kind '${kind}', which this submeter does not know`);
  return prefix + rel;
}

async function loadKey(redis: RedisClient, key: string, value: RedisValue, pttl?: number): Promise<void> {
  const m = redis.multi().del(key);
  switch (value.t) {
    case 'string':
      m.set(key, value.v);
      break;
    case 'hash':
      if (Object.keys(value.v).length) m.hset(key, value.v);
      break;
    case 'set':
      if (value.v.length) m.sadd(key, ...value.v);
      break;
    case 'list':
      if (value.v.length) m.rpush(key, ...value.v);
      break;
    case 'zset':
      if (value.v.length) m.zadd(key, ...value.v.flatMap(([member, score]) => [score, member]));
      break;
    case 'stream':
      // The same entry ids as in the source: the audit log keeps its order and its ids.
      for (const [id, fields] of value.v) m.xadd(key, id, ...fields);
      break;
  }
  if (pttl !== undefined && pttl > 0) m.pexpire(key, pttl);
  const res = await m.exec();
  const failed = res?.find(([err]) => err);
  if (failed) throw new Error(`restore: writing ${key}: ${(failed[0] as Error).message}`);
}
