import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { balanceWrites, readLiveSnapshot, SnapshotCache } from './live-snapshot.ts';
import type { AccountResult } from './live-snapshot.ts';
import { testEnv } from './testing/env.ts';
import type { TestEnv } from './testing/env.ts';

/** The balance job keeps the snapshot it saved; another writer's save must never be hidden by that copy. */
describe('SnapshotCache (real Redis)', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await testEnv('snapcache');
  });
  afterAll(async () => env.cleanup());

  const result = (account: string, balanceFen: number): AccountResult => ({ account, figures: { balanceFen, costRateFenH: 0, costTodayFen: 0, w: 0, priceMicro: 700_000, periodNow: 'flat' } });

  it('serves its own last save, and what another process saved after it', async () => {
    const a = new SnapshotCache();
    const b = new SnapshotCache();
    const run = async (c: SnapshotCache, now: number, results: AccountResult[]) => {
      const prev = await c.read(env.redis, env.prefix, 'p');
      const writes = balanceWrites(prev, results, now);
      await c.save(env.redis, env.prefix, 'p', prev, writes);
      return writes;
    };
    expect([...(await run(a, 1000, [result('A1', 100), result('A2', 200)])).write].sort()).toEqual(['A1', 'A2']);
    // Unchanged: nothing to write, from A's own copy.
    expect((await run(a, 2000, [result('A1', 100), result('A2', 200)])).write.size).toBe(0);
    // Another process (same instant, as with an injected clock) changes A2.
    expect([...(await run(b, 2000, [result('A1', 100), result('A2', 250)])).write]).toEqual(['A2']);
    // A sees B's save: A2 at 250 is no change for it, A1 still none.
    expect((await run(a, 3000, [result('A1', 100), result('A2', 250)])).write.size).toBe(0);
    const stored = await readLiveSnapshot(env.redis, env.prefix, 'p');
    expect(stored.accounts.get('A2')!.figures.balanceFen).toBe(250);
    expect(stored.checked).toBe(3000);
    expect([...stored.accounts.keys()].sort()).toEqual(['A1', 'A2']);
  });
});
