import { randomBytes } from 'node:crypto';
import type { RedisClient } from '../lib/redis.ts';

/**
 * The per-site settlement lock, held for the whole of a run.
 *
 * A settlement run reads what is stored for a day and writes the difference as the next
 * revision (settlement.ts). That is only right when no other run writes the same day's
 * charges in between: InfluxDB makes a write visible point by point and field by field
 * (its cache is partitioned), so a run that reads while another run's write lands sees
 * half of it and writes the other half again as an "adjustment" (a charge twice, or a
 * line's kWh twice with its fen once). Two runs of one site at once happened whenever a
 * day took longer than the lock's expiry, which was only renewed between days (a slow
 * InfluxDB; workers/crash.test.ts saw it under load with a 2 s lock).
 *
 * So the lock is renewed in the background while the run lives (every third of its
 * expiry, only if it is still ours), and `assertHeld` checks and extends it right before
 * the charges are written: a run that lost it (expired while the process was frozen, or
 * lost with a Redis that crashed) stops with a retryable error instead of writing on a
 * view another run may have changed. A lost lock is never taken back: someone else may
 * have settled in between.
 */

// Extends the lock only if it is still ours. KEYS: lock. ARGV: token, ms.
const EXTEND = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;
// Releases the lock only if it is still ours.
const UNLOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/** Another run holds the site's lock (retryable: the job backs off and tries again). */
export class SettlementBusyError extends Error {
  override name = 'SettlementBusyError';
}

/** This run's lock expired or was taken: it stops before writing anything more (retryable). */
export class SettlementLockLostError extends Error {
  override name = 'SettlementLockLostError';
}

export interface SettleLock {
  /** Extends the lock now; throws SettlementLockLostError when it is no longer ours. */
  assertHeld(): Promise<void>;
  /** Stops the renewal and deletes the lock if it is still ours. */
  release(): Promise<void>;
}

/** Takes the lock or throws SettlementBusyError; `what` names the site in the message. */
export async function acquireSettleLock(redis: RedisClient, key: string, ttlMs: number, what: string): Promise<SettleLock> {
  const token = randomBytes(8).toString('hex');
  if ((await redis.set(key, token, 'PX', ttlMs, 'NX')) !== 'OK') throw new SettlementBusyError(`settlement of ${what} is running in another worker; retrying later`);
  let lost = false;
  const extend = async () => (await redis.eval(EXTEND, 1, key, token, String(ttlMs))) === 1;
  let renewing: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    // One renewal at a time: while Redis is away the commands wait for the reconnect.
    renewing = renewing.then(async () => {
      if (!lost && !(await extend().catch(() => true))) lost = true;
    });
  }, Math.max(10, Math.floor(ttlMs / 3)));
  timer.unref?.();
  return {
    async assertHeld() {
      if (lost || !(await extend())) {
        lost = true;
        throw new SettlementLockLostError(`settlement lock of ${what} expired or was taken by another run; stopping before writing (retrying later)`);
      }
    },
    async release() {
      clearInterval(timer);
      await renewing.catch(() => undefined);
      await redis.eval(UNLOCK, 1, key, token).catch(() => undefined);
    },
  };
}
