import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { zoneOf } from '../core/index.ts';
import { quoteString } from '../influx/client.ts';
import { processBalance } from './balance.ts';
import type { WorkerContext } from './context.ts';
import { BALANCE_HEARTBEAT_MS, readLiveEntry, readLiveSnapshot } from './live-snapshot.ts';
import { recordPayment } from './payments.ts';
import { closeQueues } from './queues.ts';
import { rollupAll, testContext, testEnv, testSite } from './testing/env.ts';
import type { TestEnv } from './testing/env.ts';
import { readingLines, syntheticReadings } from './testing/month.ts';

/**
 * Issue 15: a `balance` point is written when, and only when, one of the account's figures
 * changed since its last point, or its last point is a minute old (the heartbeat). The old
 * job wrote every account every 3 s: 33,000 points/s for 100,000 accounts.
 */
describe('balance points follow change, not time (real Redis and InfluxDB)', () => {
  const site = testSite();
  const zone = zoneOf(site.timezone);
  const FROM = '2026-10-01';
  const rows = syntheticReadings(site, FROM, 1, 60_000);
  const clock = { now: 0 };
  let env: TestEnv;
  let ctx: WorkerContext;

  beforeAll(async () => {
    env = await testEnv('balpts');
    ctx = testContext(env, [site], clock, { lateCheckEveryMs: 1e12 });
  });
  afterAll(async () => {
    await closeQueues(ctx.queues);
    await env.cleanup();
  });

  /** Points of the account at exactly `t`, per account. */
  async function pointsAt(t: number): Promise<string[]> {
    const r = await env.influx.query(`SELECT balance_fen FROM balance WHERE site = ${quoteString(site.id)} AND time = ${t}ms GROUP BY account`);
    return r.map((x) => x.account as string).sort();
  }
  const all = site.accounts.map((a) => a.id).sort();
  /** Readings up to t written and rolled up, the clock at t. */
  async function deliver(t: number, prev: number): Promise<void> {
    const part = rows.filter((r) => r.time > prev && r.time <= t);
    if (part.length) await env.influx.write(readingLines(site.id, part));
    clock.now = t;
    await rollupAll(ctx, site.id);
  }

  it('first run: a point for every account; an unchanged run a second later: none; a payment: only its account; a minute after: the heartbeat; new energy: the accounts it changed', async () => {
    const t0 = zone.midnight(FROM) + 10 * 3_600_000 + 30_000;
    await deliver(t0, -Infinity);
    const first = await processBalance(ctx, { site: site.id });
    expect(first.filter((a) => a.written).map((a) => a.account).sort()).toEqual(all);
    expect(await pointsAt(t0)).toEqual(all);
    const snap = await readLiveSnapshot(env.redis, env.prefix, site.id);
    expect(snap.checked).toBe(t0);
    expect(snap.accounts.get('A101')?.figures.balanceFen).toBe(first.find((a) => a.account === 'A101')!.balanceFen);
    // Today's own energy per period rides along for the API.
    expect((snap.accounts.get('A101')?.today ?? []).reduce((s, x) => s + x[1], 0)).toBeGreaterThan(0);
    // One account's entry alone (the API with its cache off) is the same entry, nothing of the others.
    const one = await readLiveEntry(env.redis, env.prefix, site.id, 'A101');
    expect(one.checked).toBe(t0);
    expect([...one.accounts.keys()]).toEqual(['A101']);
    expect(one.accounts.get('A101')).toEqual(snap.accounts.get('A101'));
    expect((await readLiveEntry(env.redis, env.prefix, site.id, 'NOPE')).accounts.size).toBe(0);

    // Nothing new, one second later: no figure changed -> no point; the run is still recorded.
    clock.now = t0 + 1000;
    const same = await processBalance(ctx, { site: site.id });
    expect(same.filter((a) => a.written)).toEqual([]);
    expect(await pointsAt(t0 + 1000)).toEqual([]);
    expect((await readLiveSnapshot(env.redis, env.prefix, site.id)).checked).toBe(t0 + 1000);

    // A payment changes A102's balance only.
    clock.now = t0 + 2000;
    await recordPayment({ site, influx: env.influx, redis: env.redis, keyPrefix: env.prefix, now: () => clock.now }, { account: 'A102', fen: 12_345, reference: 'R-points-1', time: t0 + 1500 });
    const paid = await processBalance(ctx, { site: site.id });
    expect(paid.filter((a) => a.written).map((a) => a.account)).toEqual(['A102']);
    expect(await pointsAt(t0 + 2000)).toEqual(['A102']);
    expect(paid.find((a) => a.account === 'A102')!.balanceFen - first.find((a) => a.account === 'A102')!.balanceFen).toBe(12_345);

    // Just under a minute after the first points: still nothing (A102's own heartbeat runs from its last point).
    clock.now = t0 + BALANCE_HEARTBEAT_MS - 1;
    expect((await processBalance(ctx, { site: site.id })).filter((a) => a.written)).toEqual([]);
    // The minute has elapsed for all but A102 (whose last point is 2 s younger).
    clock.now = t0 + BALANCE_HEARTBEAT_MS;
    const beat = await processBalance(ctx, { site: site.id });
    expect(beat.filter((a) => a.written).map((a) => a.account).sort()).toEqual(all.filter((a) => a !== 'A102'));
    clock.now = t0 + BALANCE_HEARTBEAT_MS + 2000;
    expect((await processBalance(ctx, { site: site.id })).filter((a) => a.written).map((a) => a.account)).toEqual(['A102']);

    // Ten more minutes of readings: energy (and power) changed for the tenants -> their points.
    const t1 = t0 + BALANCE_HEARTBEAT_MS + 2000 + 10 * 60_000 - 1;
    await deliver(t1 - 30_000, t0);
    clock.now = t1 - 30_000;
    const moved = await processBalance(ctx, { site: site.id });
    const changedAccounts = moved.filter((m) => {
      const before = beat.find((b) => b.account === m.account)!;
      return m.balanceFen !== before.balanceFen || m.costRateFenH !== before.costRateFenH || m.spent24hFen !== before.spent24hFen || m.hoursLeft !== before.hoursLeft;
    });
    expect(changedAccounts.length).toBeGreaterThan(0);
    // Every account with a changed figure got a point (the heartbeat was due too here, so all did).
    for (const m of changedAccounts) expect(m.written, m.account).toBe(true);
  });

  it('a figure that moves with time alone (cost per hour once the last reading is an hour old) writes a point, even between heartbeats', async () => {
    // No readings after the last delivery: after an hour the meters draw no power now.
    const snap = await readLiveSnapshot(env.redis, env.prefix, site.id);
    const last = Math.max(...[...snap.accounts.values()].map((e) => e.written));
    const lastReading = Math.max(...rows.filter((r) => r.time <= last).map((r) => r.time));
    clock.now = lastReading + 3_600_000 + 1;
    const run = await processBalance(ctx, { site: site.id });
    const a101 = run.find((a) => a.account === 'A101')!;
    expect(a101.costRateFenH).toBe(0);
    expect(a101.written).toBe(true);
    // And one more run 5 s later with nothing changed writes nothing.
    clock.now += 5000;
    expect((await processBalance(ctx, { site: site.id })).filter((a) => a.written)).toEqual([]);
  });

  it('the snapshot lost (Redis flushed): every account gets a point again, then quiet', async () => {
    await env.redis.del(`${env.prefix}:{${site.id}}:live`);
    clock.now += 1000;
    expect((await processBalance(ctx, { site: site.id })).filter((a) => a.written).map((a) => a.account).sort()).toEqual(all);
    clock.now += 1000;
    expect((await processBalance(ctx, { site: site.id })).filter((a) => a.written)).toEqual([]);
  });
});
