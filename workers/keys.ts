import { readingsLogKey } from '../lib/readings-log.ts';
import { siteTag } from '../lib/redis.ts';

/**
 * Redis key names of the workers' own state (queues have their own BullMQ prefix, see
 * queuePrefix in queues.ts). Everything that decides money is re-derived from InfluxDB, so
 * a Redis that lost its last second loses nothing.
 *
 * Every key of a site carries the site's hash tag, `submeter:{plaza}:payments`: on a Redis
 * Cluster a site's keys share one slot (its Lua scripts and MULTIs touch one node) and
 * different sites spread over the primaries (docs/scaling.md, "Redis Cluster").
 */
export function redisKeys(prefix = 'submeter', site: string) {
  const base = `${prefix}:${siteTag(site)}`;
  return {
    /** hash reference -> "time|account|fen" */
    payments: `${base}:payments`,
    /** settlement lock (one settlement of a site at a time, across processes) */
    settleLock: `${base}:settle-lock`,
    /**
     * hash local day -> "seq|reason": days to settle again, drained in day order by the
     * site's one settlement job (settle-requests.ts)
     */
    settleRequests: `${base}:settle-requests`,
    /** counter of settle requests (the seq above: a request made during a day's settlement is not lost) */
    settleRequestSeq: `${base}:settle-request-seq`,
    /** hash meter -> newest raw reading time the rollup has seen (ms): the late-data bound */
    watermarks: `${base}:watermarks`,
    /** hash meter -> rollup state JSON (position and carried counter state, workers/rollup.ts) */
    rollupState: `${base}:rollup-state`,
    /** hash rollup batch "b/n" -> its position in the readings log, "b/n@" -> the position's epoch (workers/readings-cursor.ts), "b/n#resync" -> the tick's last InfluxDB read of its synced meters (ms) */
    rollupLogPosition: `${base}:rollup-log-position`,
    /** stream: the readings every collector logged after InfluxDB acknowledged them (lib/readings-log.ts) */
    readingsLog: readingsLogKey(prefix, site),
    /**
     * hash meter -> its last two raw readings the rollup has read, "t0,wh0,t1,wh1" (ms, Wh,
     * oldest first): the balance's last interval (power now, cost per hour) without a
     * statement over the site's reading series (workers/last-readings.ts).
     */
    lastReadings: `${base}:last-readings`,
    /**
     * stream of the meters whose buckets were written (rollup, settlement rewrite, restart),
     * appended after each write: the balance's trailing-window cache reads again only those
     * (workers/bucket-log.ts). Transient: a process that misses entries reads the whole site.
     */
    bucketLog: `${base}:bucket-log`,
    /**
     * newline-separated meters whose buckets a settlement is rewriting: set before the write,
     * deleted after the bucket log and stamps name them; a crash in between leaves it for the
     * next settlement run to log (workers/settlement.ts)
     */
    bucketRewritePending: `${base}:bucket-rewrite-pending`,
    /** prefix of the per-batch rollup lock (one run of a batch at a time) */
    rollupLock: `${base}:rollup-lock`,
    /** set of meters announced with new readings, not yet taken by their batch's rollup run (workers/rollup-dirty.ts) */
    rollupDirty: `${base}:rollup-dirty`,
    /** prefix of the per-batch set of meters a rollup run took and has not finished */
    rollupTaken: `${base}:rollup-taken`,
    /** hash "meter|day" -> fingerprint of that day's raw readings (late-data detection) */
    fingerprints: `${base}:fingerprints`,
    /** token replaced after every settlement write: balances re-read charge sums when it changes */
    chargesVersion: `${base}:charges-version`,
    /** hash account -> alert state JSON (armed / fired) */
    alertState: `${base}:alert-state`,
    /**
     * hash account -> the balance job's last figures JSON and when its last `balance` point
     * was written, plus `@checked` (last run): points only on change (workers/live-snapshot.ts),
     * the API's live figures without a query. Derived: the next balance run rebuilds it.
     */
    live: `${base}:live`,
    /**
     * hash account -> counter bumped after every ledger write of the account (payments,
     * refunds, transfers, deposits): the API's stored statements of the account are kept
     * while it is unchanged (api/data/site-versions.ts). Derived: losing it only costs recomputing.
     */
    ledgerVersions: `${base}:ledger-versions`,
    /**
     * counter bumped after every ledger write of the site (with ledgerVersions): the balance
     * job keeps the site's payment sums while it is unchanged (workers/balance.ts). Derived.
     */
    ledgerVersion: `${base}:ledger-version`,
  };
}

/** Upper time bound for "everything" queries: InfluxDB stores int64 ns (year 2262). */
export const MAX_TIME_MS = 9_000_000_000_000;
