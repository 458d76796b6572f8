import type { ChargeKind, ChargeLine, Period, Site } from '../../core/index.ts';
import type { InfluxV1 } from '../../influx/client.ts';
import { quoteIdent as qi, quoteString as qs } from '../../influx/client.ts';
import { F, M, T } from '../../influx/schema.ts';
import { int } from '../format.ts';
import { localMidnight, localParts } from '../local-time.ts';

/**
 * The settlement lines of [from, to) per local day, as the core's reconcile needs them to
 * price each tenant's own energy mix at the utility's prices (billing.md section 8, issue
 * 11): energy per (day, account, kind, pool, period), every revision summed (adjustments
 * included, as in the bill). Price and amount are not read: the reconciliation re-prices.
 */
export async function linesPerDay(influx: InfluxV1, site: Site, from: string, to: string): Promise<Map<string, ChargeLine[]>> {
  const tz = site.timezone;
  const rows = await influx.query(
    `SELECT ${qi(F.wh)} FROM ${qi(M.charge)} WHERE ${qi(T.site)} = ${qs(site.id)} AND time >= ${localMidnight(from, tz)}ms AND time < ${localMidnight(to, tz)}ms GROUP BY ${qi(T.account)}, ${qi(T.kind)}, ${qi(T.pool)}, ${qi(T.period)}, ${qi(T.rev)}`,
  );
  const acc = new Map<string, { date: string; line: ChargeLine & { wh: number } }>();
  for (const r of rows) {
    const date = localParts(Number(r.time), tz).date;
    const kind = String(r[T.kind]) as ChargeKind;
    const pool = kind === 'common' && r[T.pool] ? String(r[T.pool]) : undefined;
    const key = `${date}|${String(r[T.account])}|${kind}|${pool ?? ''}|${String(r[T.period])}`;
    const hit = acc.get(key);
    if (hit) hit.line.wh += int(r[F.wh]);
    else acc.set(key, { date, line: { account: String(r[T.account]), kind, ...(pool ? { pool } : {}), period: String(r[T.period]) as Period, wh: int(r[F.wh]), price: '', amount: '', fen: 0 } });
  }
  const out = new Map<string, ChargeLine[]>();
  for (const { date, line } of acc.values()) {
    const list = out.get(date) ?? [];
    list.push(line);
    out.set(date, list);
  }
  return out;
}
