import { readFileSync } from 'node:fs';
import type { RedisClient } from '../lib/redis.ts';

/**
 * What the soak benchmark reads of other processes (Linux /proc, man proc(5)): CPU time
 * and memory of the workers, the API, InfluxDB and Redis, and the servers' own counters.
 */

/** CPU time the process has used so far, in seconds (utime + stime, fields 14 and 15 of /proc/<pid>/stat, in clock ticks of 1/100 s). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) is in parentheses and may hold spaces: count after its ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Resident memory now (VmRSS) and its peak (VmHWM), bytes, from /proc/<pid>/status. */
export function memory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

export function processName(pid: number): string {
  return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
}

/** InfluxDB 1.x answers its own pid in SHOW DIAGNOSTICS (module "system", column PID). */
export async function influxPid(url: string): Promise<number> {
  const res = await fetch(`${url}/query?q=${encodeURIComponent('SHOW DIAGNOSTICS')}`);
  const body = (await res.json()) as { results: { series?: { name: string; columns: string[]; values: unknown[][] }[] }[] };
  const system = body.results[0]?.series?.find((s) => s.name === 'system');
  const pid = Number(system?.values[0]?.[system.columns.indexOf('PID')]);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no PID in SHOW DIAGNOSTICS of ${url}`);
  return pid;
}

/** Points InfluxDB has accepted since it started (SHOW STATS, module "write", pointReq): every writer's, ours and the workers'. */
export async function influxPointsWritten(url: string): Promise<number> {
  const res = await fetch(`${url}/query?q=${encodeURIComponent('SHOW STATS')}`);
  const body = (await res.json()) as { results: { series?: { name: string; columns: string[]; values: unknown[][] }[] }[] };
  const write = body.results[0]?.series?.find((s) => s.name === 'write');
  const n = Number(write?.values[0]?.[write.columns.indexOf('pointReq')]);
  if (!Number.isFinite(n)) throw new Error(`no write/pointReq in SHOW STATS of ${url}`);
  return n;
}

/** Redis INFO fields (e.g. process_id in "server", used_memory in "memory"). */
export async function redisInfo(redis: RedisClient, section: string): Promise<Record<string, string>> {
  const text = await redis.info(section);
  return Object.fromEntries(
    text
      .split('\r\n')
      .filter((l) => l.includes(':') && !l.startsWith('#'))
      .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]),
  );
}
