import type { RedisClient } from '../lib/redis.ts';
import { InfluxV1 } from '../influx/client.ts';
import type { Logger } from '../lib/logger.ts';

/**
 * The API's stores as a service that comes and goes (issue 11): the API starts while
 * InfluxDB or Redis is down, serves what does not need them (the page, the OpenAPI
 * document, and with Redis: who am I, tokens, the audit log), answers 503 with
 * Retry-After for what does, and recovers by itself when they are back.
 */

/**
 * Creates the database now if InfluxDB answers (so a fresh install serves empty figures
 * at once), else keeps trying in the background with backoff; afterwards every
 * `recheckMs` again (idempotent), so an InfluxDB that came back without its data is set
 * up again. The first attempt is bounded by a short timeout: start-up never waits long.
 */
export function keepInfluxDatabase(influx: InfluxV1, log: Logger, opts: { readonly token?: string; readonly recheckMs?: number } = {}): { first: Promise<boolean>; stop(): void } {
  const probe = new InfluxV1({ url: influx.url, db: influx.db, token: opts.token, timeoutMs: 2000 });
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let failures = 0;
  const attempt = async (): Promise<boolean> => {
    try {
      await probe.createDatabase();
      if (failures > 0) log.info({ db: influx.db }, 'InfluxDB is back; database ready');
      failures = 0;
      return true;
    } catch (err) {
      // One warning per outage, not one per retry.
      if (failures++ === 0) log.warn({ err: (err as Error).message, url: influx.url }, 'InfluxDB unavailable; serving 503 for its routes and retrying');
      return false;
    }
  };
  const schedule = (ok: boolean) => {
    if (stopped) return;
    const delay = ok ? (opts.recheckMs ?? 60_000) : Math.min(1000 * 2 ** Math.min(failures, 4), 10_000);
    timer = setTimeout(() => void attempt().then(schedule), delay);
    timer.unref();
  };
  const first = attempt();
  void first.then(schedule);
  return {
    first,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/**
 * An ioredis client without an 'error' listener prints "[ioredis] Unhandled error event"
 * for every failed reconnect and, on some errors, crashes the process. This logs each
 * outage once and its end.
 */
export function watchRedis(redis: RedisClient, log: Logger): void {
  let down = false;
  redis.on('error', (err: Error) => {
    if (down) return;
    down = true;
    log.warn({ err: err.message }, 'Redis unavailable; serving 503 for its routes and reconnecting');
  });
  redis.on('ready', () => {
    if (!down) return;
    down = false;
    log.info('Redis is back');
  });
}
