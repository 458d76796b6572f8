import { addDays, dateOfDayBucket, kwhText, zoneOf } from '../core/index.ts';
import { dueDays } from './settlement.ts';
import { quoteString } from '../influx/client.ts';
import { eventLine, workerLine } from '../influx/event-lines.ts';
import { F, M, T } from '../influx/schema.ts';
import type { Site } from '../core/index.ts';
import { siteOf } from './context.ts';
import { redisKeys } from './keys.ts';
import type { WorkerContext } from './context.ts';
import type { AlertsJob } from './queues.ts';

/**
 * Site alerts for the energy managers (Grafana's alert rules read these events): a meter
 * offline (no reading for longer than its max_gap), abnormal loss above the normal-rate
 * cap on a settled day (billing.md section 4). Each event's time is derived from the data
 * (the outage start + max_gap, the day's midnight), so re-running writes the same point.
 * Low-balance crossings are raised by the balance job (as fresh as the balance), and the
 * counter-rule flags by the rollup and settlement.
 */

export interface AlertsResult {
  readonly offline: string[];
  readonly abnormalDays: number;
}

/**
 * Each meter's last reading at or before `now`, for the meters that may be offline. The
 * rollup's watermark (the newest raw reading it has read, workers/keys.ts) within max_gap
 * before now proves a recent reading, so only the others (no watermark, an old one, one
 * after now) are asked from InfluxDB, by name when few: a statement over every reading
 * series of the site costs InfluxDB 1.x per series (~0.4 s for 1,000 meters under load,
 * every minute per site), which at 100 sites was a core by itself (issue 15).
 */
async function lastReadingTimes(ctx: WorkerContext, site: Site, now: number): Promise<Map<string, number>> {
  const marks = await ctx.redis.hmget(redisKeys(ctx.keyPrefix, site.id).watermarks, ...site.meters.map((m) => m.id));
  const out = new Map<string, number>();
  const suspects: string[] = [];
  site.meters.forEach((m, i) => {
    const w = marks[i] === null ? NaN : Number(marks[i]);
    if (w <= now && now - w <= m.maxGapMs) out.set(m.id, w);
    else suspects.push(m.id);
  });
  if (suspects.length === 0) return out;
  const sq = quoteString(site.id);
  const byName = suspects.length <= 50 ? ` AND (${suspects.map((id) => `${T.meter} = ${quoteString(id)}`).join(' OR ')})` : '';
  // One point per meter read from the end of its series (a raw selection with LIMIT 1; last()
  // would reduce over the whole history).
  const last = await ctx.influx.query(`SELECT ${F.wh} FROM ${M.reading} WHERE ${T.site} = ${sq}${byName} AND time <= ${now}ms GROUP BY ${T.meter} ORDER BY time DESC LIMIT 1`);
  const wanted = new Set(suspects);
  for (const r of last) if (wanted.has(r.meter as string)) out.set(r.meter as string, r.time as number);
  return out;
}

export async function processAlerts(ctx: WorkerContext, job: AlertsJob): Promise<AlertsResult> {
  const site = siteOf(ctx, job.site);
  const now = ctx.now();
  const sq = quoteString(site.id);
  const lines: string[] = [];
  const offline: string[] = [];
  const lastBy = await lastReadingTimes(ctx, site, now);
  const zone = zoneOf(site.timezone);
  for (const m of site.meters) {
    const t = lastBy.get(m.id);
    if (t === undefined || now - t <= m.maxGapMs) continue;
    offline.push(m.id);
    lines.push(eventLine(site.id, { kind: 'meter_offline', meter: m.id, detail: `no reading since ${zone.format(t)} (max_gap ${m.maxGapMs / 1000} s)`, value: (now - t) / 1000, time: t + m.maxGapMs }));
  }
  // Abnormal loss of the last week of settled days, one event per day.
  const rows = await ctx.influx.query(
    `SELECT sum(${F.lossAbnormalWh}) AS abn, sum(${F.masterWh}) AS master FROM ${M.siteDay} WHERE ${T.site} = ${sq} AND time >= ${now - 8 * 86_400_000}ms GROUP BY time(1d) fill(none) tz(${quoteString(site.timezone)})`,
  );
  let abnormalDays = 0;
  for (const r of rows) {
    const abn = r.abn as number;
    if (!(abn > 0)) continue;
    abnormalDays++;
    const day = dateOfDayBucket(site.timezone, r.time as number);
    lines.push(
      eventLine(site.id, {
        kind: 'abnormal_loss',
        detail: `${day}: ${kwhText(abn)} kWh of loss above the normal rate ${site.loss.normalRate} of master ${kwhText(r.master as number)} kWh, borne by the property`,
        value: abn / 1000,
        time: zone.midnight(day),
      }),
    );
  }
  // Queue health for the dashboards (schema: worker measurement). Counts are per queue,
  // shared by all sites; each site's alerts job reports them under its own site tag.
  for (const [name, queue] of Object.entries(ctx.queues)) {
    const c = await queue.getJobCounts('waiting', 'delayed', 'failed');
    lines.push(workerLine(site.id, { queue: name, waiting: (c.waiting ?? 0) + (c.delayed ?? 0), failed: c.failed ?? 0, time: now }));
  }
  // Settlement lag (Grafana's "Settlement missed" rule): how long the oldest day that is due
  // has waited past its due time (local midnight + grace); 0 when every due day is settled.
  const due = await dueDays(ctx, site, { firstDayMaxAgeMs: 600_000 });
  const settlementLag = due.length ? Math.max(0, now - (zone.midnight(addDays(due[0], 1)) + ctx.tuning.settlementGraceMs)) : 0;
  lines.push(workerLine(site.id, { queue: 'settlement', lagMs: settlementLag, time: now }));
  await ctx.influx.write(lines);
  if (offline.length) ctx.log.warn({ site: site.id, offline }, 'meters offline');
  return { offline, abnormalDays };
}
