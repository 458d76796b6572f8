import { BillingInputError } from '../errors.ts';
import type { Site } from '../site/model.ts';
import type { LocalDate } from '../tou/local-date.ts';
import { PERIODS } from '../tou/schedule.ts';
import type { Period } from '../tou/schedule.ts';
import type { CellEnergy, CellSummary, ChargeKind, ChargeLine, DaySettlement, PartialOccupancy, QualityFlag, ShareBasis } from '../types.ts';
import { byteOrder, chargeFen, kwhText, moneyText, mulDivFloor, priceText } from '../units.ts';
import type { CellOccupancy } from '../tenancy/cells.ts';
import { divideAmong } from '../tenancy/shares.ts';
import type { Division } from '../tenancy/shares.ts';
import { siteIndex } from './site-index.ts';
import type { SiteIndex } from './site-index.ts';

/**
 * billing.md section 4: one local day, period by period. Common pools, loss with the
 * normal-rate cap, largest-remainder division, then charges at each account's own price.
 */

/** A day-period cell with energies in SiteIndex order (accounts by id, pools by id). */
export interface IndexedCell {
  readonly period: Period;
  readonly firstInstant: number;
  readonly masterWh: number;
  /** Per account, SiteIndex.accountIds order. */
  readonly tenantWh: ArrayLike<number>;
  /** Per pool, SiteIndex.pools order. */
  readonly poolWh: ArrayLike<number>;
  /**
   * How long each account was there (billing.md section 11). Absent on a site without
   * move-ins or move-outs: section 4 weights as they are.
   */
  readonly occupancy?: CellOccupancy;
  /** Tenant-meter energy of vacant units in the cell (part of the landlord's tenantWh), when the site names a landlord. */
  readonly vacantWh?: number;
}

const KIND_ORDER: Record<ChargeKind, number> = { own: 0, common: 1, loss: 2 };
const PERIOD_ORDER = Object.fromEntries(PERIODS.map((p, i) => [p, i])) as Record<Period, number>;

/** Settles one day from cells keyed by account and pool id (the workers' entry point). */
export function settleDay(site: Site, date: LocalDate, cells: readonly CellEnergy[]): DaySettlement {
  const idx = siteIndex(site);
  const indexed: IndexedCell[] = cells.map((c) => ({
    period: c.period,
    firstInstant: c.firstInstant,
    masterWh: c.masterWh,
    tenantWh: idx.accountIds.map((a) => c.tenantWh.get(a) ?? 0),
    poolWh: idx.pools.map((p) => c.poolWh.get(p.id) ?? 0),
  }));
  return settleIndexed(idx, date, indexed);
}

export function settleIndexed(idx: SiteIndex, date: LocalDate, cells: readonly IndexedCell[]): DaySettlement {
  const lines: ChargeLine[] = [];
  const summaries: CellSummary[] = [];
  const flags: QualityFlag[] = [];
  const bases: ShareBasis[] = [];
  const partial: PartialOccupancy[] = [];
  const ids = idx.accountIds;
  const allMembers = ids.map((_, i) => i);

  const charge = (account: number, kind: ChargeKind, pool: string | undefined, period: Period, wh: number) => {
    if (wh === 0) return; // section 4: lines of 0 Wh are not created
    const tariff = idx.tariffOf[account];
    const micro = idx.price(tariff, date, period);
    if (micro === undefined) {
      throw new BillingInputError(`account ${ids[account]} has ${kwhText(wh)} kWh of ${period} energy on ${date} but its tariff '${tariff}' has no version (or no ${period} price) in force that day`);
    }
    const fen = chargeFen(wh, micro);
    lines.push({ account: ids[account], kind, ...(pool !== undefined ? { pool } : {}), period, wh, price: priceText(micro), amount: moneyText(fen), fen });
  };

  for (const cell of [...cells].sort((a, b) => PERIOD_ORDER[a.period] - PERIOD_ORDER[b.period])) {
    const p = cell.period;
    const M = cell.masterWh;
    const occupancy = cell.occupancy;
    if (occupancy) occupancy.occupiedS.forEach((s, a) => s < occupancy.cellS && partial.push({ account: ids[a], period: p, seconds: s }));
    let T = 0;
    for (let i = 0; i < ids.length; i++) {
      T += cell.tenantWh[i];
      charge(i, 'own', undefined, p, cell.tenantWh[i]);
    }
    let C = 0;
    idx.pools.forEach((pool, k) => {
      const ck = cell.poolWh[k];
      C += ck;
      if (ck === 0 || pool.members.length === 0) return;
      const d = divideAmong(idx, pool.method, pool.members, cell.tenantWh, ck, occupancy);
      for (const [m, share] of d.shares) charge(m, 'common', pool.id, p, share);
      bases.push(basisOf('common', pool.id, p, ck, d, occupancy));
    });
    const L = M - T - C;
    let allocated = 0;
    let abnormal = 0;
    if (L < 0 && -L * 200 > M) {
      flags.push({ meter: '', time: cell.firstInstant, kind: 'negative_loss', detail: `${date} ${p}: master ${kwhText(M)} kWh is ${kwhText(-L)} kWh below tenants ${kwhText(T)} + common ${kwhText(C)} kWh` });
    } else if (L > 0) {
      const cap = mulDivFloor(M, idx.normalRatePpm, 1_000_000);
      allocated = ids.length > 0 ? Math.min(L, cap) : 0;
      abnormal = L - allocated;
      if (allocated > 0) {
        const d = divideAmong(idx, idx.site.loss.method, allMembers, cell.tenantWh, allocated, occupancy);
        for (const [i, share] of d.shares) charge(i, 'loss', undefined, p, share);
        bases.push(basisOf('loss', undefined, p, allocated, d, occupancy));
      }
    }
    summaries.push({ period: p, masterWh: M, tenantWh: T, commonWh: C, lossWh: L, lossAllocatedWh: allocated, lossAbnormalWh: abnormal, ...(cell.vacantWh !== undefined ? { vacantWh: cell.vacantWh } : {}) });
  }
  lines.sort(
    (a, b) =>
      byteOrder(a.account, b.account) ||
      KIND_ORDER[a.kind] - KIND_ORDER[b.kind] ||
      byteOrder(a.pool ?? '', b.pool ?? '') ||
      PERIOD_ORDER[a.period] - PERIOD_ORDER[b.period],
  );
  return { date, lines, cells: summaries, flags, shares: bases, ...(cells.some((c) => c.occupancy) ? { occupancy: partial } : {}) };
}

/**
 * What a division used (statements show it): all weights 0 means the equal split of
 * section 4 (one per member); prorated divisions (section 11) record the cell's length.
 */
function basisOf(kind: 'common' | 'loss', pool: string | undefined, period: Period, wh: number, d: Division, occupancy: CellOccupancy | undefined): ShareBasis {
  let total = 0n;
  for (const w of d.weights) total += BigInt(w);
  const weightTotal = total === 0n ? d.weights.length : Number(total);
  return {
    kind,
    ...(pool !== undefined ? { pool } : {}),
    period,
    wh,
    basis: d.basis,
    members: d.weights.length,
    weightTotal,
    ...(d.prorated && occupancy ? { cellS: occupancy.cellS } : {}),
  };
}
