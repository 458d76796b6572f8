import { Point } from '@influxdata/influxdb-client';
import { F, M, T } from './schema.ts';

/** One account's live figures (billing.md section 5) as the balance worker writes them every few seconds. */
export interface BalancePoint {
  readonly account: string;
  readonly time: number;
  readonly balanceFen: number;
  readonly costRateFenH: number;
  readonly costTodayFen: number;
  readonly provisionalFen?: number;
  readonly spent24hFen?: number;
  /** Rounded down to 0.1 h; absent when nothing was spent (no projection). */
  readonly hoursLeft?: number;
  readonly lowBalanceFen?: number;
  readonly lowBalanceHours?: number;
  /** The account's power now, W (display). */
  readonly w: number;
  /** The account's price now, micro-CNY/kWh; written as a float CNY/kWh for display only. */
  readonly priceMicro: number;
  readonly periodNow: string;
  /** The account's name from the site file: Grafana has no site file, so it travels with the balance. */
  readonly accountName?: string;
}

export function balanceLine(site: string, b: BalancePoint): string {
  const p = new Point(M.balance)
    .tag(T.site, site)
    .tag(T.account, b.account)
    .intField(F.balanceFen, b.balanceFen)
    .intField(F.costRateFenH, b.costRateFenH)
    .intField(F.costTodayFen, b.costTodayFen)
    .floatField(F.w, b.w)
    .floatField(F.price, b.priceMicro / 1e6) // display only
    .stringField(F.periodNow, b.periodNow);
  if (b.accountName !== undefined) p.stringField(F.accountName, b.accountName);
  if (b.provisionalFen !== undefined) p.intField(F.provisionalFen, b.provisionalFen);
  if (b.spent24hFen !== undefined) p.intField(F.spent24hFen, b.spent24hFen);
  if (b.hoursLeft !== undefined) p.floatField(F.hoursLeft, b.hoursLeft);
  if (b.lowBalanceFen !== undefined) p.intField(F.lowBalanceFen, b.lowBalanceFen);
  // The threshold of the hours-left alert rule (grafana/alerting.ts), per account.
  if (b.lowBalanceHours !== undefined) p.floatField(F.lowBalanceHours, b.lowBalanceHours);
  return p.timestamp(b.time).toLineProtocol()!;
}
