import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addDays, dateOfDayBucket, liveFigures, liveInputsFromReadings, zoneOf } from '../core/index.ts';
import { quoteString } from '../influx/client.ts';
import { processBalance } from './balance.ts';
import type { WorkerContext } from './context.ts';
import { closeQueues } from './queues.ts';
import { rollupAll, SITE_YAML, testContext, testEnv, testSite } from './testing/env.ts';
import type { TestEnv } from './testing/env.ts';
import { readingLines, syntheticReadings } from './testing/month.ts';

/**
 * Zones whose DST change falls at local midnight (America/Santiago, America/Havana,
 * Asia/Beirut) and Berlin for contrast (issue 10). The API and the workers used +0, +1 h and
 * +2 h guesses for "the local date of an InfluxDB day bucket"; the core's dateOfDayBucket is
 * the one rule. Checked on the real InfluxDB: every day bucket starts at the core's local
 * midnight and holds exactly that local day's hours (23, 24 or 25). Then the live figures of
 * a Santiago site across its 23-hour day equal the core's re-derivation from the readings.
 */
const ZONES = ['America/Santiago', 'America/Havana', 'Asia/Beirut', 'Europe/Berlin'];

describe('InfluxDB day buckets and the core local date', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await testEnv('daybucket');
  });
  afterAll(async () => env.cleanup());

  for (const tz of ZONES) {
    it(`${tz}: each day bucket starts at the local midnight of dateOfDayBucket and holds that day's hours`, async () => {
      const zone = zoneOf(tz);
      const tag = tz.replace('/', '_');
      const a = Date.UTC(2026, 2, 1);
      const b = Date.UTC(2026, 10, 10);
      const lines: string[] = [];
      for (let t = a; t < b; t += 3_600_000) lines.push(`hours,zone=${tag} n=1i ${t}`);
      await env.influx.write(lines, 'ms');
      const rows = await env.influx.query(`SELECT sum(n) FROM hours WHERE zone = '${tag}' AND time >= ${a}ms AND time < ${b}ms GROUP BY time(1d) fill(none) tz(${quoteString(tz)})`);
      const inner = rows.slice(1, -1); // the range's first and last days are partial
      expect(inner.length).toBeGreaterThan(240);
      let long = 0;
      let short = 0;
      for (const r of inner) {
        const date = dateOfDayBucket(tz, r.time as number);
        expect(r.time, `${tz} ${date}`).toBe(zone.midnight(date));
        const hours = (zone.midnight(addDays(date, 1)) - zone.midnight(date)) / 3_600_000;
        expect(r.sum, `${tz} ${date}`).toBe(hours);
        if (hours === 25) long++;
        if (hours === 23) short++;
      }
      expect([short, long]).toEqual([1, 1]);
    });
  }
});

describe('live figures across a day without a midnight (America/Santiago, 2026-09-06)', () => {
  it('the balance worker equals the core re-derivation from the readings, provisional shares included', async () => {
    const site = testSite(SITE_YAML.replace('Asia/Shanghai', 'America/Santiago'));
    const zone = zoneOf(site.timezone);
    const env = await testEnv('santiago');
    const clock = { now: 0 };
    const ctx: WorkerContext = testContext(env, [site], clock);
    try {
      const rows = syntheticReadings(site, '2026-09-05', 2, 15 * 60_000);
      // 20:00 on the 23-hour day; nothing settled yet.
      clock.now = zone.midnight('2026-09-06') + 19 * 3_600_000;
      expect(zone.format(clock.now)).toBe('2026-09-06T20:00:00-03:00');
      await env.influx.write(readingLines(site.id, rows.filter((r) => r.time <= clock.now)));
      await rollupAll(ctx, site.id);
      const mine = await processBalance(ctx, { site: site.id });
      const ref = liveFigures(site, liveInputsFromReadings(site, rows, [], clock.now));
      for (const a of ref.accounts) {
        const m = mine.find((x) => x.account === a.account)!;
        expect({ balance: m.balanceFen, provisional: m.provisionalFen, today: m.costTodayFen, spent: m.spent24hFen, hours: m.hoursLeft }).toEqual({
          balance: a.balanceFen,
          provisional: a.provisionalFen,
          today: a.todayFen,
          spent: a.spent24Fen,
          hours: a.hoursLeft ?? undefined,
        });
        expect(a.todayFen).toBeGreaterThan(0);
      }
    } finally {
      await closeQueues(ctx.queues);
      await env.cleanup();
    }
  });
});
