import { accountBill, lossRate } from '../bill/assemble.ts';
import type { ChargeInput } from '../bill/assemble.ts';
import { Dec } from '../decimal.ts';
import type { Account, Site } from '../site/model.ts';
import type { LocalDate } from '../tou/local-date.ts';
import { PERIODS } from '../tou/schedule.ts';
import type { Period } from '../tou/schedule.ts';
import type { AccountBill, BillLine, CellSummary, ShareBasis } from '../types.ts';
import { byteOrder, kwhText, moneyText, parseFixed, priceMicro } from '../units.ts';
import type { RegisterAt } from './meter-facts.ts';

/**
 * A statement a tenant can verify (issue 10): the bill of billing.md sections 5-6 for one
 * account and month, with the numbers behind every line: each of its meters' start and end
 * readings, each common pool's energy and how it was divided (basis, the tenant's weight of
 * the total, per day-period cell), the loss (master, sub-meters, rate against the normal
 * cap, abnormal loss the property bears) and the tenant's share of it, the payments, and
 * "estimated" on lines that rest on interpolation across a gap. Nothing in it names another
 * account or shows another account's own figures: pools and loss appear as site totals.
 * Built from what the settlement stored (meter_day, meter_cell, share_basis, account_day,
 * site_day, charge), so it is the settled truth, not a re-computation.
 */

/** One charge row of the account in the range (any revision), with its settlement day. */
export interface StatementCharge extends ChargeInput {
  readonly date: LocalDate;
}

export interface StatementFacts {
  readonly site: Site;
  readonly account: Account;
  readonly month: string;
  readonly from: LocalDate;
  readonly to: LocalDate;
  readonly charges: readonly StatementCharge[];
  /** opening = site-file opening + payments before the range - charges before it. */
  readonly openingFen: number;
  /** The account's payments in the range. */
  readonly payments: readonly { readonly time: string; readonly fen: number; readonly reference: string }[];
  /** The account's meters' meter_day facts of the range. */
  readonly meterDays: readonly { readonly date: LocalDate; readonly meter: string; readonly wh: number; readonly start?: RegisterAt; readonly end?: RegisterAt }[];
  /** Energy spread over gaps, per (date, meter, period), any meter of the site (the loss rests on all of them). */
  readonly gaps: readonly { readonly date: LocalDate; readonly meter: string; readonly period: Period; readonly gapWh: number }[];
  readonly bases: readonly (ShareBasis & { readonly date: LocalDate })[];
  /** The account's weights per day. */
  readonly accountDays: readonly { readonly date: LocalDate; readonly areaWeight: number; readonly pools: readonly string[] }[];
  /** The site's cells per day. */
  readonly cells: readonly (CellSummary & { readonly date: LocalDate })[];
  /** Formats an instant (epoch ms) as RFC 3339 at the site's offset. */
  readonly formatTime: (utc: number) => string;
}

export interface StatementLine extends BillLine {
  /** Some of its energy (or of what it was shared from) was interpolated across a gap. */
  readonly estimated: boolean;
}

export interface StatementMeter {
  readonly meter: string;
  /** 起码: the register at the start of the range (or of the first reading in it). */
  readonly start_reading: string | null;
  readonly start_time: string | null;
  readonly end_reading: string | null;
  readonly end_time: string | null;
  /** 倍率; 1 until CT multipliers exist (issue 12). */
  readonly multiplier: string;
  /** Energy of the range (settled cells): (end - start) x multiplier unless the register was reset or rolled over. */
  readonly kwh: string;
  readonly estimated: boolean;
}

export interface ShareCell {
  readonly date: LocalDate;
  readonly period: Period;
  /** Energy divided in the cell (pool energy, or the allocatable loss). */
  readonly kwh: string;
  readonly basis: ShareBasis['basis'];
  readonly your_weight: string;
  readonly total_weight: string;
  readonly your_kwh: string;
}

export interface StatementShare {
  readonly basis: ShareBasis['basis'];
  /** The tenant's weight and the total over the range (consumption: kWh summed; area, equal: the range's last cell). */
  readonly your_weight: string;
  readonly total_weight: string;
  /** your_weight / total_weight, percent, 2 places. */
  readonly percent: string;
  readonly your_kwh: string;
  readonly amount: string;
  readonly estimated: boolean;
  /** Each day-period cell: share = floor(kWh x your / total), plus a leftover Wh by largest remainder. */
  readonly cells: readonly ShareCell[];
}

export interface StatementPool extends StatementShare {
  readonly pool: string;
  readonly name: string;
  /** The pool's energy over the cells the tenant shared. */
  readonly kwh: string;
}

export interface StatementLoss extends StatementShare {
  readonly master_kwh: string;
  /** Tenant and common meters. */
  readonly submeters_kwh: string;
  readonly loss_kwh: string;
  readonly loss_rate: string;
  /** loss.normal_rate: the most loss tenants are charged, as a share of the master energy. */
  readonly normal_rate: string;
  readonly allocated_kwh: string;
  /** Loss above the normal rate: borne by the property, never charged. */
  readonly abnormal_kwh: string;
}

export interface VerifiableStatement extends Omit<AccountBill, 'lines'> {
  readonly statement_no: string;
  readonly property: string;
  readonly lines: readonly StatementLine[];
  readonly meters: readonly StatementMeter[];
  readonly pools: readonly StatementPool[];
  readonly loss: StatementLoss;
  readonly payment_list: readonly { readonly time: string; readonly amount: string; readonly reference: string }[];
}

/** The statement number: site, account and month, unique per statement. */
export function statementNumber(site: string, account: string, month: string): string {
  return `${site}-${account}-${month.replace('-', '')}`;
}

const cellKey = (date: LocalDate, period: Period) => `${date}|${period}`;
const PERIOD_ORDER = Object.fromEntries(PERIODS.map((p, i) => [p, i])) as Record<Period, number>;

/** A weight as the tenant reads it: area in m2, energy in kWh, equal as a count. */
function weightText(basis: ShareBasis['basis'], w: number): string {
  if (basis === 'area') return new Dec(w).div(10_000).toString();
  if (basis === 'consumption') return kwhText(w);
  return String(w);
}

function percent(your: number, total: number): string {
  return total > 0 ? new Dec(your).mul(100).div(total).toFixed(2, Dec.ROUND_HALF_UP) : '0.00';
}

export function verifiableStatement(f: StatementFacts): VerifiableStatement {
  const { site, account } = f;
  const bill = accountBill(
    account.id,
    f.charges,
    f.openingFen,
    f.payments.reduce((s, p) => s + p.fen, 0),
  );
  // Net per (date, kind, pool, period): shares and own energy of each cell.
  const net = new Map<string, { wh: number; fen: number }>();
  const lineDays = new Map<string, Set<LocalDate>>(); // line key -> dates it has energy
  for (const c of f.charges) {
    const k = `${c.date}|${c.kind}|${c.pool ?? ''}|${c.period}`;
    const n = net.get(k) ?? { wh: 0, fen: 0 };
    n.wh += c.wh;
    n.fen += c.fen;
    net.set(k, n);
    const lk = `${c.kind}|${c.pool ?? ''}|${c.period}|${priceMicro(c.price)}`;
    if (!lineDays.has(lk)) lineDays.set(lk, new Set());
    lineDays.get(lk)!.add(c.date);
  }
  const own = (date: LocalDate, period: Period) => net.get(`${date}|own||${period}`)?.wh ?? 0;
  const share = (date: LocalDate, kind: 'common' | 'loss', pool: string | undefined, period: Period) => net.get(`${date}|${kind}|${pool ?? ''}|${period}`) ?? { wh: 0, fen: 0 };

  // Gaps: which (date, period) cells of which meters rest on interpolation across a gap.
  const gapCells = new Map<string, Set<string>>(); // cellKey -> meters
  for (const g of f.gaps) {
    if (g.gapWh <= 0) continue;
    const k = cellKey(g.date, g.period);
    if (!gapCells.has(k)) gapCells.set(k, new Set());
    gapCells.get(k)!.add(g.meter);
  }
  const ownMeters = site.meters.filter((m) => m.role === 'tenant' && m.account === account.id).map((m) => m.id);
  const poolMeters = (pool: string) => site.meters.filter((m) => m.role === 'common' && m.pool === pool).map((m) => m.id);
  const poolMethod = new Map(site.pools.map((p) => [p.id, p.method]));
  const gapIn = (date: LocalDate, period: Period, meters: readonly string[] | 'any') => {
    const s = gapCells.get(cellKey(date, period));
    return !!s && (meters === 'any' ? s.size > 0 : meters.some((m) => s.has(m)));
  };
  const lineEstimated = (l: BillLine): boolean => {
    const days = lineDays.get(`${l.kind}|${l.pool ?? ''}|${l.period}|${priceMicro(l.price)}`) ?? new Set<LocalDate>();
    for (const d of days) {
      if (l.kind === 'own' && gapIn(d, l.period, ownMeters)) return true;
      if (l.kind === 'common' && (gapIn(d, l.period, poolMeters(l.pool!)) || (poolMethod.get(l.pool!) === 'consumption' && gapIn(d, l.period, ownMeters)))) return true;
      if (l.kind === 'loss' && gapIn(d, l.period, 'any')) return true;
    }
    return false;
  };
  const lines: StatementLine[] = bill.lines.map((l) => ({ ...l, estimated: lineEstimated(l) }));

  // Meters: start of the first day with one, end of the last, energy summed.
  const meters: StatementMeter[] = ownMeters.map((id) => {
    const days = f.meterDays.filter((d) => d.meter === id).sort((a, b) => byteOrder(a.date, b.date));
    const first = days.find((d) => d.start);
    const last = [...days].reverse().find((d) => d.end);
    const wh = days.reduce((s, d) => s + d.wh, 0);
    // Its energy rests on a gap somewhere in the range (facts.gaps are the range's).
    const est = f.gaps.some((g) => g.meter === id && g.gapWh > 0);
    return {
      meter: id,
      start_reading: first?.start ? kwhText(first.start.wh) : null,
      start_time: first?.start ? f.formatTime(first.start.ms) : null,
      end_reading: last?.end ? kwhText(last.end.wh) : null,
      end_time: last?.end ? f.formatTime(last.end.ms) : null,
      multiplier: '1',
      kwh: kwhText(wh),
      estimated: est || !!first?.start?.estimated || !!last?.end?.estimated,
    };
  });

  const weightsOf = (kind: 'common' | 'loss', pool: string | undefined) => {
    const out: ShareCell[] = [];
    let yourSum = 0;
    let totalSum = 0;
    let lastYour = 0;
    let lastTotal = 0;
    let basis: ShareBasis['basis'] = kind === 'loss' ? site.loss.method : (poolMethod.get(pool!) ?? 'equal');
    let energy = 0;
    let estimated = false;
    const days = new Map(f.accountDays.map((d) => [d.date, d]));
    const bases = f.bases.filter((b) => b.kind === kind && (kind === 'loss' || b.pool === pool)).sort((a, b) => byteOrder(a.date, b.date) || PERIOD_ORDER[a.period] - PERIOD_ORDER[b.period]);
    for (const b of bases) {
      const ad = days.get(b.date);
      if (kind === 'common' && !(ad?.pools.includes(pool!) ?? false)) continue; // not a member that day
      const your = b.basis === 'area' ? (ad?.areaWeight ?? 0) : b.basis === 'consumption' ? own(b.date, b.period) : 1;
      const mine = share(b.date, kind, pool, b.period);
      out.push({ date: b.date, period: b.period, kwh: kwhText(b.wh), basis: b.basis, your_weight: weightText(b.basis, your), total_weight: weightText(b.basis, b.weightTotal), your_kwh: kwhText(mine.wh) });
      yourSum += your;
      totalSum += b.weightTotal;
      lastYour = your;
      lastTotal = b.weightTotal;
      basis = b.basis;
      energy += b.wh;
      if (kind === 'common' ? gapIn(b.date, b.period, poolMeters(pool!)) : gapIn(b.date, b.period, 'any')) estimated = true;
    }
    const summed = basis === 'consumption';
    const your = summed ? yourSum : lastYour;
    const total = summed ? totalSum : lastTotal;
    const kindLines = lines.filter((l) => l.kind === kind && (kind === 'loss' || l.pool === pool));
    return {
      energy,
      share: {
        basis,
        your_weight: weightText(basis, your),
        total_weight: weightText(basis, total),
        percent: percent(your, total),
        your_kwh: kwhText(kindLines.reduce((s, l) => s + (parseFixed(l.kwh, 3) ?? 0), 0)),
        amount: moneyText(kindLines.reduce((s, l) => s + (parseFixed(l.amount, 2) ?? 0), 0)),
        estimated: estimated || kindLines.some((l) => l.estimated),
        cells: out,
      } satisfies StatementShare,
      shared: out.length > 0 || kindLines.length > 0,
    };
  };

  const pools: StatementPool[] = [];
  for (const p of [...site.pools].sort((a, b) => byteOrder(a.id, b.id))) {
    const w = weightsOf('common', p.id);
    if (!w.shared) continue;
    pools.push({ pool: p.id, name: p.name, kwh: kwhText(w.energy), ...w.share });
  }
  const sums = { M: 0, T: 0, C: 0, L: 0, alloc: 0, abn: 0 };
  for (const c of f.cells) {
    sums.M += c.masterWh;
    sums.T += c.tenantWh;
    sums.C += c.commonWh;
    sums.L += c.lossWh;
    sums.alloc += c.lossAllocatedWh;
    sums.abn += c.lossAbnormalWh;
  }
  const lw = weightsOf('loss', undefined);
  const loss: StatementLoss = {
    master_kwh: kwhText(sums.M),
    submeters_kwh: kwhText(sums.T + sums.C),
    loss_kwh: kwhText(sums.L),
    loss_rate: lossRate(sums.L, sums.M),
    normal_rate: site.loss.normalRate,
    allocated_kwh: kwhText(sums.alloc),
    abnormal_kwh: kwhText(sums.abn),
    ...lw.share,
  };
  return {
    statement_no: statementNumber(site.id, account.id, f.month),
    property: site.name,
    ...bill,
    lines,
    meters,
    pools,
    loss,
    payment_list: f.payments.map((p) => ({ time: p.time, amount: moneyText(p.fen), reference: p.reference })),
  };
}

