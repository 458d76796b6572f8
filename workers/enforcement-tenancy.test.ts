import { Point } from '@influxdata/influxdb-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSiteYaml } from '../core/index.ts';
import { processEnforcement } from './enforcement.ts';
import type { WorkerContext } from './context.ts';
import { closeQueues } from './queues.ts';
import { testContext, testEnv } from './testing/env.ts';
import type { TestEnv } from './testing/env.ts';

/**
 * Prepaid enforcement (issue 13) with tenancy (billing.md section 11): a relay follows the
 * balance of the unit's occupant now. Shop 4 (A4) leaves T4 in debt at 12:00 and A5 moves
 * in: before noon A4's debt trips T4; after it A4 has no unit to cut (its debt is for its
 * final statement), and T4 follows A5's balance. Before this, enforcement read a meter's
 * listed `account` only: a unit with successive occupants had no relay at all, and a
 * departed tenant's debt would have kept the new tenant in the dark.
 */

const HOUR = 3_600_000;
const local = (s: string) => Date.parse(`${s}+08:00`);
const NOON = local('2026-11-18T12:00:00');
const SITE = `
site: { id: relay-moves, timezone: Asia/Shanghai }
meters:
  - { id: M0, role: master }
  - { id: T4, role: tenant, accounts: [A4, A5], relay: plain, connection: { protocol: modbus-tcp, host: 127.0.0.1, port: 5020, unit: 4, map: dds238, timeout_ms: 3000 } }
accounts:
  - { id: A4, name: Shop 4, tariff: t, move_out: "2026-11-18T12:00:00+08:00" }
  - { id: A5, name: Shop 5, tariff: t, move_in: "2026-11-18T12:00:00+08:00" }
tariffs:
  - { id: t, versions: [{ effective_from: 2026-01-01, prices: { flat: "1.000000" }, schedule: [{ periods: [{ from: "00:00", to: "24:00", period: flat }] }] }] }
enforcement:
  mode: on
  readback: 3s
  max_data_age: 15m
  protected_windows: []
`;

describe('enforcement follows the occupant now (real Redis and InfluxDB)', () => {
  const site = parseSiteYaml(SITE);
  let env: TestEnv;
  let ctx: WorkerContext;
  const clock = { now: NOON - 2 * HOUR };
  beforeAll(async () => {
    env = await testEnv('relaymoves');
    ctx = testContext(env, [site], clock);
  });
  afterAll(async () => {
    await closeQueues(ctx.queues);
    await env.cleanup();
  });

  /** Fresh data at `clock.now`: both balances, the collector, the meter. */
  async function fresh(): Promise<void> {
    const t = clock.now;
    const lines = [
      new Point('balance').tag('site', site.id).tag('account', 'A4').intField('balance_fen', -20_000).timestamp(t).toLineProtocol()!,
      new Point('balance').tag('site', site.id).tag('account', 'A5').intField('balance_fen', 50_000).timestamp(t).toLineProtocol()!,
      new Point('collector').tag('site', site.id).tag('host', 'x').intField('spool_samples', 0).booleanField('spool_full', false).timestamp(t).toLineProtocol()!,
      new Point('meter_health').tag('site', site.id).tag('meter', 'T4').intField('last_seen', t).intField('consecutive_errors', 0).timestamp(t).toLineProtocol()!,
    ];
    await env.influx.write(lines);
  }

  it("before the move-out A4's debt trips its unit; after it A4 has no unit, and T4 follows A5", async () => {
    await fresh();
    const before = await processEnforcement(ctx, { site: site.id });
    expect(Object.keys(before.decisions)).toEqual(['A4']);
    expect(before.decisions.A4).toMatchObject({ wanted: 'open', reason: 'balance-exhausted' });
    expect(before.enqueued).toEqual([expect.stringContaining('|A4|open|')]);

    clock.now = NOON + HOUR;
    await fresh();
    const after = await processEnforcement(ctx, { site: site.id });
    expect(Object.keys(after.decisions)).toEqual(['A5']);
    expect(after.decisions.A5).toMatchObject({ wanted: 'closed' });
    expect(after.enqueued.some((id) => id.includes('|A4|'))).toBe(false);
    expect(after.enqueued.some((id) => id.includes('|open|'))).toBe(false);
  });
});
