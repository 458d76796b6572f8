import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addDays, billRunJson, computeBillRun, liveFigures, liveInputsFromReadings, parseSiteYaml, PERIODS } from '../../../core/index.ts';
import type { BillRun, ReadingRow, Site } from '../../../core/index.ts';
import { buildApp } from '../../../api/app.ts';
import { RedisTokenStore } from '../../../api/auth/token-store.ts';
import { SiteRef } from '../../../api/site-ref.ts';
import { quoteString } from '../../../influx/client.ts';
import { sampleLine } from '../../../influx/lines.ts';
import { F, M, T } from '../../../influx/schema.ts';
import { closeQueues, liveBill, pendingSettlements } from '../../../workers/index.ts';
import { processBalance } from '../../../workers/balance.ts';
import type { WorkerContext } from '../../../workers/context.ts';
import { processSettlement } from '../../../workers/settlement.ts';
import { rollupAll, testContext, testEnv } from '../../../workers/testing/env.ts';
import type { TestEnv } from '../../../workers/testing/env.ts';
import type { Sample } from '../../sample.ts';
import { frozenTouSiteYaml } from '../../test-support/frozen-tou-site.ts';
import { outageRun } from '../../test-support/outage-run.ts';

/**
 * Issue 16, outages filled from the meter's own memory, on a TOU tariff (billing.md
 * section 2 rule 5, amendment 12). Three DL/T 645 meters (the master and two tenants, one
 * programmed with another register order) run on the simulator; the collector is stopped
 * for three simulated days, then reads the daily freezes back. The outage days must bill
 * exactly like an uninterrupted run of the same meters: per period, to the Wh and the fen,
 * with no estimated mark; and the live pipeline (rollup buckets -> provisional settlement,
 * nightly settlement and its re-settlement of the days it settled during the outage) must
 * end on the offline bill.
 *
 * Why "exactly" holds, so the test can demand byte equality: the simulated meter counts
 * like a meter, in whole 0.01 kWh steps, each step into the register of the TOU period it
 * falls in (sim/dlt645/tariff-registers.ts: it walks every period change, so its registers
 * at an instant do not depend on when it was read), and its total is the sum of its tariff
 * registers. The uninterrupted run polls hourly on the hour, and every boundary of this
 * tariff is on the hour, so each of its hourly intervals lies in one period: its energy (the
 * total's delta) is that period's register delta over the hour, and a day's hours of a
 * period add up to that register's delta over the day. In the outage run every gap (the
 * last read before the outage -> the first freeze, freeze -> freeze, the last freeze -> the
 * first read after it) has both ends with all four registers and D = R exactly, so rule 5
 * gives each period exactly its register delta, within one local day: the same Wh per
 * (day, period) cell as the uninterrupted run, hence the same lines to the fen.
 */
const HOUR = 3_600_000;
const DAY0 = Date.UTC(2026, 2, 1, 16); // 2026-03-02 00:00 Asia/Shanghai
const POLLS = Array.from({ length: 5 * 24 + 3 }, (_, i) => DAY0 + i * HOUR); // 03-02 00:00 .. 03-07 02:00
const STOP = DAY0 + 34 * HOUR; // 03-03 10:00: the last read before the outage
const BACK = STOP + 3 * 24 * HOUR; // 03-06 10:00: the collector is back
const FROM = '2026-03-02';
const TO = '2026-03-07'; // the complete days

function siteOn(port: string): Site {
  return parseSiteYaml(frozenTouSiteYaml(port));
}

const site = siteOn('/dev/unused');
/** A sample as the readings billing sees (what InfluxDB holds of it: wh and wh_t1..wh_t4). */
const rowOf = (s: Sample): ReadingRow => ({ time: s.time, meter: s.meter, wh: s.wh, ...(s.tariffWh ? { tariffWh: { ...s.tariffWh } } : {}) });
const same = (b: BillRun) => JSON.stringify({ ...b, quality: undefined }, null, 2);

describe('DL/T 645 daily freezes fill an outage on a TOU tariff (billing.md amendment 12)', () => {
  let gap: Sample[];
  let ref: Sample[];
  beforeAll(async () => {
    gap = await outageRun('tou-gap', siteOn, POLLS, { down: [STOP, BACK], epoch: DAY0 - HOUR, intervalMs: HOUR });
    ref = await outageRun('tou-ref', siteOn, POLLS, { epoch: DAY0 - HOUR, intervalMs: HOUR });
  }, 180_000);

  it('the freezes read back are the registers an uninterrupted run read at those midnights, all four tariffs', () => {
    const frozen = gap.filter((s) => s.source === 'frozen');
    for (const meter of ['M0', 'T102', 'T103']) {
      const mine = frozen.filter((s) => s.meter === meter);
      expect(mine.map((s) => s.time)).toEqual([2, 3, 4].map((d) => DAY0 + d * 24 * HOUR));
      for (const f of mine) {
        const live = ref.find((s) => s.meter === meter && s.time === f.time)!;
        expect({ wh: f.wh, tariffWh: f.tariffWh }).toEqual({ wh: live.wh, tariffWh: live.tariffWh });
        // Every period has energy, and the registers add up to the total (whole 0.01 kWh).
        expect(Object.keys(f.tariffWh ?? {})).toEqual(['1', '2', '3', '4']);
        expect(Object.values(f.tariffWh!).reduce((a, b) => a + b, 0)).toBe(f.wh);
      }
    }
    expect(gap.filter((s) => s.source === undefined && s.time > STOP && s.time < BACK)).toEqual([]);
  });

  it('the outage days bill exactly as the uninterrupted run: every period to the Wh and the fen, nothing flagged', () => {
    const gapBill = billRunJson(computeBillRun(site, gap.map(rowOf), [], FROM, TO));
    const refBill = billRunJson(computeBillRun(site, ref.map(rowOf), [], FROM, TO));
    expect(gapBill).toBe(refBill);
    const parsed = JSON.parse(gapBill) as BillRun;
    expect(parsed.quality).toEqual([]);
    // All four periods, own, loss: a real TOU bill.
    for (const a of parsed.accounts) expect(new Set(a.lines.filter((l) => l.kind === 'own').map((l) => l.period))).toEqual(new Set(PERIODS.filter((p) => p !== 'deep_valley')));
    // Day by day, too (a whole-range equality could hide a shift between days).
    for (let d = FROM; d < TO; d = addDays(d, 1)) {
      expect(billRunJson(computeBillRun(site, gap.map(rowOf), [], d, addDays(d, 1)))).toBe(billRunJson(computeBillRun(site, ref.map(rowOf), [], d, addDays(d, 1))));
    }
    // Without the tariff registers (what billing did before amendment 12) the same freezes
    // split the outage days linearly: other per-period figures, and flagged as estimates.
    const blind = computeBillRun(site, gap.map((s) => (s.source === 'frozen' ? { time: s.time, meter: s.meter, wh: s.wh } : rowOf(s))), [], FROM, TO);
    expect(blind.quality.filter((q) => q.kind === 'gap').map((q) => q.meter).sort()).toEqual(['M0', 'M0', 'M0', 'M0', 'T102', 'T102', 'T102', 'T102', 'T103', 'T103', 'T103', 'T103']);
    expect(same(blind)).not.toBe(same(parsed));
  });

  describe('live pipeline (real Redis and InfluxDB): settled during the outage, re-settled after it', () => {
    let env: TestEnv;
    let ctx: WorkerContext;
    let server: Server | undefined;
    const clock = { now: STOP + 5 * 60_000 };
    beforeAll(async () => {
      env = await testEnv('frozen_tou');
      ctx = testContext(env, [site], clock, { lateWindowDays: 14 });
    });
    afterAll(async () => {
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      await closeQueues(ctx.queues);
      await env.cleanup();
    });
    const spool = (samples: readonly Sample[]) => env.influx.write(samples.map((s) => sampleLine(site.id, s)), 'ms');

    it('the workers end on the offline bill of the uninterrupted run; provisional lines = settled lines; no estimated mark', async () => {
      // Before the outage: the collector's samples as they were spooled, rolled up and settled.
      await spool(gap.filter((s) => s.time <= STOP));
      await rollupAll(ctx, site.id);
      expect((await processSettlement(ctx, { site: site.id })).map((d) => d.day)).toEqual(['2026-03-02']);
      // The collector is down; the workers go on and settle the outage days with what they have.
      clock.now = BACK - HOUR;
      await rollupAll(ctx, site.id);
      expect((await processSettlement(ctx, { site: site.id })).map((d) => [d.day, d.outcome])).toEqual([
        ['2026-03-03', 'settled'],
        ['2026-03-04', 'settled'],
        ['2026-03-05', 'settled'],
      ]);
      // Back: the freezes go into the spool before the live samples, then on it goes.
      clock.now = POLLS[POLLS.length - 1] + 5 * 60_000;
      await spool(gap.filter((s) => s.time > STOP));
      await rollupAll(ctx, site.id);
      // The rollup saw the meters' silence reach over a settled day, and readings arrive for
      // settled days (the freezes): they are to be settled again, saying why.
      const asked = await pendingSettlements(ctx, site.id);
      expect(asked.map((r) => r.day)).toEqual(['2026-03-03', '2026-03-04', '2026-03-05']);
      expect(asked[0].reason).toMatch(/^readings after the day was settled: M0 \(silent 2026-03-03T10:00:00\+08:00 to 2026-03-04T00:00:00\+08:00\), T102 /);
      expect(asked[1].reason).toMatch(/T103 \(readings of the day arrived 2026-03-03T10:00:00\+08:00 to 2026-03-07T02:00:00\+08:00\)$/);
      const readings = gap.map(rowOf);
      const before = await processBalance(ctx, { site: site.id });
      // Provisional (2026-03-06 and the start of 03-07) = the core's live figures of the same readings.
      const reference = liveFigures(site, liveInputsFromReadings(site, readings, [], clock.now, '2026-03-05'));
      for (const a of reference.accounts) expect(before.find((x) => x.account === a.account)!.provisionalFen, a.account).toBe(a.provisionalFen);

      const settled = await processSettlement(ctx, { site: site.id });
      // 03-03 had lines until 10:00 (adjusted); 03-04 and 03-05 had none at all, every meter
      // being on the stopped collector's bus (their first lines now).
      expect(settled.map((d) => [d.day, d.outcome])).toEqual([
        ['2026-03-03', 'adjusted'],
        ['2026-03-04', 'settled'],
        ['2026-03-05', 'settled'],
        ['2026-03-06', 'settled'],
      ]);
      // Live = offline = the uninterrupted run, byte for byte (quality aside: events live).
      const live = await liveBill(env.influx, site, FROM, TO);
      expect(same(live)).toBe(same(computeBillRun(site, readings, [], FROM, TO)));
      expect(same(live)).toBe(same(computeBillRun(site, ref.map(rowOf), [], FROM, TO)));
      // 2026-03-06 (the freeze at 00:00, the first live read at 10:00) was provisional
      // before and settled after: its provisional lines were its settled lines.
      const after = await processBalance(ctx, { site: site.id });
      const day6 = await env.influx.query(`SELECT sum(${F.fen}) FROM ${M.charge} WHERE ${T.site} = ${quoteString(site.id)} AND time = ${DAY0 + 4 * 24 * HOUR}ms GROUP BY ${T.account}`);
      for (const b of before) {
        const settled6 = day6.find((r) => r.account === b.account)?.sum as number;
        expect(settled6, b.account).toBeGreaterThan(0);
        expect(b.provisionalFen, b.account).toBe(settled6 + after.find((x) => x.account === b.account)!.provisionalFen);
      }
      // Nothing of the outage days was an estimate: no gap energy in the settled facts...
      const gaps = await env.influx.query(`SELECT sum(${F.gapWh}) FROM ${M.meterCell} WHERE ${T.site} = ${quoteString(site.id)}`);
      expect(gaps[0]?.sum ?? 0).toBe(0);
      // ... so the tenant's statement marks nothing estimated.
      const app = buildApp({ site: new SiteRef(site), influx: env.influx, redis: env.redis, keyPrefix: `${env.prefix}:api:`, workersKeyPrefix: env.prefix, now: () => clock.now, cacheMs: 0 });
      server = await new Promise<Server>((resolve) => {
        const s = app.listen(0, '127.0.0.1', () => resolve(s));
      });
      const token = (await new RedisTokenStore(env.redis, `${env.prefix}:api:`).create({ site: site.id, role: 'tenant', account: 'A102' })).token;
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/accounts/A102/bills/2026-03`, { headers: { authorization: `Bearer ${token}` } });
      const st = (await res.json()) as { lines: { period: string; estimated: boolean }[]; meters: { meter: string; estimated: boolean }[] };
      expect(res.status).toBe(200);
      expect(st.lines.length).toBeGreaterThan(4);
      expect(st.lines.filter((l) => l.estimated)).toEqual([]);
      expect(st.meters.map((m) => [m.meter, m.estimated])).toEqual([['T102', false]]);
    }, 180_000);
  });
});
