import { billFromSettlement, moneyText, PERIODS, zoneOf } from '../core/index.ts';
import type { BillRun, CellSummary, ChargeKind, ChargeLine, DaySettlement, LocalDate, Period, Site } from '../core/index.ts';
import type { InfluxV1 } from '../influx/client.ts';
import { quoteString } from '../influx/client.ts';
import { F, M, T } from '../influx/schema.ts';
import { loadPayments } from './payments.ts';

/**
 * The bill of [from, to) from what the live pipeline wrote: the charge points of every
 * revision (adjustments included, netted per day and line) and the site_day summaries,
 * handed to the core's billFromSettlement with the payment ledger, so the live month and
 * `submeter bill` share one bill implementation. `quality` is left empty: the live flags
 * are events in InfluxDB (and the offline run's `incomplete` flags depend on its range).
 */
export async function liveBill(influx: InfluxV1, site: Site, from: LocalDate, to: LocalDate): Promise<BillRun> {
  const zone = zoneOf(site.timezone);
  const fromMs = zone.midnight(from);
  const toMs = zone.midnight(to);
  const sq = quoteString(site.id);
  const charges = await influx.query(
    `SELECT ${F.wh}, ${F.fen}, ${F.price} FROM ${M.charge} WHERE ${T.site} = ${sq} AND time < ${toMs}ms GROUP BY ${T.account}, ${T.kind}, ${T.pool}, ${T.period}, ${T.rev}`,
  );
  const cells = await influx.query(
    `SELECT ${F.masterWh}, ${F.tenantWh}, ${F.commonWh}, ${F.lossWh}, ${F.lossAllocatedWh}, ${F.lossAbnormalWh}, ${F.vacantWh} FROM ${M.siteDay} WHERE ${T.site} = ${sq} AND time < ${toMs}ms GROUP BY ${T.period}`,
  );
  const byDay = new Map<number, { lines: Map<string, ChargeLine & { wh: number; fen: number }>; cells: CellSummary[] }>();
  const dayOf = (t: number) => {
    let d = byDay.get(t);
    if (!d) byDay.set(t, (d = { lines: new Map(), cells: [] }));
    return d;
  };
  for (const r of charges) {
    const d = dayOf(r.time as number);
    const key = `${r.account}\u0000${r.kind}\u0000${r.pool ?? ''}\u0000${r.period}\u0000${r.price}`;
    const cur = d.lines.get(key);
    if (cur) {
      cur.wh += r.wh as number;
      cur.fen += r.fen as number;
    } else {
      const pool = (r.pool as string | undefined) || undefined;
      d.lines.set(key, { account: r.account as string, kind: r.kind as ChargeKind, ...(pool ? { pool } : {}), period: r.period as Period, wh: r.wh as number, fen: r.fen as number, price: r.price as string, amount: '' });
    }
  }
  for (const r of cells) {
    dayOf(r.time as number).cells.push({
      period: r.period as Period,
      masterWh: r.master_wh as number,
      tenantWh: r.tenant_wh as number,
      commonWh: r.common_wh as number,
      lossWh: r.loss_wh as number,
      lossAllocatedWh: r.loss_allocated_wh as number,
      lossAbnormalWh: r.loss_abnormal_wh as number,
      ...(typeof r.vacant_wh === 'number' ? { vacantWh: r.vacant_wh } : {}),
    });
  }
  const times = [...byDay.keys()].sort((a, b) => a - b);
  const days: DaySettlement[] = times.map((t) => {
    const d = byDay.get(t)!;
    return {
      date: zone.dateOf(t),
      // A line fully reversed by adjustments is gone; amounts re-derived from the netted fen.
      lines: [...d.lines.values()].filter((l) => l.wh !== 0 || l.fen !== 0).map((l) => ({ ...l, amount: moneyText(l.fen) })),
      cells: d.cells.sort((a, b) => PERIODS.indexOf(a.period) - PERIODS.indexOf(b.period)),
      flags: [],
    };
  });
  let fromDay = days.findIndex((d) => d.date >= from);
  if (fromDay < 0) fromDay = days.length;
  const payments = (await loadPayments(influx, site.id, 0, toMs)).map((p) => ({ time: p.time, account: p.account, fen: p.fen, reference: p.reference, ...(p.kind ? { kind: p.kind } : {}) }));
  return billFromSettlement({ site, from, to, fromMs, toMs, days, fromDay, flags: [] }, payments);
}
