import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { addDays, computeBillRun, parseFixed, parseSiteYaml, zoneOf } from '../core/index.ts';
import type { BillRun, ReadingRow, Site } from '../core/index.ts';
import { quoteString } from '../influx/client.ts';
import { siteReloadChannel } from './site-reload.ts';
import { startWorkers } from './start.ts';
import { liveBill } from './statement.ts';
import { SITE_YAML, testEnv } from './testing/env.ts';
import { readingLines, syntheticReadings } from './testing/month.ts';

/**
 * billing.md section 11, rule 9: site changes reach the running workers (real BullMQ,
 * Redis and InfluxDB; the workers run on their own schedulers with a frozen clock).
 */

const repo = join(import.meta.dirname, '..');
mkdirSync(join(repo, '.run/tmp'), { recursive: true });
const tmp = mkdtempSync(join(repo, '.run/tmp/site-reload-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const FROM = '2026-10-01';
const DAYS = 8;
const TO = addDays(FROM, DAYS);
/** The bill JSON without `quality` (the live pipeline keeps flags as events). */
const same = (b: BillRun) => JSON.stringify({ ...b, quality: undefined }, null, 2);

/** Writes like an editor: a new file renamed over the old one. */
function save(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

describe('running workers and a changed site file', () => {
  it('a back-dated tariff correction: revision lines on the days it touches, the month = the offline bill of the corrected file; a bad file is refused', async () => {
    const env = await testEnv('reload');
    const file = join(tmp, 'plaza.yaml');
    save(file, SITE_YAML);
    const site = parseSiteYaml(SITE_YAML);
    const zone = zoneOf(site.timezone);
    const rows: ReadingRow[] = syntheticReadings(site, FROM, DAYS);
    await env.influx.write(readingLines(site.id, rows));
    const now = zone.midnight(TO) + 20 * 60_000;
    const running = await startWorkers({
      sites: [site],
      siteFiles: [file],
      influx: env.influx,
      queuePrefix: env.prefix,
      keyPrefix: env.prefix,
      now: () => now,
      schedule: { rollupEveryMs: 300, balanceEveryMs: 2000, alertsEveryMs: 60_000 },
      tuning: { lateWindowDays: 14 },
    });
    const sq = quoteString(site.id);
    const q = (s: string) => env.influx.query(s).catch(() => []);
    try {
      await until('8 settled days', async () => ((await q(`SELECT count(master_wh) FROM site_day WHERE site = ${sq} AND period = 'valley'`))[0]?.count === DAYS ? true : undefined), 90_000);
      expect(same(await liveBill(env.influx, site, FROM, TO))).toBe(same(computeBillRun(site, rows, [], FROM, TO)));

      // The peak price was wrong from 2026-10-05 on: a new version, entered afterwards.
      const corrected = SITE_YAML.replace(
        '    versions:\n',
        '    versions:\n      - effective_from: 2026-10-05\n        prices: { peak: "1.200000", flat: "0.702100", valley: "0.351100" }\n        schedule:\n          - periods:\n              - { from: "00:00", to: "08:00", period: valley }\n              - { from: "08:00", to: "11:00", period: peak }\n              - { from: "11:00", to: "18:00", period: flat }\n              - { from: "18:00", to: "23:00", period: peak }\n              - { from: "23:00", to: "24:00", period: valley }\n',
      );
      const next = parseSiteYaml(corrected);
      save(file, corrected);
      const offline = computeBillRun(next, rows, [], FROM, TO);
      await until('the corrected month', async () => (same(await liveBill(env.influx, next, FROM, TO)) === same(offline) ? true : undefined), 90_000);
      const revs = await q(`SELECT fen, reason FROM charge WHERE site = ${sq} AND rev != '0' GROUP BY rev, account, kind, period`);
      const days = [...new Set(revs.map((r) => zone.dateOf(r.time as number)))].sort();
      expect(days).toEqual(['2026-10-05', '2026-10-06', '2026-10-07', '2026-10-08']);
      expect(new Set(revs.map((r) => r.reason))).toEqual(new Set(['site file changed: tariff commercial from 2026-10-05: peak 1.053200 -> 1.200000']));
      expect(running.ctx.sites.get(site.id)!.tariffs[0].versions).toHaveLength(2);

      // A broken edit: refused with the reason, the corrected file stays in force.
      save(file, corrected.replace('area_m2: 120', 'area_m2: -5'));
      const ev = await until('a site_refused event', async () => {
        const rows = await q(`SELECT detail FROM event WHERE site = ${sq} AND kind = 'site_refused'`);
        return rows[0];
      });
      expect(ev.detail).toMatch(/refused, the site file in force stays: line \d+: accounts\[0\]\.area_m2: must be at least 0/);
      expect(running.ctx.sites.get(site.id)!.tariffs[0].versions).toHaveLength(2);
    } finally {
      await running.close();
      await env.cleanup();
    }
  }, 240_000);

  it('a back-dated move-out announced on Redis (the API reload route): the days from it re-settle, the vacant energy goes to the landlord', async () => {
    const env = await testEnv('reloadmv');
    const file = join(tmp, 'plaza-move.yaml');
    const base = SITE_YAML.replace('timezone: Asia/Shanghai,', 'timezone: Asia/Shanghai, landlord_account: OFFICE,').replace('accounts:\n', 'accounts:\n  - { id: OFFICE, name: Office, tariff: commercial }\n');
    save(file, base);
    const site: Site = parseSiteYaml(base);
    const zone = zoneOf(site.timezone);
    const rows = syntheticReadings(site, FROM, 4);
    await env.influx.write(readingLines(site.id, rows));
    const to = addDays(FROM, 4);
    const running = await startWorkers({
      sites: [site],
      siteFiles: [file],
      watchSiteFiles: false,
      influx: env.influx,
      queuePrefix: env.prefix,
      keyPrefix: env.prefix,
      now: () => zone.midnight(to) + 20 * 60_000,
      schedule: { rollupEveryMs: 300, balanceEveryMs: 2000, alertsEveryMs: 60_000 },
      tuning: { lateWindowDays: 14 },
    });
    const sq = quoteString(site.id);
    try {
      await until('4 settled days', async () => ((await env.influx.query(`SELECT count(master_wh) FROM site_day WHERE site = ${sq} AND period = 'valley'`))[0]?.count === 4 ? true : undefined), 90_000);
      const moved = base.replace('{ id: A102, name: Cafe 102,', '{ id: A102, name: Cafe 102, move_out: "2026-10-03T15:30:00+08:00",');
      save(file, moved);
      await env.redis.publish(siteReloadChannel(env.prefix), site.id);
      const next = parseSiteYaml(moved);
      const offline = computeBillRun(next, rows, [], FROM, to);
      await until('the month with the move-out', async () => (same(await liveBill(env.influx, next, FROM, to)) === same(offline) ? true : undefined), 90_000);
      expect(offline.master.vacant_kwh).not.toBe('0.000');
      const revs = await env.influx.query(`SELECT fen, reason FROM charge WHERE site = ${sq} AND rev != '0' GROUP BY rev, account, kind, period`);
      expect([...new Set(revs.map((r) => zone.dateOf(r.time as number)))].sort()).toEqual(['2026-10-03', '2026-10-04']);
      expect(revs[0].reason).toBe('site file changed: account A102 move_out none -> 2026-10-03T15:30:00+08:00');
      // A102's buckets after the move-out now belong to the landlord (the live figures' source):
      // the rollup started again at that day, cut at 15:30; the landlord's buckets are the vacant energy.
      const vacantWh = parseFixed(offline.master.vacant_kwh!, 3)!;
      await until('buckets re-tagged', async () => {
        const r = await env.influx.query(`SELECT sum(wh) FROM tou_bucket WHERE site = ${sq} AND account = 'OFFICE'`);
        return (r[0]?.sum as number) === vacantWh ? true : undefined;
      });
      const late = await env.influx.query(`SELECT sum(wh) FROM tou_bucket WHERE site = ${sq} AND account = 'A102' AND time >= ${Date.parse('2026-10-03T15:30:00+08:00')}ms`);
      expect(late[0]?.sum ?? 0).toBe(0);
    } finally {
      await running.close();
      await env.cleanup();
    }
  }, 240_000);
});
