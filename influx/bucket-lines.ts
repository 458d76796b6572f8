import { Point } from '@influxdata/influxdb-client';
import { F, M, T } from './schema.ts';

/**
 * `tou_bucket` lines: one meter's energy in one 15-minute wall-clock piece of a TOU period
 * (billing.md section 3), keyed by (meter, period, start) so a recompute overwrites the same
 * point. `role` and `account` ride along so Grafana can sum per role and account without
 * the site file.
 */
export interface BucketPoint {
  readonly meter: string;
  readonly role: 'master' | 'tenant' | 'common';
  /** Tenant meters only. */
  readonly account?: string;
  readonly period: string;
  /** Epoch ms of the bucket's start. */
  readonly start: number;
  /** Integer Wh (0 overwrites a bucket that no longer has energy). */
  readonly wh: number;
}

export function bucketLine(site: string, b: BucketPoint): string {
  const p = new Point(M.touBucket).tag(T.site, site).tag(T.meter, b.meter).tag(T.period, b.period).tag(T.role, b.role);
  if (b.account) p.tag(T.account, b.account);
  return p.intField(F.wh, b.wh).timestamp(b.start).toLineProtocol()!;
}
