import type { RedisClient } from '../lib/redis.ts';
import { redisKeys } from './keys.ts';

/**
 * Which meters a rollup run takes (issue 15): announced readings name their meters
 * (lib/new-data-channel.ts), the workers add them to the site's dirty set, and the run of a
 * batch takes its own meters out of it atomically and queries only those; at 100,000 meters
 * a round announces ~1/60 of them, where one statement per meter of every batch was
 * ~100,000 statements a round.
 *
 * Nothing here decides what is rolled up: each meter's position in the rollup state
 * (workers/rollup.ts) does. The set only says whom to ask now. A member `*<batch>/<batches>`
 * means every meter of that batch (the safety tick, a whole-site announcement), so an
 * announcement lost, a writer that does not announce or a run that died with meters taken
 * only costs freshness until the tick.
 *
 * A run moves what it takes into its batch's `taken` set and deletes that only after the
 * meters' state is written; a run killed in between leaves them there and the batch's next
 * run (the next announcement, a retry or the tick) takes them again.
 */

/** The member that means "every meter of the batch". Meter ids start with a letter or digit. */
export function allMember(batch: number, batches: number): string {
  return `*${batch}/${batches}`;
}

/** The batch's taken set (deleted in the same round trip as its run's meter states: workers/rollup.ts). */
export function takenKey(keyPrefix: string | undefined, site: string, batch: number, batches: number): string {
  return `${redisKeys(keyPrefix, site).rollupTaken}:${batch}/${batches}`;
}

/** Marks meters (or a whole batch) for the next rollup run of their batch. */
export async function markRollup(redis: Pick<RedisClient, 'sadd'>, keyPrefix: string | undefined, site: string, members: readonly string[]): Promise<void> {
  if (members.length > 0) await redis.sadd(redisKeys(keyPrefix, site).rollupDirty, ...members);
}

// KEYS: dirty set, taken set. ARGV: the "all" member, then the batch's meter ids.
// Moves the batch's members from dirty to taken; returns taken (this run's and any left by a killed run).
const TAKE = `
for i = 1, #ARGV do
  if redis.call('SREM', KEYS[1], ARGV[i]) == 1 then
    redis.call('SADD', KEYS[2], ARGV[i])
  end
end
return redis.call('SMEMBERS', KEYS[2])`;

export interface Taken {
  /** Every meter of the batch. */
  readonly all: boolean;
  /** The batch's meters to roll up (all of them when `all`). */
  readonly meters: readonly string[];
}

/** Takes a batch's marked meters (atomic: a meter marked meanwhile is in this take or the next). */
export async function takeRollup(redis: Pick<RedisClient, 'eval'>, keyPrefix: string | undefined, site: string, batch: number, batches: number, ids: readonly string[]): Promise<Taken> {
  const all = allMember(batch, batches);
  const taken = (await redis.eval(TAKE, 2, redisKeys(keyPrefix, site).rollupDirty, takenKey(keyPrefix, site, batch, batches), all, ...ids)) as string[];
  if (taken.includes(all)) return { all: true, meters: ids };
  const set = new Set(taken);
  return { all: false, meters: ids.filter((id) => set.has(id)) };
}


const batchIndex = new WeakMap<object, { batches: number; of: Map<string, number> }>();

/**
 * What an announcement marks, per batch: its meters of the site (ids the site does not
 * know are dropped), or without meter ids every batch's "all" member. Batches as
 * batchMeters (queues.ts) deals them: sorted ids, round-robin.
 */
export function announcedMarks(site: { readonly meters: readonly { readonly id: string }[] }, batches: number, meters: readonly string[] | undefined): Map<number, string[]> {
  const out = new Map<number, string[]>();
  if (meters === undefined) {
    for (let b = 0; b < batches; b++) out.set(b, [allMember(b, batches)]);
    return out;
  }
  let index = batchIndex.get(site);
  if (!index || index.batches !== batches) {
    const ids = site.meters.map((m) => m.id).sort();
    index = { batches, of: new Map(ids.map((id, i) => [id, i % batches])) };
    batchIndex.set(site, index);
  }
  for (const id of meters) {
    const b = index.of.get(id);
    if (b === undefined) continue;
    const list = out.get(b);
    if (list) list.push(id);
    else out.set(b, [id]);
  }
  return out;
}
