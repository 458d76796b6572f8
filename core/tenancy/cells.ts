import { BillingInputError } from '../errors.ts';
import type { SiteIndex } from '../settle/site-index.ts';
import type { Meter, Site } from '../site/model.ts';
import type { TouCalendar } from '../tou/calendar.ts';
import { PERIODS } from '../tou/schedule.ts';
import { zoneOf } from '../tou/zone.ts';
import { meterTimeline, occupiesAt } from './occupancy.ts';

const NP = PERIODS.length;

/**
 * The per-cell side of billing.md section 10 for settleRange: whose own energy each piece
 * of a tenant meter is (rule 1: the occupant then; a vacant piece is the landlord's and is
 * also counted as vacant energy) and how much of each (day, period) cell every account
 * occupied (rule 3). The calendar must already be cut at every move instant
 * (cutCalendar + tenancyCuts), so each segment has one occupant and one occupancy state.
 */
export interface CellTenancy {
  /** Adds a tenant meter's energy per segment to its occupants' cells (tenant[account][cell]). */
  attribute(meter: Meter, seg: Float64Array, tenant: Float64Array[]): void;
  /** The section-10 fields of cell c for settleIndexed (none on a site without moves or landlord). */
  cell(c: number): { occupiedMs?: number[]; vacantWh?: number };
}

export function cellTenancy(site: Site, idx: SiteIndex, cal: TouCalendar, nCells: number): CellTenancy {
  const vacant = site.landlordAccount !== undefined ? new Float64Array(nCells) : undefined;
  const byId = new Map(site.accounts.map((a) => [a.id, a]));
  const dated = idx.accountIds.map((id, pos) => ({ a: byId.get(id)!, pos })).filter(({ a }) => a.moveIn !== undefined || a.moveOut !== undefined);
  let cellMs: Float64Array | undefined;
  const occupied = new Map<number, Float64Array>();
  if (dated.length > 0) {
    cellMs = new Float64Array(nCells);
    for (const d of dated) occupied.set(d.pos, new Float64Array(nCells));
    for (let k = 0; k < cal.segments; k++) {
      const c = cal.day[k] * NP + cal.period[k];
      const len = cal.start[k + 1] - cal.start[k];
      cellMs[c] += len;
      for (const d of dated) if (occupiesAt(d.a, cal.start[k])) occupied.get(d.pos)![c] += len;
    }
  }
  return {
    attribute(meter, seg, tenant) {
      const spans = meterTimeline(site, meter);
      if (spans.length === 1 && !spans[0].vacant) {
        const target = tenant[idx.accountPos.get(spans[0].account)!];
        for (let k = 0; k < cal.segments; k++) if (seg[k] !== 0) target[cal.day[k] * NP + cal.period[k]] += seg[k];
        return;
      }
      let s = 0;
      for (let k = 0; k < cal.segments; k++) {
        const t = cal.start[k];
        while (spans[s].to <= t) s++;
        if (seg[k] === 0) continue;
        const span = spans[s];
        const pos = idx.accountPos.get(span.account);
        if (pos === undefined) {
          // The site loader refuses vacancy without a landlord account; this is a guard.
          throw new BillingInputError(`meter ${meter.id} has ${seg[k]} Wh at ${zoneOf(site.timezone).format(t)} and no occupant: name a site.landlord_account`);
        }
        const c = cal.day[k] * NP + cal.period[k];
        tenant[pos][c] += seg[k];
        if (span.vacant && vacant) vacant[c] += seg[k];
      }
    },
    cell(c) {
      const out: { occupiedMs?: number[]; vacantWh?: number } = {};
      if (cellMs) out.occupiedMs = idx.accountIds.map((_, a) => occupied.get(a)?.[c] ?? cellMs![c]);
      if (vacant) out.vacantWh = vacant[c];
      return out;
    },
  };
}
