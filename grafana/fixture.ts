/**
 * A small site's worth of every series the dashboards and alert rules read, written
 * through the schema constants with the types the writers use (integer Wh and fen).
 * The tests fill a fresh database with it; the demo's real data flows through the same
 * names.
 *
 * Site tj-plaza (Asia/Shanghai, settled days start at 16:00 UTC): master M0, tenants
 * T101..T103 (accounts A101..A103), common C-ELEV. Planted anomalies, one per alert rule:
 * meter T103 failing, collector gw2's spool growing, abnormal loss on the latest day.
 * Every balance is above its threshold until `driveBelowThreshold` writes one below.
 */
import { Point } from '@influxdata/influxdb-client';
import type { InfluxV1 } from '../influx/client.ts';
import { F, M, T } from '../influx/schema.ts';

export const SITE = 'tj-plaza';
export const ACCOUNTS = ['A101', 'A102', 'A103'] as const;
export const TENANT_METERS: Record<string, string> = { T101: 'A101', T102: 'A102', T103: 'A103' };
/** The meter that stopped answering the collector (failed polls). */
export const NOT_ANSWERING_METER = 'T103';
/** The DL/T 645 meter whose clock is 90 s off (bound 60 s). */
export const CLOCK_OFF_METER = 'T102';
/** The queue with jobs failing for good in the last hour. */
export const FAILING_QUEUE = 'notify';
/** Account names, as the balance worker writes them beside the ids. */
export const ACCOUNT_NAMES: Record<string, string> = { A101: 'Cafe Lin', A102: 'Books & Tea', A103: 'Gym North' };
export const GROWING_SPOOL_HOST = 'gw2';

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
/** Shanghai midnight is 16:00 UTC: settled-day series are stamped there. */
const LOCAL_MIDNIGHT_UTC_HOUR = 16;

/** The TOU period of an instant (the example site's winter layout, by local hour). */
function periodAt(ms: number): string {
  const h = (new Date(ms).getUTCHours() + 8) % 24;
  if (h < 7 || h >= 23) return 'valley';
  if ((h >= 8 && h < 11) || (h >= 18 && h < 23)) return 'peak';
  return 'flat';
}

const PRICE_FEN_PER_KWH: Record<string, number> = { valley: 35.11, flat: 70.21, peak: 105.32 };

/** Low-balance thresholds in fen (site.example.yaml: 100.00, 50.00, 200.00 CNY). */
export const THRESHOLD_FEN: Record<string, number> = { A101: 10_000, A102: 5_000, A103: 20_000 };
/** low_balance_hours: only A101 has one (site.example.yaml). */
export const THRESHOLD_HOURS: Record<string, number> = { A101: 48 };
const BALANCE_FEN: Record<string, number> = { A101: 42_000, A102: 9_000, A103: 150_000 };
const POWER_W: Record<string, number> = { T101: 3_000, T102: 1_500, T103: 8_000, 'C-ELEV': 2_000 };

function lines(points: Point[]): string[] {
  return points.map((p) => p.toLineProtocol()!).filter(Boolean);
}

export async function writeFixture(influx: InfluxV1, nowMs: number): Promise<void> {
  const pts: Point[] = [];
  const meters = ['M0', 'T101', 'T102', 'T103', 'C-ELEV'];
  const masterW = POWER_W.T101 + POWER_W.T102 + POWER_W.T103 + POWER_W['C-ELEV'] + 600; // + line loss

  // reading: every 5 minutes over the last 24 h, cumulative Wh registers.
  for (const meter of meters) {
    const w = meter === 'M0' ? masterW : POWER_W[meter];
    // The offline meter stopped answering 40 minutes ago: its last reading is older.
    const last = meter === NOT_ANSWERING_METER ? nowMs - 40 * MIN : nowMs;
    for (let t = nowMs - DAY; t <= last; t += 5 * MIN) {
      const wh = Math.round(1_000_000 + (w * (t - (nowMs - DAY))) / HOUR);
      pts.push(new Point(M.reading).tag(T.site, SITE).tag(T.meter, meter).intField(F.wh, wh).floatField(F.w, w).floatField(F.v, 229.5).floatField(F.a, w / 229.5).timestamp(t));
    }
  }

  // meter_health: every minute over the last hour.
  for (const meter of meters) {
    let errors = meter === 'T102' ? 3 : 0;
    for (let i = 60; i >= 0; i--) {
      const t = nowMs - i * MIN;
      const failing = meter === NOT_ANSWERING_METER && i <= 40;
      if (failing) errors++;
      const consecutive = failing ? 41 - i : 0;
      const p = new Point(M.meterHealth).tag(T.site, SITE).tag(T.meter, meter).booleanField(F.ok, !failing).intField(F.errors, errors).intField(F.consecutiveErrors, consecutive).timestamp(t);
      // As the collector writes it: latency and last-seen only from successful reads.
      if (!failing) p.floatField(F.latencyMs, 35.2).intField(F.lastSeen, t);
      else p.intField(F.lastSeen, nowMs - 41 * MIN);
      if (failing) p.stringField(F.lastError, 'timeout after 3 tries');
      pts.push(p);
    }
  }

  // meter_health clock checks (DL/T 645 meters, daily): T102 is 90 s ahead, T101 within bounds.
  pts.push(new Point(M.meterHealth).tag(T.site, SITE).tag(T.meter, 'T101').floatField(F.clockDriftS, -2.5).booleanField(F.clockOk, true).floatField(F.clockMaxDriftS, 60).timestamp(nowMs - 5 * HOUR));
  pts.push(new Point(M.meterHealth).tag(T.site, SITE).tag(T.meter, CLOCK_OFF_METER).floatField(F.clockDriftS, 90).booleanField(F.clockOk, false).floatField(F.clockMaxDriftS, 60).timestamp(nowMs - 5 * HOUR));

  // collector: gw1 drains to 0; gw2 cannot reach InfluxDB and its spool grows.
  for (let i = 60; i >= 0; i--) {
    const t = nowMs - i * MIN;
    pts.push(new Point(M.collector).tag(T.site, SITE).tag(T.host, 'gw1').intField(F.spoolBytes, 0).intField(F.spoolSamples, 0).booleanField(F.spoolFull, false).intField(F.written, 5 * (60 - i)).intField(F.spoolRefused, 0).timestamp(t));
    const backlog = (60 - i) * 5;
    pts.push(new Point(M.collector).tag(T.site, SITE).tag(T.host, GROWING_SPOOL_HOST).intField(F.spoolBytes, backlog * 120).intField(F.spoolSamples, backlog).booleanField(F.spoolFull, false).intField(F.written, 0).intField(F.spoolRefused, 0).timestamp(t));
  }

  // tou_bucket: 15-minute buckets per meter over the last 24 h.
  const firstBucket = Math.floor((nowMs - DAY) / (15 * MIN)) * 15 * MIN;
  for (const meter of meters) {
    const w = meter === 'M0' ? masterW : POWER_W[meter];
    const role = meter === 'M0' ? 'master' : meter.startsWith('C') ? 'common' : 'tenant';
    for (let t = firstBucket; t < nowMs; t += 15 * MIN) {
      const p = new Point(M.touBucket).tag(T.site, SITE).tag(T.meter, meter).tag(T.period, periodAt(t)).tag(T.role, role).intField(F.wh, Math.round(w / 4)).timestamp(t);
      if (TENANT_METERS[meter]) p.tag(T.account, TENANT_METERS[meter]);
      pts.push(p);
    }
  }

  // charge and site_day: the last 3 settled days (stamped at local midnight). Charge
  // lines carry their revision (0 = first settlement) and the price as the decimal text
  // the settlement writes.
  const today0 = Math.floor((nowMs - LOCAL_MIDNIGHT_UTC_HOUR * HOUR) / DAY) * DAY + LOCAL_MIDNIGHT_UTC_HOUR * HOUR;
  for (let d = 1; d <= 3; d++) {
    const day = today0 - d * DAY;
    const hours: Record<string, number> = { valley: 8, flat: 8, peak: 8 };
    for (const [period, h] of Object.entries(hours)) {
      const price = PRICE_FEN_PER_KWH[period];
      let tenantWh = 0;
      for (const [meter, account] of Object.entries(TENANT_METERS)) {
        const own = POWER_W[meter] * h;
        tenantWh += own;
        const kinds: [string, string, number][] = [
          ['own', '', own],
          ['common', 'elevators', Math.round((POWER_W['C-ELEV'] * h) / 3)],
          ['loss', '', Math.round(own * 0.02)],
        ];
        for (const [kind, pool, wh] of kinds) {
          const p = new Point(M.charge).tag(T.site, SITE).tag(T.account, account).tag(T.kind, kind).tag(T.period, period).tag(T.rev, '0').intField(F.wh, wh).intField(F.fen, Math.round((wh / 1000) * price)).stringField(F.price, (price / 100).toFixed(6)).timestamp(day);
          if (pool) p.tag(T.pool, pool);
          pts.push(p);
        }
      }
      const master = masterW * h;
      const common = POWER_W['C-ELEV'] * h;
      const loss = master - tenantWh - common;
      const cap = Math.floor(0.03 * master);
      // The latest day carries a loss above the cap: the abnormal-loss rule must see it.
      const lossWh = d === 1 && period === 'peak' ? loss + 2 * cap : loss;
      const allocated = Math.min(lossWh, cap);
      pts.push(
        new Point(M.siteDay).tag(T.site, SITE).tag(T.period, period)
          .intField(F.masterWh, d === 1 && period === 'peak' ? master + 2 * cap : master)
          .intField(F.tenantWh, tenantWh).intField(F.commonWh, common).intField(F.lossWh, lossWh)
          .intField(F.lossAllocatedWh, allocated).intField(F.lossAbnormalWh, lossWh - allocated)
          .floatField(F.lossNormalRate, 0.03)
          // What the utility charges for the master's energy (billing.md section 8): 0.62 CNY/kWh flat.
          .intField(F.utilityFen, Math.round(((d === 1 && period === 'peak' ? master + 2 * cap : master) / 1000) * 62))
          .timestamp(day),
      );
    }
  }

  // balance: every minute over the last 2 hours, each account above its threshold.
  for (const [meter, account] of Object.entries(TENANT_METERS)) {
    for (let i = 120; i >= 0; i--) {
      const t = nowMs - i * MIN;
      pts.push(balancePoint(account, BALANCE_FEN[account] + i * 10, POWER_W[meter], t));
    }
  }

  // event: data-quality flags and alerts.
  const events: [string, Record<string, string>, string, number][] = [
    ['spike', { [T.meter]: 'T101' }, 'implied 5400 kW above max_kw 2000', 5400],
    ['gap', { [T.meter]: 'T102' }, 'no reading for 2h10m', 7800],
    // The workers' definition: no reading stored for longer than max_gap (not failed polls).
    ['meter_offline', { [T.meter]: NOT_ANSWERING_METER }, 'no reading since 2026-11-15 09:50:00+08:00 (max_gap 1800 s)', 2400],
    ['negative_loss', {}, 'tenants exceed master by 0.8 %', -0.008],
    ['low_balance', { [T.account]: 'A102' }, 'balance 45.00 below 50.00', 4500],
  ];
  events.forEach(([kind, tags, detail, value], i) => {
    const p = new Point(M.event).tag(T.site, SITE).tag(T.kind, kind).stringField(F.detail, detail).floatField(F.value, value).timestamp(nowMs - (i + 1) * 17 * MIN);
    for (const [k, v] of Object.entries(tags)) p.tag(k, v);
    pts.push(p);
  });

  // worker: queue state every minute over the last hour.
  for (const queue of ['rollup', 'settlement', 'balance', FAILING_QUEUE]) {
    for (let i = 60; i >= 0; i--) {
      // The failing queue gained two failed-for-good jobs half an hour ago.
      const failed = queue === FAILING_QUEUE && i < 30 ? 2 : 0;
      // Settlement lag: every due day settled (0).
      const lag = queue === 'settlement' ? 0 : 1_500 + (i % 7) * 100;
      pts.push(new Point(M.worker).tag(T.site, SITE).tag(T.queue, queue).intField(F.lagMs, lag).intField(F.waiting, i % 3).intField(F.failed, failed).timestamp(nowMs - i * MIN));
    }
  }

  // payment: top-ups of the last days (workers/payments.ts writes them so).
  const topUps: [string, string, number, number][] = [
    ['A101', 'BANK-0101', 50_000, 3],
    ['A102', 'WX-7731', 20_000, 2],
    ['A103', 'BANK-0102', 100_000, 1],
    ['A102', 'WX-7790', 5_000, 0.5],
  ];
  for (const [account, reference, fen, daysAgo] of topUps) {
    pts.push(new Point(M.payment).tag(T.site, SITE).tag(T.account, account).tag(T.reference, reference).intField(F.fen, fen).timestamp(Math.round(nowMs - daysAgo * DAY)));
  }

  const all = lines(pts);
  for (let i = 0; i < all.length; i += 5_000) await influx.write(all.slice(i, i + 5_000), 'ms');
}

function balancePoint(account: string, balanceFen: number, w: number, t: number, costRateFenH?: number): Point {
  const period = periodAt(t);
  const costRate = costRateFenH ?? Math.round((w / 1000) * PRICE_FEN_PER_KWH[period]);
  const p = new Point(M.balance)
    .tag(T.site, SITE)
    .tag(T.account, account)
    .intField(F.balanceFen, balanceFen)
    .intField(F.lowBalanceFen, THRESHOLD_FEN[account])
    .intField(F.costRateFenH, costRate)
    .floatField(F.hoursLeft, balanceFen / costRate)
    .floatField(F.w, w)
    .floatField(F.price, PRICE_FEN_PER_KWH[period] / 100)
    .stringField(F.periodNow, period)
    .stringField(F.accountName, ACCOUNT_NAMES[account])
    .intField(F.costTodayFen, 1_234)
    .timestamp(t);
  if (THRESHOLD_HOURS[account] !== undefined) p.floatField(F.lowBalanceHours, THRESHOLD_HOURS[account]);
  return p;
}

/** One balance point for `account` still above its money threshold but with fewer hours left than its low_balance_hours. */
export async function driveHoursBelow(influx: InfluxV1, account: string, atMs: number): Promise<void> {
  const balance = THRESHOLD_FEN[account] + 2_000;
  const hours = THRESHOLD_HOURS[account] / 2;
  await influx.write([balancePoint(account, balance, 30_000, atMs, Math.round(balance / hours)).toLineProtocol()!], 'ms');
}

/** The settlement of the site's oldest due day is `hours` late (the workers' report). */
export async function driveSettlementLate(influx: InfluxV1, hours: number, atMs: number): Promise<void> {
  await influx.write([new Point(M.worker).tag(T.site, SITE).tag(T.queue, 'settlement').intField(F.lagMs, Math.round(hours * HOUR)).timestamp(atMs).toLineProtocol()!], 'ms');
}

/** One new balance point that puts `account` below its own threshold (by 1 fen less than it). */
export async function driveBelowThreshold(influx: InfluxV1, account: string, atMs: number): Promise<void> {
  const w = POWER_W[Object.keys(TENANT_METERS).find((m) => TENANT_METERS[m] === account)!];
  await influx.write([balancePoint(account, THRESHOLD_FEN[account] - 1, w, atMs).toLineProtocol()!], 'ms');
}
