import { existingKeys, globLiteral, registerDerivedKeys, registerPrefixKind, registerRedisSection, scanKeys } from '../lib/backup/registry.ts';
import { relayKeys } from '../lib/relay-store.ts';
import { redisKeys } from './keys.ts';
import { topupKeys } from './topup/order-store.ts';

/**
 * The workers' durable Redis state, for `submeter backup` (lib/backup/registry.ts). Money
 * is re-derived from InfluxDB, but these decide what happens next: the payments'
 * idempotency index (a reference seen once is never credited twice), the rollup's carried
 * counter state, watermarks and late-data fingerprints, the charges version and the alert
 * state (an alert fired is not fired again), the relay state and audit trail (prepaid
 * enforcement, issue 13) and the top-up orders (issue 14: an order paid at the provider must
 * be found again). Locks, the relay's per-bus rate window and budget waits are transient and
 * left out; BullMQ queues are rebuilt by the schedulers at start.
 */
registerPrefixKind('workers', 'submeter');

registerRedisSection({
  id: 'workers.payments',
  what: 'payment idempotency index: reference -> time|account|fen (a reference is credited once)',
  prefixKind: 'workers',
  keys: (redis, ctx) => existingKeys(redis, [redisKeys(ctx.prefixes.workers, ctx.site).payments]),
});

registerRedisSection({
  id: 'workers.rollup',
  what: "rollup state per meter (position and carried counter state: the buckets resume exactly), watermarks and last two raw readings per meter and the late-data fingerprints per meter and day",
  prefixKind: 'workers',
  async keys(redis, ctx) {
    const k = redisKeys(ctx.prefixes.workers, ctx.site);
    return [...(await existingKeys(redis, [k.rollupState, k.watermarks, k.lastReadings])), ...(await scanKeys(redis, `${globLiteral(k.fingerprints)}*`))].sort();
  },
});

registerRedisSection({
  id: 'workers.settle-requests',
  what: 'days asked to be settled again (late readings, a meter back after silence) and their counter: work the settlement job has not done yet',
  prefixKind: 'workers',
  keys: (redis, ctx) => {
    const k = redisKeys(ctx.prefixes.workers, ctx.site);
    return existingKeys(redis, [k.settleRequests, k.settleRequestSeq]);
  },
});

registerRedisSection({
  id: 'workers.alerts',
  what: 'alert state per account (armed or fired) and the charges version the balances follow',
  prefixKind: 'workers',
  keys: (redis, ctx) => {
    const k = redisKeys(ctx.prefixes.workers, ctx.site);
    return existingKeys(redis, [k.alertState, k.chargesVersion]);
  },
});

registerRedisSection({
  id: 'workers.relay',
  what: 'prepaid enforcement (lib/relay-store.ts): wanted state per account, read-back per meter, manual overrides, warning levels sent, relay commands and the audit trail',
  prefixKind: 'workers',
  keys: (redis, ctx) => {
    const k = relayKeys(ctx.prefixes.workers, ctx.site);
    return existingKeys(redis, [k.wanted, k.readback, k.override, k.warning, k.commands, k.audit]);
  },
});

registerRedisSection({
  id: 'workers.topup',
  what: 'online top-up orders (one hash each), the order indexes, refunds and reconciliation reports',
  prefixKind: 'workers',
  async keys(redis, ctx) {
    const k = topupKeys(ctx.prefixes.workers, ctx.site);
    // Every order is in the `orders` index; a SCAN also finds one whose index entry a crash lost.
    const orders = await scanKeys(redis, `${globLiteral(k.order(''))}*`);
    return [...(await existingKeys(redis, [k.orders, k.open, k.refunds, k.reports])), ...orders.sort()];
  },
});

// Left out on purpose (registerDerivedKeys): rebuilt by the workers, or transient.
registerDerivedKeys({
  id: 'workers.live',
  what: "the balance job's last figures per account and its last run (workers/live-snapshot.ts): the next balance run writes them again; until then the API computes the live figures itself",
  prefixKind: 'workers',
  patterns: (ctx) => [globLiteral(redisKeys(ctx.prefixes.workers, ctx.site).live)],
});

registerDerivedKeys({
  id: 'workers.bucket-log',
  what: "the meters whose buckets were written lately (workers/bucket-log.ts): the balance's cache reads again only those; a restore without it makes each process read whole sites once",
  prefixKind: 'workers',
  patterns: (ctx) => [globLiteral(redisKeys(ctx.prefixes.workers, ctx.site).bucketLog)],
});

registerDerivedKeys({
  id: 'workers.bucket-rewrite-pending',
  what: "the meters a settlement is rewriting buckets of, until the bucket log names them (workers/settlement.ts): a restore without it may leave a balance process's trailing-window cache and the API's stored usage behind until those meters' next bucket write; restart the workers and the API after a restore",
  prefixKind: 'workers',
  patterns: (ctx) => [globLiteral(redisKeys(ctx.prefixes.workers, ctx.site).bucketRewritePending)],
});

registerDerivedKeys({
  id: 'workers.readings-log',
  what: "the readings the collectors logged after InfluxDB took them, and each rollup batch's position in that log (lib/readings-log.ts, workers/readings-cursor.ts): a restore without them makes each batch's next run read its meters from InfluxDB once",
  prefixKind: 'workers',
  patterns: (ctx) => {
    const k = redisKeys(ctx.prefixes.workers, ctx.site);
    return [globLiteral(k.readingsLog), globLiteral(k.rollupLogPosition)];
  },
});

registerDerivedKeys({
  id: 'workers.ledger-versions',
  what: "per account and per site a counter bumped after each ledger write: a version stamp of the API's stored statements (api/data/site-versions.ts) and of the balance job's payment sums (workers/balance.ts); a restore that resets it only makes them computed again (restart the API and the workers after a restore)",
  prefixKind: 'workers',
  patterns: (ctx) => {
    const k = redisKeys(ctx.prefixes.workers, ctx.site);
    return [globLiteral(k.ledgerVersions), globLiteral(k.ledgerVersion)];
  },
});

registerDerivedKeys({
  id: 'workers.locks',
  what: 'the settlement lock and the rollup batch locks (expiring; held only while a job runs)',
  prefixKind: 'workers',
  patterns: (ctx) => {
    const k = redisKeys(ctx.prefixes.workers, ctx.site);
    return [globLiteral(k.settleLock), `${globLiteral(k.rollupLock)}*`];
  },
});

registerDerivedKeys({
  id: 'workers.rollup-dirty',
  what: 'meters announced with new readings and not yet rolled up (workers/rollup-dirty.ts): whom the next runs ask first; the rollup state says what is new, and the safety tick rolls up every meter',
  prefixKind: 'workers',
  patterns: (ctx) => {
    const k = redisKeys(ctx.prefixes.workers, ctx.site);
    return [globLiteral(k.rollupDirty), `${globLiteral(k.rollupTaken)}*`];
  },
});

registerDerivedKeys({
  id: 'workers.relay-transient',
  what: "the relay queue's per-bus rate windows and budget waits (lib/relay-store.ts): seconds-long pacing",
  prefixKind: 'workers',
  patterns: (ctx) => {
    const k = relayKeys(ctx.prefixes.workers, ctx.site);
    return [globLiteral(k.budgetWait), `${globLiteral(k.rate(''))}*`];
  },
});
