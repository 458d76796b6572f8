import { accountBill, lossRate } from '../bill/assemble.ts';
import type { ChargeInput } from '../bill/assemble.ts';
import { Dec } from '../decimal.ts';
import type { Account, Site } from '../site/model.ts';
import type { LocalDate } from '../tou/local-date.ts';
import { PERIODS } from '../tou/schedule.ts';
import type { Period } from '../tou/schedule.ts';
import type { AccountBill, BillLine, CellSummary, ShareBasis } from '../types.ts';
import { byteOrder, kwhText, moneyText, parseFixed, priceMicro } from '../units.ts';
import { multiplierAt } from '../counters/meter-changes.ts';
import type { PaymentRow } from '../readings/csv.ts';
import { finalStatement } from '../tenancy/final-statement.ts';
import type { LedgerEntry } from '../tenancy/final-statement.ts';
import { meterTimeline } from '../tenancy/occupancy.ts';
import { zoneOf } from '../tou/zone.ts';
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
  /**
   * The meter_day facts of the range of the meters the account occupied in it, with the
   * registers at moves inside a day (marks, billing.md section 11).
   */
  readonly meterDays: readonly {
    readonly date: LocalDate;
    readonly meter: string;
    readonly wh: number;
    readonly start?: RegisterAt;
    readonly end?: RegisterAt;
    readonly marks?: readonly (RegisterAt & { readonly whBefore: number })[];
  }[];
  /** Energy spread over gaps, per (date, meter, period), any meter of the site (the loss rests on all of them). */
  readonly gaps: readonly { readonly date: LocalDate; readonly meter: string; readonly period: Period; readonly gapWh: number }[];
  readonly bases: readonly (ShareBasis & { readonly date: LocalDate })[];
  /** The account's weights per day. */
  readonly accountDays: readonly { readonly date: LocalDate; readonly areaWeight: number; readonly pools: readonly string[] }[];
  /** Cells the account occupied only in part (billing.md section 11): seconds it was there. */
  readonly occupancy?: readonly { readonly date: LocalDate; readonly period: Period; readonly seconds: number }[];
  /** Deposits held at the end of the range (section 11), when the account has any. */
  readonly depositFen?: number;
  /**
   * The account moved out and this is its final statement (section 11 rule 8): its whole
   * ledger (any kind, any time), from which the final block is worked out. `payments` must
   * then be those in [local midnight of from, move_out), deposits left out.
   */
  readonly final?: { readonly ledger: readonly PaymentRow[] };
  /** The site's cells per day. */
  readonly cells: readonly (CellSummary & { readonly date: LocalDate })[];
  /** Formats an instant (epoch ms) as RFC 3339 at the site's offset. */
  readonly formatTime: (utc: number) => string;
}

export interface StatementLine extends BillLine {
  /** Some of its energy (or of what it was shared from) was interpolated across a gap. */
  readonly estimated: boolean;
}

/** A replacement or CT swap of a meter inside the statement's span (billing.md section 11 rule 5). */
export interface StatementMeterChange {
  readonly time: string;
  /** The old meter's final register (raw), and whether it was typed by hand. */
  readonly final_reading: string;
  readonly final_estimated: boolean;
  /** The new meter's initial register (raw). */
  readonly initial_reading: string;
  readonly multiplier_before: string;
  readonly multiplier_after: string;
  readonly serial?: string;
}

export interface StatementMeter {
  readonly meter: string;
  /** The part of the range the account occupied the unit (billing.md section 11), RFC 3339. */
  readonly from: string;
  readonly to: string;
  /** 起码: the raw register at the start of that part (or of the first reading in it). */
  readonly start_reading: string | null;
  readonly start_time: string | null;
  /** 倍率 in force at the start (CT x PT, section 11 rule 6). */
  readonly multiplier: string;
  /** start_reading x multiplier, kWh. */
  readonly start_primary: string | null;
  /** 止码: the raw register at the end of that part (or of the last reading in it). */
  readonly end_reading: string | null;
  readonly end_time: string | null;
  /** The multiplier in force at the end (differs after a CT swap). */
  readonly end_multiplier: string;
  /** end_reading x end_multiplier, kWh. */
  readonly end_primary: string | null;
  /** Replacements and CT swaps inside the part, in order. */
  readonly changes: readonly StatementMeterChange[];
  /**
   * Energy of the part (settled cells): the sum over its register pieces of (piece end -
   * piece start) x that piece's multiplier, the pieces cut at the changes (old meter up to
   * final_reading, new one from initial_reading), unless a register was reset or rolled over.
   */
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
  /**
   * Prorated cells (billing.md section 11 rule 3): the weights are x seconds there; the cell's
   * length and the seconds you were there (your_weight = your area or 1, x these).
   */
  readonly cell_seconds?: number;
  readonly your_seconds?: number;
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

/** What settles an account that moved out (billing.md section 11 rule 8). */
export interface FinalBlock {
  readonly move_out: string;
  /** Deposits held at move-out. */
  readonly deposit: string;
  /** closing + deposit when positive, else 0.00. */
  readonly refund_due: string;
  /** -(closing + deposit) when positive, else 0.00. */
  readonly amount_due: string;
  /** Ledger lines of the account at or after move-out, by time then reference. */
  readonly after_move_out: readonly LedgerEntry[];
  /** closing + deposit + the lines after move-out: 0.00 when the account is settled. */
  readonly outstanding: string;
}

export interface VerifiableStatement extends Omit<AccountBill, 'lines'> {
  readonly statement_no: string;
  readonly property: string;
  /** The account's occupancy (billing.md section 11): RFC 3339, null when open. */
  readonly move_in: string | null;
  readonly move_out: string | null;
  /** The final statement's block (an account that moved out, section 11 rule 8). */
  readonly final?: FinalBlock;
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

/** A weight as the tenant reads it: area in m2 (x s when prorated), energy in kWh, equal as a count (or s). */
function weightText(basis: ShareBasis['basis'], w: number): string {
  if (basis === 'area') return new Dec(w).div(10_000).toString();
  if (basis === 'consumption') return kwhText(w);
  return String(w);
}

/** The multiplier of the register that reads t as its last reading (a change exactly at t: the old one). */
function endMultiplier(meter: Site['meters'][number], t: number): number {
  return (meter.changes ?? []).some((c) => c.at === t) ? multiplierAt(meter, t - 1) : multiplierAt(meter, t);
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
  const zone = zoneOf(site.timezone);
  const fromMs = zone.midnight(f.from);
  const toMs = zone.midnight(f.to);
  // The meters the account occupied in the range, and when (billing.md section 11: the landlord's vacant spans too).
  const spans = site.meters.flatMap((m) =>
    m.role !== 'tenant'
      ? []
      : meterTimeline(site, m)
          .filter((x) => x.account === account.id && x.from < toMs && x.to > fromMs)
          .map((x) => ({ meter: m, a: Math.max(x.from, fromMs), b: Math.min(x.to, toMs) })),
  );
  const ownMeters = [...new Set(spans.map((x) => x.meter.id))];
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

  // Meters: for each part of the range the account occupied a unit, the register at its
  // start (a day's start, or the mark at a move) and at its end, the energy in between.
  const isMidnight = (t: number) => zone.midnight(zone.dateOf(t)) === t;
  const text = (r: RegisterAt | undefined) => (r ? kwhText(r.wh) : null);
  const primary = (r: RegisterAt | undefined, mult: number) => (r ? kwhText(r.wh * mult) : null);
  const meters: StatementMeter[] = spans.map(({ meter, a, b }) => {
    const id = meter.id;
    const firstDate = zone.dateOf(a);
    const lastDate = zone.dateOf(b - 1);
    const days = f.meterDays.filter((d) => d.meter === id && d.date >= firstDate && d.date <= lastDate).sort((x, y) => byteOrder(x.date, y.date));
    const markAt = (t: number) => days.find((d) => d.date === zone.dateOf(t))?.marks?.find((k) => k.ms === t);
    const startMark = isMidnight(a) ? undefined : markAt(a);
    const endMark = isMidnight(b) ? undefined : markAt(b);
    const start = isMidnight(a) ? days.find((d) => d.start)?.start : startMark;
    const end = isMidnight(b) ? [...days].reverse().find((d) => d.end)?.end : endMark;
    let wh = 0;
    for (const d of days) {
      const lo = d.date === firstDate && startMark ? startMark.whBefore : 0;
      const hi = d.date === lastDate && endMark ? endMark.whBefore : d.wh;
      wh += hi - lo;
    }
    // Its energy rests on a gap somewhere in the range (facts.gaps are the range's).
    const est = f.gaps.some((g) => g.meter === id && g.gapWh > 0 && g.date >= firstDate && g.date <= lastDate);
    const m0 = start ? multiplierAt(meter, start.ms) : multiplierAt(meter, a);
    const m1 = end ? endMultiplier(meter, end.ms) : endMultiplier(meter, b);
    const changes = (meter.changes ?? [])
      .filter((c) => c.at > a && c.at < b)
      .map((c): StatementMeterChange => ({
        time: f.formatTime(c.at),
        final_reading: kwhText(c.finalWh),
        final_estimated: c.estimated,
        initial_reading: kwhText(c.initialWh),
        multiplier_before: String(multiplierAt(meter, c.at - 1)),
        multiplier_after: String(c.multiplier),
        ...(c.serial !== undefined ? { serial: c.serial } : {}),
      }));
    return {
      meter: id,
      from: f.formatTime(a),
      to: f.formatTime(b),
      start_reading: text(start),
      start_time: start ? f.formatTime(start.ms) : null,
      multiplier: String(m0),
      start_primary: primary(start, m0),
      end_reading: text(end),
      end_time: end ? f.formatTime(end.ms) : null,
      end_multiplier: String(m1),
      end_primary: primary(end, m1),
      changes,
      kwh: kwhText(wh),
      estimated: est || !!start?.estimated || !!end?.estimated || changes.some((c) => c.final_estimated),
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
    const partial = new Map((f.occupancy ?? []).map((o) => [cellKey(o.date, o.period), o.seconds]));
    const landlord = site.landlordAccount === account.id;
    const bases = f.bases.filter((b) => b.kind === kind && (kind === 'loss' || b.pool === pool)).sort((a, b) => byteOrder(a.date, b.date) || PERIOD_ORDER[a.period] - PERIOD_ORDER[b.period]);
    for (const b of bases) {
      const ad = days.get(b.date);
      // Not a member that day (the landlord bears a cell nobody was there for, section 11).
      if (kind === 'common' && !(ad?.pools.includes(pool!) ?? false) && !(b.basis === 'landlord' && landlord)) continue;
      // Prorated cells: x the seconds there (the whole cell unless account_cell says less).
      const seconds = b.cellS !== undefined ? (partial.get(cellKey(b.date, b.period)) ?? b.cellS) : undefined;
      const base = b.basis === 'area' ? (ad?.areaWeight ?? 0) : b.basis === 'consumption' ? own(b.date, b.period) : b.basis === 'landlord' ? (landlord ? 1 : 0) : 1;
      const your = seconds !== undefined && b.basis !== 'consumption' && b.basis !== 'landlord' ? base * seconds : base;
      const mine = share(b.date, kind, pool, b.period);
      out.push({
        date: b.date,
        period: b.period,
        kwh: kwhText(b.wh),
        basis: b.basis,
        your_weight: weightText(b.basis, your),
        total_weight: weightText(b.basis, b.weightTotal),
        your_kwh: kwhText(mine.wh),
        ...(seconds !== undefined && b.basis !== 'consumption' && b.basis !== 'landlord' ? { cell_seconds: b.cellS!, your_seconds: seconds } : {}),
      });
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
  const fin = f.final && account.moveOut !== undefined ? finalStatement(site, account, bill, f.final.ledger) : undefined;
  return {
    statement_no: statementNumber(site.id, account.id, f.month),
    property: site.name,
    ...bill,
    ...(f.depositFen !== undefined ? { deposit: moneyText(f.depositFen) } : {}),
    move_in: account.moveIn !== undefined ? f.formatTime(account.moveIn) : null,
    move_out: account.moveOut !== undefined ? f.formatTime(account.moveOut) : null,
    ...(fin
      ? {
          final: {
            move_out: fin.move_out,
            deposit: fin.deposit,
            refund_due: fin.refund_due,
            amount_due: fin.amount_due,
            after_move_out: fin.after_move_out,
            outstanding: fin.outstanding,
          },
        }
      : {}),
    lines,
    meters,
    pools,
    loss,
    payment_list: f.payments.map((p) => ({ time: p.time, amount: moneyText(p.fen), reference: p.reference })),
  };
}

