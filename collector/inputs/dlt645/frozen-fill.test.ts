import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { billRunJson, computeBillRun, parseSiteYaml } from '../../../core/index.ts';
import type { Site } from '../../../core/site/index.ts';
import { InfluxV1 } from '../../../influx/client.ts';
import { sampleLine } from '../../../influx/lines.ts';
import { F, M, T } from '../../../influx/schema.ts';
import type { Sample } from '../../sample.ts';
import { outageRun } from '../../test-support/outage-run.ts';
import { DI, decodeValue, encodeValue, hexBytes, readRequest } from './codec.ts';

/**
 * Issue 16, outages filled from the meter's own memory: two DL/T 645 meters keep running
 * while the collector is stopped for three simulated days. After the restart the collector
 * reads their daily freezes (05 06 00 NN freeze time, 05 06 01 NN forward active energy)
 * and stores them as exact readings at the freeze instants, marked source=frozen. The days
 * of the outage then bill exactly as an uninterrupted run of the same meters, with no gap
 * flag (billing.md section 2 rule 4, amendment 11). Simulated time: hourly polls on the grid.
 */
const HOUR = 3_600_000;
const DAY0 = Date.UTC(2026, 2, 1, 16); // 2026-03-02 00:00 Asia/Shanghai
const dbs: InfluxV1[] = [];
const influxUrl = process.env.SUBMETER_INFLUX_URL ?? 'http://127.0.0.1:8096';

afterAll(async () => {
  for (const db of dbs) await db.dropDatabase().catch(() => undefined);
});

function siteOn(port: string): Site {
  const conn = (address: string) => `{ protocol: dlt645, port: ${JSON.stringify(port)}, parity: none, address: "${address}", timeout_ms: 2000 }`;
  return parseSiteYaml(`
site: { id: frozen, timezone: Asia/Shanghai }
meters:
  - { id: M0, role: master, max_gap: 2h, connection: ${conn('000000000001')} }
  - { id: T102, role: tenant, account: A102, max_gap: 2h, connection: ${conn('000000001102')} }
accounts:
  - { id: A102, tariff: flat, opening_balance: "500.00" }
tariffs:
  - id: flat
    versions:
      - effective_from: 2026-01-01
        prices: { flat: "0.850000" }
        schedule: [ { periods: [ { from: "00:00", to: "24:00", period: flat } ] } ]
`);
}

/**
 * One run of the two meters against a fresh simulator (collector/test-support/outage-run.ts),
 * polled hourly at the given instants, stored as the collector stores them: line protocol
 * into InfluxDB.
 */
async function run(name: string, polls: number[], down?: [number, number], changes?: Record<string, number>): Promise<{ samples: Sample[]; influx: InfluxV1 }> {
  const samples = await outageRun(name, siteOn, polls, { down, changes, epoch: DAY0 - HOUR, intervalMs: HOUR });
  const influx = new InfluxV1({ url: influxUrl, db: `t_frozen_${name}_${randomBytes(3).toString('hex')}` });
  dbs.push(influx);
  await influx.createDatabase();
  await influx.write(samples.map((s) => sampleLine('frozen', s)), 'ms');
  return { samples, influx };
}

async function billFrom(influx: InfluxV1, site: Site): Promise<string> {
  const rows = await influx.query(`SELECT "${F.wh}" FROM "${M.reading}" WHERE "${T.site}" = 'frozen' GROUP BY "${T.meter}"`);
  const readings = rows.map((r) => ({ time: Number(r.time), meter: String(r.meter), wh: Number(r.wh) }));
  return billRunJson(computeBillRun(site, readings, [], '2026-03-03', '2026-03-07'));
}

describe('DL/T 645 daily freezes fill an outage', () => {
  it('the freeze identifiers and the frame of a read of the last freeze', () => {
    expect(DI.dailyFreezeTime(1)).toBe(0x05060001);
    expect(DI.dailyFreezeForward(1)).toBe(0x05060101);
    expect(DI.dailyFreezeForward(62)).toBe(0x0506013e);
    expect(() => DI.dailyFreezeTime(63)).toThrow(/1\.\.62/);
    // 05 06 00 01 sent DI0 first, each +33H: 34 33 39 38.
    expect(hexBytes(readRequest('000000001102', DI.dailyFreezeTime(1), { wakeup: 0 }))).toBe('68 02 11 00 00 00 00 68 11 04 34 33 39 38 D0 16'); // CS: 0x1D0 mod 256
    // Freeze time YYMMDDhhmm, sent mm hh DD MM YY.
    const at = { kind: 'datetime', year: 2026, month: 3, day: 4, hour: 0, minute: 0 } as const;
    expect(hexBytes(encodeValue(DI.dailyFreezeTime(1), at))).toBe('00 00 04 03 26');
    expect(decodeValue(DI.dailyFreezeTime(1), encodeValue(DI.dailyFreezeTime(1), at))).toEqual({ ok: true, value: at });
  });

  it('collector down for 3 simulated days: frozen readings stored, the days bill exactly as an uninterrupted run, no gap flag', async () => {
    const hours = (from: number, to: number) => Array.from({ length: (to - from) / HOUR + 1 }, (_, i) => from + i * HOUR);
    const all = hours(DAY0, DAY0 + 5 * 24 * HOUR + 2 * HOUR); // 03-02 00:00 .. 03-07 02:00
    const stop = DAY0 + 34 * HOUR; // 03-03 10:00: last read before the outage
    const back = stop + 3 * 24 * HOUR; // 03-06 10:00
    const [gap, ref] = [await run('gap', all, [stop, back]), await run('ref', all)];

    // The freezes read back: each meter at 03-04, 03-05 and 03-06 00:00, marked frozen.
    const frozen = gap.samples.filter((s) => s.source === 'frozen');
    const midnights = [2, 3, 4].map((d) => DAY0 + d * 24 * HOUR);
    for (const meter of ['M0', 'T102']) {
      const mine = frozen.filter((s) => s.meter === meter);
      expect(mine.map((s) => s.time)).toEqual(midnights);
      // Each is the meter's own register at midnight: what the uninterrupted run read there.
      for (const f of mine) expect(f.wh).toBe(ref.samples.find((s) => s.meter === meter && s.time === f.time)!.wh);
      // Real tariff registers come with them (one tariff here: all energy is flat, T3).
      for (const f of mine) expect(f.tariffWh?.[3]).toBeGreaterThan(0);
    }
    // Nothing was read live during the outage.
    expect(gap.samples.filter((s) => s.source === undefined && s.time > stop && s.time < back)).toEqual([]);
    // Stored with the marker.
    const stored = await gap.influx.query(`SELECT "${F.wh}", "${F.source}" FROM "${M.reading}" WHERE "${F.source}" = 'frozen' GROUP BY "${T.meter}"`);
    expect(stored).toHaveLength(6);

    const site = siteOn('/dev/unused');
    const [gapBill, refBill] = [await billFrom(gap.influx, site), await billFrom(ref.influx, site)];
    expect(gapBill).toBe(refBill);
    const parsed = JSON.parse(gapBill) as { quality: { kind: string }[]; accounts: { total_amount: string }[] };
    expect(parsed.quality).toEqual([]);
    expect(Number(parsed.accounts[0].total_amount)).toBeGreaterThan(0);

    // Without the freezes the same outage is a gap, billed by interpolation and flagged.
    const blind = gap.samples.filter((s) => s.source !== 'frozen');
    const interpolated = JSON.parse(billRunJson(computeBillRun(site, blind, [], '2026-03-03', '2026-03-07'))) as { quality: { kind: string }[] };
    expect(interpolated.quality.map((q) => q.kind)).toContain('gap');
  }, 120_000);

  it('a meter change inside the outage: only the freezes after it are stored for that meter', async () => {
    const hours = (from: number, to: number) => Array.from({ length: (to - from) / HOUR + 1 }, (_, i) => from + i * HOUR);
    const stop = DAY0 + 34 * HOUR; // 03-03 10:00
    const back = stop + 3 * 24 * HOUR; // 03-06 10:00
    const change = DAY0 + 2 * 24 * HOUR + 12 * HOUR; // 03-04 12:00 (a CT swap or a replacement)
    const run1 = await run('change', hours(DAY0, back + HOUR), [stop, back], { T102: change });
    const frozen = (meter: string) => run1.samples.filter((s) => s.source === 'frozen' && s.meter === meter).map((s) => s.time);
    // M0 as before; T102 only from the change on: its 03-04 freeze may be another register's.
    expect(frozen('M0')).toEqual([2, 3, 4].map((d) => DAY0 + d * 24 * HOUR));
    expect(frozen('T102')).toEqual([3, 4].map((d) => DAY0 + d * 24 * HOUR));
  }, 120_000);
});
