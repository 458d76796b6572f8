import { parseSiteYaml, zoneOf } from '../core/index.ts';
import { quoteString, InfluxV1 } from '../influx/client.ts';
import { batchCount, closeQueues } from '../workers/queues.ts';
import { rollupAll, testContext, testEnv } from '../workers/testing/env.ts';
import { readingLines, syntheticReadings } from '../workers/testing/month.ts';
const N = 1000;
const ids = Array.from({ length: N }, (_, i) => String(i + 1).padStart(4, '0'));
const site = parseSiteYaml(`
site: { id: prov, name: P, timezone: Asia/Shanghai }
meters:
  - { id: M0, role: master }
${ids.map((i) => `  - { id: T${i}, role: tenant, account: A${i} }`).join('\n')}
accounts:
${ids.map((i) => `  - { id: A${i}, name: U, area_m2: 20, tariff: c }`).join('\n')}
loss: { normal_rate: 0.03, method: consumption }
tariffs:
  - id: c
    versions:
      - effective_from: 2026-01-01
        prices: { peak: "1.053200", flat: "0.702100", valley: "0.351100" }
        schedule:
          - periods:
              - { from: "00:00", to: "08:00", period: valley }
              - { from: "08:00", to: "11:00", period: peak }
              - { from: "11:00", to: "18:00", period: flat }
              - { from: "18:00", to: "23:00", period: peak }
              - { from: "23:00", to: "24:00", period: valley }
`);
const zone = zoneOf(site.timezone);
const now = zone.midnight('2026-10-02') + 12 * 3_600_000;
const env = await testEnv('qprof');
try {
  const rows = syntheticReadings(site, '2026-10-01', 2, 60_000, 11).filter((r) => r.time <= now);
  const lines = readingLines(site.id, rows);
  for (let i = 0; i < lines.length; i += 20_000) await env.influx.write(lines.slice(i, i + 20_000));
  const ctx = testContext(env, [site], { now }, { rollupMaxReadings: 5000 });
  const b = batchCount(site);
  for (let k = 0; k < b; k++) await rollupAll(ctx, site.id, k, b);
  await closeQueues(ctx.queues);
  const sq = quoteString(site.id);
  const tz = quoteString(site.timezone);
  const group = `GROUP BY meter, period, time(1d) fill(none) tz(${tz})`;
  const qs: Record<string, string> = {
    today: `SELECT sum(wh) FROM tou_bucket WHERE site = ${sq} AND time >= ${zone.midnight('2026-10-02')}ms AND time <= ${now}ms ${group}`,
    trailing: `SELECT sum(wh) FROM tou_bucket WHERE site = ${sq} AND time >= ${now - 86_400_000}ms AND time <= ${now}ms ${group}`,
    last2_25h: `SELECT wh FROM reading WHERE site = ${sq} AND time > ${now - 25 * 3_600_000}ms AND time <= ${now}ms GROUP BY meter ORDER BY time DESC LIMIT 2`,
    last2_1h: `SELECT wh FROM reading WHERE site = ${sq} AND time > ${now - 3_600_000}ms AND time <= ${now}ms GROUP BY meter ORDER BY time DESC LIMIT 2`,
    last_lastfn: `SELECT last(wh) FROM reading WHERE site = ${sq} AND time > ${now - 25 * 3_600_000}ms GROUP BY meter`,
    new_range_5min: `SELECT wh FROM reading WHERE site = ${sq} AND time > ${now - 300_000}ms GROUP BY meter`,
    new_200stmts: ids.slice(0, 200).map((i) => `SELECT wh FROM reading WHERE site = ${sq} AND meter = 'T${i}' AND time > ${now - 300_000}ms ORDER BY time ASC LIMIT 2000`).join(';\n'),
    new_regex200: `SELECT wh FROM reading WHERE site = ${sq} AND meter =~ /^(${ids.slice(0, 200).map((i) => `T${i}`).join('|')})$/ AND time > ${now - 300_000}ms GROUP BY meter`,
    rawday: `SELECT wh FROM reading WHERE site = ${sq} AND time >= ${zone.midnight('2026-10-01') }ms AND time < ${zone.midnight('2026-10-02')}ms GROUP BY meter`,
    bucketday: `SELECT sum(wh) FROM tou_bucket WHERE site = ${sq} AND time >= ${zone.midnight('2026-10-01') }ms AND time < ${zone.midnight('2026-10-02')}ms GROUP BY meter, period`,
  };
  const big = new InfluxV1({ url: process.env.SUBMETER_INFLUX_URL!, db: (env.influx as any).db, timeoutMs: 120000 });
  for (const [k, q] of Object.entries(qs)) {
    const ms: number[] = [];
    for (let i = 0; i < 5; i++) { const t = performance.now(); await big.queryRaw(q); ms.push(performance.now() - t); }
    ms.sort((a, b) => a - b);
    console.log(k, ms.map((x) => x.toFixed(0)).join(' '));
  }
} finally { await env.cleanup(); }
