import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { billRunJson, computeBillRun, parseSiteYaml } from '../../core/index.ts';
import type { ReadingRow } from '../../core/index.ts';
import { InfluxV1 } from '../../influx/client.ts';
import { F, M } from '../../influx/schema.ts';
import { createRedis, deleteMatching } from '../../lib/redis.ts';
import { closeQueues, openQueues, pendingSettlements } from '../../workers/index.ts';
import { runCli, siteYaml, writeSite } from '../test-support/site.ts';
import { tempDir } from '../test-support/socat.ts';
import { importReadings } from './readings-import.ts';

const CASE = fileURLToPath(new URL('../testcases/import-malformed-rows/', import.meta.url));
const url = process.env.SUBMETER_INFLUX_URL ?? 'http://127.0.0.1:8096';
const SITE = siteYaml('imp', ['{ id: M1, role: master }', '{ id: M2, role: common, pool: p }']);

async function readBack(influx: InfluxV1) {
  const rows = await influx.query(`SELECT wh FROM ${M.reading} GROUP BY meter`);
  return rows
    .map((r) => ({ time: new Date(Number(r.time)).toISOString(), meter: String(r.meter), wh: Number(r.wh) }))
    .sort((a, b) => a.time.localeCompare(b.time) || a.meter.localeCompare(b.meter));
}

describe('import of a readings CSV', () => {
  const influx = new InfluxV1({ url, db: `t_import_${randomBytes(4).toString('hex')}` });
  beforeAll(() => influx.createDatabase());
  afterAll(() => influx.dropDatabase());

  it('testcases/import-malformed-rows: writes the good rows exactly, reports each bad one by line', async () => {
    const { site } = writeSite(tempDir('imp'), SITE);
    const expected = JSON.parse(readFileSync(join(CASE, 'expected.json'), 'utf8'));
    const r = await importReadings(site, join(CASE, 'readings.csv'), influx, { batchRows: 2 });
    expect(r.problems.map((p) => p.line)).toEqual(expected.problemLines);
    expect(r.problems[0].message).toMatch(/^time: "not-a-time"/);
    expect(r.problems[1].message).toMatch(/^kwh: /);
    expect(r.problems[2].message).toMatch(/^kwh: missing/);
    expect(r.unknownMeters).toEqual(expected.unknownMeters);
    expect(r.written).toBe(5);
    expect(r.skipped).toBe(5);
    expect(r.days).toEqual(expected.days);
    expect(await readBack(influx)).toEqual(expected.written);
  });

  it('carries the tariff registers: the stored readings bill as the file does (testcases/gap-tariff-registers)', async () => {
    const dir = fileURLToPath(new URL('../../testcases/gap-tariff-registers/', import.meta.url));
    const site = parseSiteYaml(readFileSync(join(dir, 'site.yaml'), 'utf8'), 'site.yaml');
    const db = new InfluxV1({ url, db: `t_import_${randomBytes(4).toString('hex')}` });
    await db.createDatabase();
    try {
      const r = await importReadings(site, join(dir, 'readings.csv'), db);
      expect(r.problems).toEqual([]);
      const regs = [1, 2, 3, 4] as const;
      const rows = await db.query(`SELECT ${F.wh}, ${regs.map((n) => F.whTariff(n)).join(', ')} FROM ${M.reading} GROUP BY meter`);
      const readings: ReadingRow[] = rows.map((x) => {
        const tariffWh = Object.fromEntries(regs.filter((n) => typeof x[F.whTariff(n)] === 'number').map((n) => [n, x[F.whTariff(n)] as number]));
        return { time: Number(x.time), meter: String(x.meter), wh: Number(x[F.wh]), ...(Object.keys(tariffWh).length ? { tariffWh } : {}) };
      });
      expect(readings.filter((x) => x.tariffWh).length).toBe(11);
      // What `submeter bill` prints from the file, worked by hand in the case.
      expect(billRunJson(computeBillRun(site, readings, [], '2026-10-01', '2026-10-04'))).toBe(readFileSync(join(dir, 'expected.json'), 'utf8'));
    } finally {
      await db.dropDatabase();
    }
  });

  it('round-trips a generated CSV exactly, and a re-import does not duplicate', async () => {
    const dir = tempDir('imp');
    const { path: sitePath } = writeSite(dir, SITE);
    const rows: { time: string; meter: string; wh: number }[] = [];
    let csv = 'time,meter,kwh\n';
    for (let i = 0; i < 3000; i++) {
      const meter = i % 2 ? 'M1' : 'M2';
      const wh = 1_000_000 + i * 137;
      const t = new Date(Date.UTC(2026, 9, 1) + i * 60_000);
      rows.push({ time: t.toISOString(), meter, wh });
      csv += `${t.toISOString()},${meter},${(wh / 1000).toFixed(3)}\n`;
    }
    const file = join(dir, 'r.csv');
    writeFileSync(file, csv);
    const db = `t_import_${randomBytes(4).toString('hex')}`;
    const target = new InfluxV1({ url, db });
    try {
      const prefix = `t_import_${randomBytes(4).toString('hex')}`;
      const r = await runCli(['import', '--site', sitePath, '--readings', file, '--batch', '1000', '--queue-prefix', prefix, '--key-prefix', prefix], { SUBMETER_INFLUX_URL: url, SUBMETER_INFLUX_DB: db });
      expect(r.code, r.stderr).toBe(0);
      // 2026-10-01T00:00Z + 50 h is 10-01 08:00 .. 10-03 09:59 in Shanghai; d-1 .. d+1 of those.
      expect(r.stdout).toBe(`${file}: 3000 rows written to ${db}, 0 skipped\nasked the workers to settle 5 day(s) again: 2026-09-30 .. 2026-10-04\n`);
      // The days are recorded for the site, and one settlement job settles them in order.
      const redis = createRedis(process.env.SUBMETER_REDIS_URL ?? 'redis://127.0.0.1:6389');
      const queues = openQueues(redis, prefix);
      try {
        const asked = await pendingSettlements({ redis, keyPrefix: prefix }, 'imp');
        expect(asked.map((a) => a.day)).toEqual(['2026-09-30', '2026-10-01', '2026-10-02', '2026-10-03', '2026-10-04']);
        expect(asked.every((a) => a.reason === `import of ${file}`)).toBe(true);
        const jobs = await queues.settlement.getJobs(['waiting', 'prioritized', 'delayed']);
        expect(jobs.map((j) => [j.name, j.data])).toEqual([['settle', { site: 'imp' }]]);
      } finally {
        await queues.settlement.obliterate({ force: true });
        await closeQueues(queues);
        await deleteMatching(redis, `${prefix}:*`);
        redis.disconnect();
      }
      // The same file again (in-process): every row overwrites itself.
      const again = await importReadings(writeSite(dir, SITE).site, file, target);
      expect(again).toMatchObject({ written: 3000, skipped: 0 });
      expect(await readBack(target)).toEqual(rows.sort((a, b) => a.time.localeCompare(b.time) || a.meter.localeCompare(b.meter)));
    } finally {
      await target.dropDatabase();
    }
  });

  it('exits 1 and names the file and line of each bad row', async () => {
    const { path: sitePath } = writeSite(tempDir('imp'), SITE);
    const db = `t_import_${randomBytes(4).toString('hex')}`;
    try {
      const r = await runCli(['import', '--site', sitePath, '--readings', join(CASE, 'readings.csv'), '--no-resettle'], { SUBMETER_INFLUX_URL: url, SUBMETER_INFLUX_DB: db });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${join(CASE, 'readings.csv')}:5: time: "not-a-time"`);
      expect(r.stderr).toContain(`${join(CASE, 'readings.csv')}:9: meter 'NOPE' is not in site imp`);
      expect(r.stderr).toContain('unknown meters (not in');
      expect(r.stdout).toMatch(/5 rows written to .*, 5 skipped/);
    } finally {
      await new InfluxV1({ url, db }).dropDatabase();
    }
  });

  it('refuses rows outside the supported dates and lines that are not UTF-8, by line, and writes the rest', async () => {
    const dir = tempDir('imp');
    const { path: sitePath } = writeSite(dir, SITE);
    const file = join(dir, 'dates.csv');
    writeFileSync(
      file,
      Buffer.concat([
        Buffer.from('time,meter,kwh,note\n2026-10-01T00:00:00+08:00,M1,1.000,ok\n9999-10-01T00:00:00+08:00,M1,2.000,far\n1500-10-01T00:00:00+08:00,M1,3.000,old\n'),
        Buffer.from([...Buffer.from('2026-10-01T00:30:00+08:00,M1,4.000,caf'), 0xe9, 10]),
        Buffer.from('2026-10-01T00:45:00+08:00,M1,5.000,ok\n'),
      ]),
    );
    const db = `t_import_${randomBytes(4).toString('hex')}`;
    try {
      const r = await runCli(['import', '--site', sitePath, '--readings', file, '--no-resettle'], { SUBMETER_INFLUX_URL: url, SUBMETER_INFLUX_DB: db });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${file}:3: time: "9999-10-01T00:00:00+08:00" is outside the supported dates 2000-01-01 to 2199-12-31`);
      expect(r.stderr).toContain(`${file}:4: time: "1500-10-01T00:00:00+08:00" is outside the supported dates`);
      expect(r.stderr).toContain(`${file}:5: line is not valid UTF-8 text`);
      expect(r.stderr).not.toMatch(/InfluxDB unavailable|Invalid time value/);
      expect(r.stdout).toMatch(/2 rows written to .*, 3 skipped/);
    } finally {
      await new InfluxV1({ url, db }).dropDatabase();
    }
  });
});
