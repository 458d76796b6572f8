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

/** `<site>|<kind>` (a site id cannot hold `|`, core/site/schema.ts). */
export function newDataMessage(site: string, kind: NewDataKind): string {
  return `${site}|${kind}`;
}

export function parseNewDataMessage(text: string): { site: string; kind: NewDataKind } | undefined {
  const i = text.lastIndexOf('|');
  if (i <= 0) return undefined;
  const kind = text.slice(i + 1);
  return kind === 'readings' || kind === 'payment' ? { site: text.slice(0, i), kind } : undefined;
}

/** Publishes the announcement; never throws (the safety tick picks the data up if Redis is away). */
export async function announceNewData(redis: Pick<RedisClient, 'publish'>, keyPrefix: string | undefined, site: string, kind: NewDataKind): Promise<boolean> {
  try {
    await redis.publish(newDataChannel(keyPrefix), newDataMessage(site, kind));
    return true;
  } catch {
    return false;
  }
}
