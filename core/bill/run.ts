import { acceptMeterSeries } from '../counters/meter-changes.ts';
import { spreadByRegisters } from '../counters/register-spread.ts';
import type { SpreadSeries } from '../counters/register-spread.ts';
import { cellOccupancy } from '../tenancy/cells.ts';
import { cutCalendar } from '../tenancy/cuts.ts';
import { BillingInputError } from '../errors.ts';
import type { PaymentRow, ReadingRow } from '../readings/csv.ts';
import { ReadingStore } from '../readings/store.ts';
import { settleIndexed } from '../settle/settle.ts';
import type { IndexedCell } from '../settle/settle.ts';
import { CellSums, siteCuts } from '../settle/attribution.ts';
import { siteIndex } from '../settle/site-index.ts';
import type { Site } from '../site/model.ts';
import { splitSeries } from '../split/split.ts';
import { buildCalendar } from '../tou/calendar.ts';
import type { TouCalendar } from '../tou/calendar.ts';
import { dateRangeProblem } from '../date-range.ts';
import type { LocalDate } from '../tou/local-date.ts';
import { PERIODS } from '../tou/schedule.ts';
import { zoneOf } from '../tou/zone.ts';
import type { AccountBill, BillRun, CellSummary, ChargeLine, DaySettlement, QualityEntry, QualityFlag } from '../types.ts';
import { byteOrder, moneyFen, moneyText } from '../units.ts';
import { accountBill, masterSummary } from './assemble.ts';
import { dedupePayments } from './payments.ts';

/**
 * The whole offline pipeline (billing.md sections 2-6): readings -> accepted readings ->
 * energy per (day, period) cell -> daily settlement -> bill per account, balances,
 * master summary and quality list. The CLI and the workers' equivalence test both call
 * computeBillRun; its output is a pure function of its inputs, whatever their order.
 */

/** Readings already in a compact store (meter index = position in site.meters), or rows. */
export type ReadingSource = ReadingStore | Iterable<ReadingRow>;

/** Position of each meter id in site.meters (the ReadingStore's meter index). */
export function meterIndex(site: Site): Map<string, number> {
  return new Map(site.meters.map((m, i) => [m.id, i]));
}

/** Puts reading rows into a store; an unknown meter is an error (section 1). */
export function storeReadings(site: Site, rows: Iterable<ReadingRow>): ReadingStore {
  const index = meterIndex(site);
  const store = new ReadingStore(site.meters.length);
  for (const r of rows) {
    const m = index.get(r.meter);
    if (m === undefined) throw new BillingInputError(`unknown meter '${r.meter}' (not in the site file)`, { field: 'meter' });
    store.add(m, r.time, r.wh);
    const tw = r.tariffWh;
    if (tw) store.addTariff(m, r.time, r.wh, tw[1] ?? NaN, tw[2] ?? NaN, tw[3] ?? NaN, tw[4] ?? NaN);
  }
  return store;
}

const NP = PERIODS.length;

/** The settled days of a bill range and the flags found on the way (billing.md sections 2-4). */
export interface RangeSettlement {
  readonly site: Site;
  readonly from: LocalDate;
  readonly to: LocalDate;
  /** Epoch ms of local midnight of `from` and `to`. */
  readonly fromMs: number;
  readonly toMs: number;
  /** Every settled day from the first the readings reach (or `from`) to `to`, in order. */
  readonly days: readonly DaySettlement[];
  /** Index in `days` of `from`: days before it only feed the opening balance. */
  readonly fromDay: number;
  /** Meter flags and negative_loss flags that fall in the range (section 6). */
  readonly flags: readonly QualityFlag[];
}

export interface SettleRangeOptions {
  /** Extra wall-clock cuts (e.g. 60 for hourly profiles); cells do not change. */
  readonly gridMinutes?: number;
  /**
   * Where the readings start to be complete (the workers load a window): a meter change at
   * or before it, or before the meter's first reading there, is not framed (billing.md
   * section 11: the first reading is the baseline, at the multiplier then in force).
   * @defaultValue -Infinity (all history: every change is framed)
   */
  readonly historyFromMs?: number;
  /**
   * Sees each meter's energy per calendar segment (advice profiles, workers' buckets) and
   * the series it was split from: its accepted readings with the registers tariff registers
   * imply inside gaps (section 2 rule 5) and which intervals are estimates (the statement's
   * register readings and gap marks).
   */
  readonly onSegments?: (meterIndex: number, cal: TouCalendar, wh: Float64Array, accepted: SpreadSeries) => void;
}

function checkRange(from: LocalDate, to: LocalDate): void {
  const problem = dateRangeProblem(from, to);
  if (problem) throw new BillingInputError(problem.message, { field: problem.field });
}

/**
 * Readings to settled days. Consumes a ReadingStore (each meter's rows are released once
 * read, to keep the peak memory of a large run down).
 */
export function settleRange(site: Site, readings: ReadingSource, from: LocalDate, to: LocalDate, opts: SettleRangeOptions = {}): RangeSettlement {
  checkRange(from, to);
  const idx = siteIndex(site);
  const zone = zoneOf(site.timezone);
  const store = readings instanceof ReadingStore ? readings : storeReadings(site, readings);
  const fromMs = zone.midnight(from);
  const toMs = zone.midnight(to);

  // Settled days before `from` that the readings reach count for the opening balance.
  const firstDate = Number.isFinite(store.minTime) && store.minTime < fromMs ? zone.dateOf(store.minTime) : from;
  // Moves and meter changes cut the calendar too (section 11): one occupant and one register per piece.
  const cal = cutCalendar(buildCalendar(site, firstDate < from ? firstDate : from, to, opts.gridMinutes ?? 0), siteCuts(site));
  const nDays = cal.days.length;
  const fromDay = cal.days.indexOf(from);
  const nCells = nDays * NP;

  // Energy per (day, period) cell: master, per account (the occupant's), per pool.
  const sums = new CellSums(site, nCells);
  const occupancy = cellOccupancy(site, idx, cal, nCells);
  const seg = new Float64Array(cal.segments);
  const flags: QualityFlag[] = [];

  site.meters.forEach((meter, mi) => {
    const raw = store.series(mi);
    store.release(mi);
    // Section 2: the counter rules, then how each gap is spread (rule 5: by the meter's
    // tariff registers where its readings carry them) and which gaps estimate something.
    const acc = spreadByRegisters(site, meter, acceptMeterSeries(meter, raw, opts.historyFromMs), raw.tariff);
    for (const f of acc.flags) {
      if (f.kind === 'gap' ? f.time < toMs && (f.until ?? f.time) > fromMs : f.time >= fromMs && f.time < toMs) flags.push(f);
    }
    const n = acc.time.length;
    const inc = incompleteFlag(meter.id, n ? acc.time[0] : undefined, n ? acc.time[n - 1] : undefined, fromMs, toMs, zone.format.bind(zone));
    if (inc) flags.push(inc);

    seg.fill(0);
    splitSeries(acc, cal, seg);
    opts.onSegments?.(mi, cal, seg, acc);
    sums.addSegments(mi, cal, seg);
  });

  // The first instant and presence of each cell (a period may not occur on some day).
  const firstInstant = new Float64Array(nCells).fill(NaN);
  for (let k = 0; k < cal.segments; k++) {
    const c = cal.day[k] * NP + cal.period[k];
    if (Number.isNaN(firstInstant[c])) firstInstant[c] = cal.start[k];
  }
  const days: DaySettlement[] = [];
  for (let d = 0; d < nDays; d++) {
    const cells: IndexedCell[] = [];
    for (let p = 0; p < NP; p++) {
      const c = d * NP + p;
      if (Number.isNaN(firstInstant[c])) continue;
      cells.push({
        period: PERIODS[p],
        firstInstant: firstInstant[c],
        masterWh: sums.master[c],
        tenantWh: sums.tenant.map((t) => t[c]),
        poolWh: sums.pool.map((q) => q[c]),
        ...(occupancy ? { occupancy: occupancy(c) } : {}),
        ...(sums.vacant ? { vacantWh: sums.vacant[c] } : {}),
      });
    }
    const day = settleIndexed(idx, cal.days[d], cells);
    if (d >= fromDay) for (const f of day.flags) flags.push(f);
    days.push(day);
  }
  return { site, from, to, fromMs, toMs, days, fromDay, flags };
}

/**
 * Section 6's `incomplete` entry of a meter whose accepted readings (first and last, none
 * when undefined) do not reach both ends of [fromMs, toMs); undefined when they do.
 */
export function incompleteFlag(meter: string, first: number | undefined, last: number | undefined, fromMs: number, toMs: number, format: (t: number) => string): QualityFlag | undefined {
  if (first === undefined || last === undefined) return { meter, time: fromMs, kind: 'incomplete', detail: 'no accepted readings' };
  if (first > fromMs) return { meter, time: fromMs, kind: 'incomplete', detail: `accepted readings start at ${format(first)}` };
  if (last < toMs) return { meter, time: Math.max(last, fromMs), kind: 'incomplete', detail: `accepted readings end at ${format(last)}` };
  return undefined;
}

export function computeBillRun(site: Site, readings: ReadingSource, payments: Iterable<PaymentRow>, from: LocalDate, to: LocalDate): BillRun {
  checkRange(from, to);
  return billFromSettlement(settleRange(site, readings, from, to), payments);
}

/** Section 5 and 6: the bill run of a settled range and the payments. */
export function billFromSettlement(settled: RangeSettlement, payments: Iterable<PaymentRow>): BillRun {
  const { site, from, to, fromMs, toMs, days, fromDay } = settled;
  const idx = siteIndex(site);
  const zone = zoneOf(site.timezone);
  const flags: QualityFlag[] = [...settled.flags];
  const nAcc = idx.accountIds.length;
  const chargedBefore = new Array<number>(nAcc).fill(0);
  const charges = idx.accountIds.map((): ChargeLine[] => []);
  const cells: CellSummary[] = [];
  days.forEach((day, d) => {
    if (d < fromDay) {
      for (const l of day.lines) chargedBefore[idx.accountPos.get(l.account)!] += l.fen;
      return;
    }
    cells.push(...day.cells);
    for (const l of day.lines) charges[idx.accountPos.get(l.account)!].push(l);
  });

  // Payments (section 1 and 5).
  const paid = dedupePayments(payments, (t) => zone.format(t));
  const paidBefore = new Array<number>(nAcc).fill(0);
  const paidIn = new Array<number>(nAcc).fill(0);
  // Deposits are held apart from the prepaid balance (section 11): only reported.
  const deposit = new Array<number | undefined>(nAcc).fill(undefined);
  for (const p of paid.payments) {
    const a = idx.accountPos.get(p.account);
    if (a === undefined) throw new BillingInputError(`unknown account '${p.account}' (payment ${p.reference})`, { field: 'account' });
    if (p.kind === 'deposit') {
      if (p.time < toMs) deposit[a] = (deposit[a] ?? 0) + p.fen;
    } else if (p.time < fromMs) paidBefore[a] += p.fen;
    else if (p.time < toMs) paidIn[a] += p.fen;
  }
  for (const f of paid.flags) if (f.time >= fromMs && f.time < toMs) flags.push(f);

  const openingOf = new Map(site.accounts.map((a) => [a.id, moneyFen(a.openingBalance)]));
  const accounts: AccountBill[] = idx.accountIds.map((id, a) => ({
    ...accountBill(id, charges[a], openingOf.get(id)! + paidBefore[a] - chargedBefore[a], paidIn[a]),
    ...(deposit[a] !== undefined ? { deposit: moneyText(deposit[a]) } : {}),
  }));
  return { site: site.id, from, to, currency: site.currency, accounts, master: masterSummary(cells, site.landlordAccount !== undefined), quality: qualityEntries(flags, zone.format.bind(zone)) };
}

/** Section 6 ordering: by instant, meter, kind, detail; times at the site's offset. */
export function qualityEntries(flags: readonly QualityFlag[], format: (utc: number) => string): QualityEntry[] {
  return [...flags]
    .sort((a, b) => a.time - b.time || byteOrder(a.meter, b.meter) || byteOrder(a.kind, b.kind) || byteOrder(a.detail, b.detail))
    .map((f) => ({ meter: f.meter, time: format(f.time), kind: f.kind, detail: f.detail }));
}

/** The bill run as `submeter bill` prints it: 2-space JSON and a final newline. */
export function billRunJson(run: BillRun): string {
  return `${JSON.stringify(run, null, 2)}\n`;
}

/** `--format csv`: one row per line item (issue 3). */
export function billRunCsv(run: BillRun): string {
  const rows = ['account,kind,pool,period,kwh,price,amount'];
  for (const a of run.accounts) for (const l of a.lines) rows.push([a.account, l.kind, l.pool ?? '', l.period, l.kwh, l.price, l.amount].join(','));
  return `${rows.join('\n')}\n`;
}
