import { byteOrder, kwhText, moneyFen, moneyText, PERIODS, priceMicro, priceText, zoneOf } from '../core/index.ts';
import type { AccountBill, BillLine, ChargeKind, LocalDate, Period, Site } from '../core/index.ts';
import type { InfluxV1 } from '../influx/client.ts';
import { quoteString } from '../influx/client.ts';
import { F, M, T } from '../influx/schema.ts';
import { loadPayments } from './payments.ts';

/**
 * TEMPORARY ADAPTER until the core exports a bill built from stored day settlements:
 * the `accounts` part of a bill (billing.md section 5-6) from what the live pipeline
 * wrote, i.e. the charge points of every revision (adjustments included) and the payment
 * ledger. Section 5 makes a bill a pure sum of settlement charges ("never re-priced"),
 * which is all this does; the equivalence test holds it to computeBillRun byte for byte.
 */

const KIND_ORDER: Record<ChargeKind, number> = { own: 0, common: 1, loss: 2 };

export async function liveAccounts(influx: InfluxV1, site: Site, from: LocalDate, to: LocalDate): Promise<AccountBill[]> {
  const zone = zoneOf(site.timezone);
  const a = zone.midnight(from);
  const b = zone.midnight(to);
  const rows = await influx.query(
    `SELECT ${F.wh}, ${F.fen}, ${F.price} FROM ${M.charge} WHERE ${T.site} = ${quoteString(site.id)} AND time < ${b}ms GROUP BY ${T.account}, ${T.kind}, ${T.pool}, ${T.period}, ${T.rev}`,
  );
  const before = new Map<string, number>();
  const acc = new Map<string, Map<string, { kind: ChargeKind; pool: string; period: Period; micro: number; wh: number; fen: number }>>();
  for (const r of rows) {
    const account = r.account as string;
    if ((r.time as number) < a) {
      before.set(account, (before.get(account) ?? 0) + (r.fen as number));
      continue;
    }
    const micro = priceMicro(r.price as string);
    const key = `${r.kind}\u0000${r.pool ?? ''}\u0000${r.period}\u0000${micro}`;
    const m = acc.get(account) ?? new Map();
    acc.set(account, m);
    const cur = m.get(key) ?? { kind: r.kind as ChargeKind, pool: (r.pool as string) ?? '', period: r.period as Period, micro, wh: 0, fen: 0 };
    cur.wh += r.wh as number;
    cur.fen += r.fen as number;
    m.set(key, cur);
  }
  const payments = await loadPayments(influx, site.id, 0, b);
  return [...site.accounts]
    .sort((x, y) => byteOrder(x.id, y.id))
    .map((account) => {
      const list = [...(acc.get(account.id)?.values() ?? [])]
        .filter((l) => l.wh !== 0 || l.fen !== 0) // a line fully reversed by adjustments is gone
        .sort((x, y) => KIND_ORDER[x.kind] - KIND_ORDER[y.kind] || byteOrder(x.pool, y.pool) || PERIODS.indexOf(x.period) - PERIODS.indexOf(y.period) || x.micro - y.micro);
      const kwh = { own: 0, common: 0, loss: 0 };
      let total = 0;
      const lines: BillLine[] = list.map((l) => {
        kwh[l.kind] += l.wh;
        total += l.fen;
        return { kind: l.kind, ...(l.pool ? { pool: l.pool } : {}), period: l.period, kwh: kwhText(l.wh), price: priceText(l.micro), amount: moneyText(l.fen) };
      });
      let paidBefore = 0;
      let paidIn = 0;
      for (const p of payments) if (p.account === account.id) p.time < a ? (paidBefore += p.fen) : (paidIn += p.fen);
      const opening = moneyFen(account.openingBalance) + paidBefore - (before.get(account.id) ?? 0);
      return {
        account: account.id,
        lines,
        kwh: { own: kwhText(kwh.own), common: kwhText(kwh.common), loss: kwhText(kwh.loss) },
        total_amount: moneyText(total),
        opening_balance: moneyText(opening),
        payments: moneyText(paidIn),
        closing_balance: moneyText(opening + paidIn - total),
      };
    });
}
