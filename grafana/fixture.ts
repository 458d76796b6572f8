/**
 * A small site's worth of every series the dashboards and alert rules read, written
 * through the schema constants with the types the writers use (integer Wh and fen).
 * The tests fill a fresh database with it; the demo's real data flows through the same
 * names.
 *
 * Site tj-plaza (Asia/Shanghai, settled days start at 16:00 UTC): master M0, tenants
 * T101..T103 (accounts A101..A103), common C-ELEV. Planted anomalies, one per alert rule:
 * meter T103 failing, meter T102's clock 90 s off, the notify queue's jobs failing, A102's
 * relay stuck, collector gw2's spool growing, abnormal loss on the latest day.
 * Every balance is above its threshold until `driveBelowThreshold` writes one below.
 */
import { readFileSync } from 'node:fs';
import { chargeFen, hoursToZero, parseSiteYaml, periodAt, priceOn, priceText, zoneOf } from '../core/index.ts';
import type { Period } from '../core/index.ts';
import { balanceLine } from '../influx/balance-lines.ts';
import type { BalancePoint } from '../influx/balance-lines.ts';
import { bucketLine } from '../influx/bucket-lines.ts';
import type { InfluxV1 } from '../influx/client.ts';
import { eventLine, workerLine } from '../influx/event-lines.ts';
import { collectorLine, healthLine, sampleLine } from '../influx/lines.ts';
import { meterClockLine } from '../influx/meter-clock.ts';
import { paymentLine } from '../influx/payment-lines.ts';
import { chargeLine, siteDayLine } from '../influx/settlement-lines.ts';
import { relayLine } from '../influx/relay.ts';

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
/** The account whose relay reads back on while the policy wants it off (a stuck relay). */
export const RELAY_MISMATCH_ACCOUNT = 'A102';

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
/** The utility's flat price of the fixture, micro-CNY/kWh (0.62 CNY/kWh). */
const UTILITY_MICRO = 620_000;

/** The example site (its zone, TOU layout and prices are the fixture's): periods and prices come from the core. */
const EXAMPLE = parseSiteYaml(readFileSync(new URL('../examples/site.example.yaml', import.meta.url), 'utf8'), 'site.example.yaml');
const zone = zoneOf(EXAMPLE.timezone);
const periodAtMs = (ms: number): Period => periodAt(EXAMPLE, ms);
const microAt = (ms: number, period: Period): number => priceOn(EXAMPLE, { tariff: 'commercial' }, zone.dateOf(ms), period)!;

/** Low-balance thresholds in fen (site.example.yaml: 100.00, 50.00, 200.00 CNY). */
export const THRESHOLD_FEN: Record<string, number> = { A101: 10_000, A102: 5_000, A103: 20_000 };
/** low_balance_hours: only A101 has one (site.example.yaml). */
export const THRESHOLD_HOURS: Record<string, number> = { A101: 48 };
const BALANCE_FEN: Record<string, number> = { A101: 42_000, A102: 9_000, A103: 150_000 };
const POWER_W: Record<string, number> = { T101: 3_000, T102: 1_500, T103: 8_000, 'C-ELEV': 2_000 };

export async function writeFixture(influx: InfluxV1, nowMs: number): Promise<void> {
  const lines: string[] = [];
  const meters = ['M0', 'T101', 'T102', 'T103', 'C-ELEV'];
  const masterW = POWER_W.T101 + POWER_W.T102 + POWER_W.T103 + POWER_W['C-ELEV'] + 600; // + line loss

  // reading: every 5 minutes over the last 24 h, cumulative Wh registers.
  for (const meter of meters) {
    const w = meter === 'M0' ? masterW : POWER_W[meter];
    // The offline meter stopped answering 40 minutes ago: its last reading is older.
    const last = meter === NOT_ANSWERING_METER ? nowMs - 40 * MIN : nowMs;
    for (let t = nowMs - DAY; t <= last; t += 5 * MIN) {
      const wh = Math.round(1_000_000 + (w * (t - (nowMs - DAY))) / HOUR);
      lines.push(sampleLine(SITE, { meter, time: t, wh, w, v: 229.5, a: w / 229.5 }));
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
      // As the collector writes it: latency only from successful reads.
      lines.push(
        healthLine(SITE, {
          meter,
          time: t,
          ok: !failing,
          errors,
          consecutiveErrors: consecutive,
          ...(failing ? { lastSeen: nowMs - 41 * MIN, lastError: 'timeout after 3 tries' } : { latencyMs: 35.2, lastSeen: t }),
        }),
      );
    }
  }

  // meter_health clock checks (DL/T 645 meters, daily): T102 is 90 s ahead, T101 within bounds.
  lines.push(meterClockLine(SITE, { meter: 'T101', time: nowMs - 5 * HOUR, errorMs: -2_500, ok: true, boundMs: 60_000 }));
  lines.push(meterClockLine(SITE, { meter: CLOCK_OFF_METER, time: nowMs - 5 * HOUR, errorMs: 90_000, ok: false, boundMs: 60_000 }));

  // collector: gw1 drains to 0; gw2 cannot reach InfluxDB and its spool grows.
  for (let i = 60; i >= 0; i--) {
    const t = nowMs - i * MIN;
    lines.push(collectorLine(SITE, { host: 'gw1', time: t, spoolBytes: 0, spoolSamples: 0, spoolFull: false, written: 5 * (60 - i), refused: 0 }));
    const backlog = (60 - i) * 5;
    lines.push(collectorLine(SITE, { host: GROWING_SPOOL_HOST, time: t, spoolBytes: backlog * 120, spoolSamples: backlog, spoolFull: false, written: 0, refused: 0 }));
  }

  // tou_bucket: 15-minute buckets per meter over the last 24 h.
  const firstBucket = Math.floor((nowMs - DAY) / (15 * MIN)) * 15 * MIN;
  for (const meter of meters) {
    const w = meter === 'M0' ? masterW : POWER_W[meter];
    const role = meter === 'M0' ? 'master' : meter.startsWith('C') ? 'common' : 'tenant';
    for (let t = firstBucket; t < nowMs; t += 15 * MIN) {
      lines.push(bucketLine(SITE, { meter, role, ...(TENANT_METERS[meter] ? { account: TENANT_METERS[meter] } : {}), period: periodAtMs(t), start: t, wh: Math.round(w / 4) }));
    }
  }

  // charge and site_day: the last 3 settled days (stamped at local midnight). Charge
  // lines carry their revision (0 = first settlement) and the price as the decimal text
  // the settlement writes.
  const today0 = zone.midnight(zone.dateOf(nowMs));
  for (let d = 1; d <= 3; d++) {
    const day = today0 - d * DAY;
    const hours: Record<string, number> = { valley: 8, flat: 8, peak: 8 };
    for (const [period, h] of Object.entries(hours) as [Period, number][]) {
      const micro = microAt(day, period);
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
          lines.push(chargeLine(SITE, day, { account, kind, ...(pool ? { pool } : {}), period, rev: 0, wh, fen: chargeFen(wh, micro), price: priceText(micro) }));
        }
      }
      const master = masterW * h;
      const common = POWER_W['C-ELEV'] * h;
      const loss = master - tenantWh - common;
      const cap = Math.floor(0.03 * master);
      // The latest day carries a loss above the cap: the abnormal-loss rule must see it.
      const lossWh = d === 1 && period === 'peak' ? loss + 2 * cap : loss;
      const allocated = Math.min(lossWh, cap);
      const masterWh = d === 1 && period === 'peak' ? master + 2 * cap : master;
      lines.push(
        siteDayLine(
          SITE,
          day,
          // What the utility charges for the master's energy (billing.md section 8): 0.62 CNY/kWh flat, rounded as a charge.
          { period, masterWh, tenantWh, commonWh: common, lossWh, lossAllocatedWh: allocated, lossAbnormalWh: lossWh - allocated, utilityFen: chargeFen(masterWh, UTILITY_MICRO) },
          '0.03',
        ),
      );
    }
  }

  // balance: every minute over the last 2 hours, each account above its threshold.
  for (const [meter, account] of Object.entries(TENANT_METERS)) {
    for (let i = 120; i >= 0; i--) {
      const t = nowMs - i * MIN;
      lines.push(balancePoint(account, BALANCE_FEN[account] + i * 10, POWER_W[meter], t));
    }
  }

  // event: data-quality flags and alerts.
  const events: [string, { meter?: string; account?: string }, string, number][] = [
    ['spike', { meter: 'T101' }, 'implied 5400 kW above max_kw 2000', 5400],
    ['gap', { meter: 'T102' }, 'no reading for 2h10m', 7800],
    // The workers' definition: no reading stored for longer than max_gap (not failed polls).
    ['meter_offline', { meter: NOT_ANSWERING_METER }, 'no reading since 2026-11-15 09:50:00+08:00 (max_gap 1800 s)', 2400],
    ['negative_loss', {}, 'tenants exceed master by 0.8 %', -0.008],
    ['low_balance', { account: 'A102' }, 'balance 45.00 below 50.00', 4500],
  ];
  events.forEach(([kind, tags, detail, value], i) => {
    lines.push(eventLine(SITE, { kind, ...tags, detail, value, time: nowMs - (i + 1) * 17 * MIN }));
  });

  // relay: every minute over the last hour; A102 was cut 10 minutes ago but its relay stuck.
  for (const account of ACCOUNTS) {
    for (let i = 60; i >= 0; i--) {
      const stuck = account === RELAY_MISMATCH_ACCOUNT && i <= 10;
      lines.push(
        relayLine({ site: SITE, account, time: nowMs - i * MIN, wanted: stuck ? 'open' : 'closed', state: 'closed', mismatch: stuck, mode: 'on', decision: stuck ? 'balance-exhausted' : 'balance-ok', deferred: '', restoreFen: stuck ? 1_235 : 0, warning: 'none', pending: 0 }),
      );
    }
  }

  // worker: queue state every minute over the last hour.
  for (const queue of ['rollup', 'settlement', 'balance', FAILING_QUEUE]) {
    for (let i = 60; i >= 0; i--) {
      // The failing queue gained two failed-for-good jobs half an hour ago.
      const failed = queue === FAILING_QUEUE && i < 30 ? 2 : 0;
      // Settlement lag: every due day settled (0).
      const lagMs = queue === 'settlement' ? 0 : 1_500 + (i % 7) * 100;
      lines.push(workerLine(SITE, { queue, lagMs, waiting: i % 3, failed, time: nowMs - i * MIN }));
    }
  }

  // payment: top-ups of the last days (workers/payments.ts writes them so).
  const topUps: [string, string, number, number][] = [
    ['A101', 'BANK-0101', 50_000, 3],
    ['A102', 'WX-7731', 20_000, 2],
    ['A103', 'BANK-0102', 100_000, 1],
    ['A102', 'WX-7790', 5_000, 0.5],
  ];
  for (const [account, reference, fen, daysAgo] of topUps) lines.push(paymentLine(SITE, { account, reference, fen, time: Math.round(nowMs - daysAgo * DAY) }));

  for (let i = 0; i < lines.length; i += 5_000) await influx.write(lines.slice(i, i + 5_000), 'ms');
}

function balancePoint(account: string, balanceFen: number, w: number, t: number, costRateFenH?: number): string {
  const period = periodAtMs(t);
  const micro = microAt(t, period);
  // One hour at w watts, priced like a charge (core chargeFen).
  const costRate = costRateFenH ?? chargeFen(w, micro);
  const b: BalancePoint = {
    account,
    time: t,
    balanceFen,
    lowBalanceFen: THRESHOLD_FEN[account],
    costRateFenH: costRate,
    hoursLeft: hoursToZero(balanceFen, costRate * 24) ?? undefined,
    w,
    priceMicro: micro,
    periodNow: period,
    costTodayFen: 1_234,
    accountName: ACCOUNT_NAMES[account],
    ...(THRESHOLD_HOURS[account] !== undefined ? { lowBalanceHours: THRESHOLD_HOURS[account] } : {}),
  };
  return balanceLine(SITE, b);
}

/** One balance point for `account` still above its money threshold but with fewer hours left than its low_balance_hours. */
export async function driveHoursBelow(influx: InfluxV1, account: string, atMs: number): Promise<void> {
  const balance = THRESHOLD_FEN[account] + 2_000;
  const hours = THRESHOLD_HOURS[account] / 2;
  await influx.write([balancePoint(account, balance, 30_000, atMs, Math.round(balance / hours))], 'ms');
}

/** The settlement of the site's oldest due day is `hours` late (the workers' report). */
export async function driveSettlementLate(influx: InfluxV1, hours: number, atMs: number): Promise<void> {
  await influx.write([workerLine(SITE, { queue: 'settlement', lagMs: Math.round(hours * HOUR), time: atMs })], 'ms');
}

/** One new balance point that puts `account` below its own threshold (by 1 fen less than it). */
export async function driveBelowThreshold(influx: InfluxV1, account: string, atMs: number): Promise<void> {
  const w = POWER_W[Object.keys(TENANT_METERS).find((m) => TENANT_METERS[m] === account)!];
  await influx.write([balancePoint(account, THRESHOLD_FEN[account] - 1, w, atMs)], 'ms');
}
