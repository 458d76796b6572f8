import { BillingInputError } from '../errors.ts';
import { CellSums, meterTargets, siteCuts } from '../settle/attribution.ts';
import { settleCells, settleIndexed } from '../settle/settle.ts';
import type { IndexedCell } from '../settle/settle.ts';
import type { SiteIndex } from '../settle/site-index.ts';
import { siteIndex } from '../settle/site-index.ts';
import type { Site } from '../site/model.ts';
import { cellOccupancy } from '../tenancy/cells.ts';
import { cutCalendar } from '../tenancy/cuts.ts';
import { buildCalendar } from '../tou/calendar.ts';
import { addDays } from '../tou/local-date.ts';
import type { LocalDate } from '../tou/local-date.ts';
import { PERIODS } from '../tou/schedule.ts';
import type { Period } from '../tou/schedule.ts';
import type { DaySettlement } from '../types.ts';

/**
 * Provisional settlement (billing.md section 5): the settlement of section 4 (own energy,
 * common pools, loss with the normal-rate cap, largest remainder, charges rounded per line)
 * run on the energy that has arrived for time not yet settled. Its input is each meter's
 * energy per (local day, period), which the workers sum from their 15-minute TOU buckets:
 * the buckets are pieces of section 3 cut on a finer grid, so they telescope to exactly the
 * cell energy the settlement computes from the same readings (workers/bucket-cells.test.ts).
 * The same function prices the trailing 24 h (hours left) and the cost per hour.
 */

/** One meter's energy in one period of a local day, Wh. */
export interface MeterEnergy {
  readonly meter: string;
  readonly period: Period;
  readonly wh: number;
  /**
   * An instant of the stretch the energy is from (e.g. the start of its first bucket),
   * between two cuts of siteCuts: a tenant meter's energy is its occupant's then (billing.md
   * section 11). Required for a tenant meter whose occupant changes that day; otherwise the
   * day's occupant is meant.
   */
  readonly at?: number;
}

const NP = PERIODS.length;

/**
 * The settlement of one local day from its meters' energy per period. Every period that
 * occurs that day gets a cell (as in settleRange); energy of a meter not in the site file,
 * or of a period that does not occur that day, is ignored. Throws BillingInputError like the
 * settlement when an account's tariff has no price for a period with its energy.
 */
function meterEnergyCells(site: Site, date: LocalDate, energy: Iterable<MeterEnergy>): { idx: SiteIndex; cells: IndexedCell[] } {
  const idx = siteIndex(site);
  const targets = meterTargets(site);
  const meterPos = meterPositions(site);
  // Cut like settleRange's calendar, so each account's occupied share of a cell is the same.
  const cal = cutCalendar(buildCalendar(site, date, addDays(date, 1)), siteCuts(site));
  const dayStart = cal.start[0];
  const dayEnd = cal.start[cal.segments];
  const firstInstant = new Float64Array(NP).fill(NaN);
  for (let k = 0; k < cal.segments; k++) if (Number.isNaN(firstInstant[cal.period[k]])) firstInstant[cal.period[k]] = cal.start[k];
  const sums = new CellSums(site, NP);
  const occupancy = cellOccupancy(site, idx, cal, NP);
  for (const e of energy) {
    const m = meterPos.get(e.meter);
    const p = PERIODS.indexOf(e.period);
    if (m === undefined || p < 0 || e.wh === 0) continue;
    const to = targets[m];
    let at = e.at;
    if (at === undefined) {
      if (to.kind === 'tenant' && to.spans.some((s) => s.from > dayStart && s.from < dayEnd)) {
        throw new BillingInputError(`meter ${e.meter} changes occupant on ${date}: its energy must say when it was used (MeterEnergy.at)`);
      }
      at = dayStart;
    }
    sums.add(m, p, at, e.wh);
  }
  const cells: IndexedCell[] = [];
  for (let p = 0; p < NP; p++) {
    if (Number.isNaN(firstInstant[p])) continue;
    cells.push({
      period: PERIODS[p],
      firstInstant: firstInstant[p],
      masterWh: sums.master[p],
      tenantWh: sums.tenant.map((t) => t[p]),
      poolWh: sums.pool.map((q) => q[p]),
      ...(occupancy ? { occupancy: occupancy(p) } : {}),
      ...(sums.vacant ? { vacantWh: sums.vacant[p] } : {}),
    });
  }
  return { idx, cells };
}

export function settleMeterEnergy(site: Site, date: LocalDate, energy: Iterable<MeterEnergy>): DaySettlement {
  const { idx, cells } = meterEnergyCells(site, date, energy);
  return settleIndexed(idx, date, cells);
}

/**
 * A day's charges as the live figures need them: the same settlement (section 4, one
 * implementation: settleCells) summed instead of written out as lines, which the balance job
 * does for every account of a site every few seconds (issue 15).
 */
export interface DayCharges {
  readonly date: LocalDate;
  /** Per account in SiteIndex.accountIds order: the sum of its charges' fen. */
  readonly fen: Float64Array;
  /** Per account and period (index account x PERIODS.length + period): its own lines' Wh, when asked for. */
  readonly ownWh?: Float64Array;
}

/** settleMeterEnergy's charges summed per account (and own Wh per account and period when `own`). Throws like it. */
export function dayChargesOf(site: Site, date: LocalDate, energy: Iterable<MeterEnergy>, own = false): DayCharges {
  const { idx, cells } = meterEnergyCells(site, date, energy);
  const n = idx.accountIds.length;
  const fen = new Float64Array(n);
  const ownWh = own ? new Float64Array(n * NP) : undefined;
  settleCells(idx, date, cells, (account, kind, _pool, period, wh, f) => {
    fen[account] += f;
    if (ownWh && kind === 'own') ownWh[account * NP + period] += wh;
  });
  return { date, fen, ...(ownWh ? { ownWh } : {}) };
}

/** Each account's charges (fen) of some settlements, every account present (0 if none). */
export function chargesByAccount(site: Site, days: Iterable<DaySettlement>): Map<string, number> {
  const out = new Map(siteIndex(site).accountIds.map((id) => [id, 0]));
  for (const d of days) for (const l of d.lines) out.set(l.account, (out.get(l.account) ?? 0) + l.fen);
  return out;
}

const positions = new WeakMap<Site, Map<string, number>>();
function meterPositions(site: Site): Map<string, number> {
  let m = positions.get(site);
  if (!m) positions.set(site, (m = new Map(site.meters.map((x, i) => [x.id, i]))));
  return m;
}
