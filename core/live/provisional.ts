import { meterTargets } from '../settle/attribution.ts';
import { settleIndexed } from '../settle/settle.ts';
import type { IndexedCell } from '../settle/settle.ts';
import { siteIndex } from '../settle/site-index.ts';
import type { Site } from '../site/model.ts';
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
}

const NP = PERIODS.length;

/**
 * The settlement of one local day from its meters' energy per period. Every period that
 * occurs that day gets a cell (as in settleRange); energy of a meter not in the site file,
 * or of a period that does not occur that day, is ignored. Throws BillingInputError like the
 * settlement when an account's tariff has no price for a period with its energy.
 */
export function settleMeterEnergy(site: Site, date: LocalDate, energy: Iterable<MeterEnergy>): DaySettlement {
  const idx = siteIndex(site);
  const targets = meterTargets(site);
  const meterPos = meterPositions(site);
  const cal = buildCalendar(site, date, addDays(date, 1));
  const firstInstant = new Float64Array(NP).fill(NaN);
  for (let k = 0; k < cal.segments; k++) if (Number.isNaN(firstInstant[cal.period[k]])) firstInstant[cal.period[k]] = cal.start[k];
  const master = new Float64Array(NP);
  const tenant = idx.accountIds.map(() => new Float64Array(NP));
  const pool = idx.pools.map(() => new Float64Array(NP));
  for (const e of energy) {
    const m = meterPos.get(e.meter);
    const p = PERIODS.indexOf(e.period);
    if (m === undefined || p < 0 || e.wh === 0) continue;
    const to = targets[m];
    if (to.kind === 'master') master[p] += e.wh;
    else if (to.kind === 'tenant') tenant[to.account][p] += e.wh;
    else pool[to.pool][p] += e.wh;
  }
  const cells: IndexedCell[] = [];
  for (let p = 0; p < NP; p++) {
    if (Number.isNaN(firstInstant[p])) continue;
    cells.push({ period: PERIODS[p], firstInstant: firstInstant[p], masterWh: master[p], tenantWh: tenant.map((t) => t[p]), poolWh: pool.map((q) => q[p]) });
  }
  return settleIndexed(idx, date, cells);
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
