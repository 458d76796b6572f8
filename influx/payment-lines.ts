import { Point } from '@influxdata/influxdb-client';
import { F, M, T } from './schema.ts';

/** A `payment` ledger line, keyed by (account, reference, instant): writing it twice is a no-op. */
export function paymentLine(site: string, p: { account: string; reference: string; fen: number; time: number }): string {
  return new Point(M.payment).tag(T.site, site).tag(T.account, p.account).tag(T.reference, p.reference).intField(F.fen, p.fen).timestamp(p.time).toLineProtocol()!;
}
