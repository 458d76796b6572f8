import { Point } from '@influxdata/influxdb-client';
import { F, M, T } from './schema.ts';

/**
 * A `payment` ledger line, keyed by (account, reference, instant): writing it twice is a
 * no-op. `kind` (billing.md section 11: refund, deposit, transfer) is a tag; a plain payment
 * has none, like every point written before kinds existed.
 */
export function paymentLine(site: string, p: { account: string; reference: string; fen: number; time: number; kind?: string }): string {
  const point = new Point(M.payment).tag(T.site, site).tag(T.account, p.account).tag(T.reference, p.reference);
  if (p.kind && p.kind !== 'payment') point.tag(T.kind, p.kind);
  return point.intField(F.fen, p.fen).timestamp(p.time).toLineProtocol()!;
}
