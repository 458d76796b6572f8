import { breakReadingsLog } from './readings-log.ts';
import type { RedisClient } from './redis.ts';

/**
 * The Redis channel on which a writer announces "new data for site S" (issue 15): the
 * collector after each batch of readings InfluxDB acknowledged, `submeter import` after
 * its rows, a recorded payment. The workers run the site's rollup (readings) or balance
 * (payments) on it instead of polling InfluxDB every few seconds per site and meter batch;
 * a slow safety tick covers a message lost (pub/sub is fire-and-forget) or a writer that
 * does not announce. The prefix is the workers' key prefix.
 */
export function newDataChannel(keyPrefix = 'submeter'): string {
  return `${keyPrefix}:new-data`;
}

export type NewDataKind = 'readings' | 'payment';

/**
 * Separates the meter ids of a readings message. A meter id is letters, digits and
 * `_ . : -` (core/site/schema.ts), so neither `,` nor `|` can occur inside one.
 */
const METER_SEP = ',';

/**
 * `<site>|<kind>` (a site id cannot hold `|`, core/site/schema.ts), or for readings
 * `<site>|readings|<meter>,<meter>,...`: only those meters got readings, so the workers roll
 * up only them. Without meter ids (or with none) the message means the whole site, as
 * before meter ids existed (older writers, `submeter import`).
 */
export function newDataMessage(site: string, kind: NewDataKind, meters?: Iterable<string>): string {
  const ids = kind === 'readings' && meters ? [...meters] : [];
  return ids.length > 0 ? `${site}|${kind}|${ids.join(METER_SEP)}` : `${site}|${kind}`;
}

export interface NewDataMessage {
  readonly site: string;
  readonly kind: NewDataKind;
  /** The meters that got readings; absent: the whole site. */
  readonly meters?: readonly string[];
}

export function parseNewDataMessage(text: string): NewDataMessage | undefined {
  const [site, kind, ids, ...rest] = text.split('|');
  if (!site || rest.length > 0 || (kind !== 'readings' && kind !== 'payment')) return undefined;
  const meters = kind === 'readings' && ids ? ids.split(METER_SEP).filter((m) => m.length > 0) : [];
  return meters.length > 0 ? { site, kind, meters } : { site, kind };
}

/**
 * Publishes the announcement; never throws (the safety tick picks the data up if Redis is away).
 * Readings of the whole site (no meter ids: `submeter import`, a writer that does not log
 * what it wrote) also break the site's readings log (lib/readings-log.ts), so the rollup reads
 * every meter from InfluxDB once instead of trusting the log.
 */
export async function announceNewData(redis: Pick<RedisClient, 'publish' | 'xadd'>, keyPrefix: string | undefined, site: string, kind: NewDataKind, meters?: Iterable<string>): Promise<boolean> {
  try {
    if (kind === 'readings' && meters === undefined) await breakReadingsLog(redis, keyPrefix, site);
    await redis.publish(newDataChannel(keyPrefix), newDataMessage(site, kind, meters));
    return true;
  } catch {
    return false;
  }
}
