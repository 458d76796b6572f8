import { existingKeys, globLiteral, registerPrefixKind, registerRedisSection, scanKeys } from '../lib/backup/registry.ts';
import { redisKeys } from './keys.ts';

/**
 * The workers' durable Redis state, for `submeter backup` (lib/backup/registry.ts). Money
 * is re-derived from InfluxDB, but these decide what happens next: the payments'
 * idempotency index (a reference seen once is never credited twice), the rollup
 * watermarks and late-data fingerprints, the charges version and the alert state (an
 * alert fired is not fired again). The settlement lock is transient and left out; BullMQ
 * queues are rebuilt by the schedulers at start.
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
  what: 'rollup watermarks per meter and the late-data fingerprints per meter and day',
  prefixKind: 'workers',
  async keys(redis, ctx) {
    const k = redisKeys(ctx.prefixes.workers, ctx.site);
    return [...(await existingKeys(redis, [k.watermarks])), ...(await scanKeys(redis, `${globLiteral(k.fingerprints)}*`))].sort();
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
