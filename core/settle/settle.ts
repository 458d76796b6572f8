import { BillingInputError } from '../errors.ts';
import type { Site } from '../site/model.ts';
import type { LocalDate } from '../tou/local-date.ts';
import { PERIODS } from '../tou/schedule.ts';
import type { Period } from '../tou/schedule.ts';
import type { CellEnergy, CellSummary, ChargeKind, ChargeLine, DaySettlement, QualityFlag, ShareBasis } from '../types.ts';
import type { ShareMethod } from '../site/model.ts';
import { byteOrder, chargeFen, kwhText, moneyText, mulDivFloor, priceText } from '../units.ts';
import { largestRemainder } from './divide.ts';
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

function weightsFor(idx: SiteIndex, method: Site['loss']['method'], members: readonly number[], tenantWh: ArrayLike<number>): number[] {
  if (method === 'area') return members.map((m) => idx.area[m]);
  if (method === 'consumption') return members.map((m) => tenantWh[m]);
  return members.map(() => 1);
}

export function settleIndexed(idx: SiteIndex, date: LocalDate, cells: readonly IndexedCell[]): DaySettlement {
  const lines: ChargeLine[] = [];
  const summaries: CellSummary[] = [];
  const flags: QualityFlag[] = [];
  const bases: ShareBasis[] = [];
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
      const weights = weightsFor(idx, pool.method, pool.members, cell.tenantWh);
      const shares = largestRemainder(ck, weights, pool.members.map((m) => ids[m]));
      pool.members.forEach((m, j) => charge(m, 'common', pool.id, p, shares[j]));
      bases.push(basisOf('common', pool.id, p, ck, pool.method, weights));
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
        const weights = weightsFor(idx, idx.site.loss.method, allMembers, cell.tenantWh);
        const shares = largestRemainder(allocated, weights, ids);
        shares.forEach((s, i) => charge(i, 'loss', undefined, p, s));
        bases.push(basisOf('loss', undefined, p, allocated, idx.site.loss.method, weights));
      }
    }
    summaries.push({ period: p, masterWh: M, tenantWh: T, commonWh: C, lossWh: L, lossAllocatedWh: allocated, lossAbnormalWh: abnormal });
  }
  lines.sort(
    (a, b) =>
      byteOrder(a.account, b.account) ||
      KIND_ORDER[a.kind] - KIND_ORDER[b.kind] ||
      byteOrder(a.pool ?? '', b.pool ?? '') ||
      PERIOD_ORDER[a.period] - PERIOD_ORDER[b.period],
  );
  return { date, lines, cells: summaries, flags, shares: bases };
}

/** What a division used (statements show it): all weights 0 means the equal split of section 4. */
function basisOf(kind: 'common' | 'loss', pool: string | undefined, period: Period, wh: number, method: ShareMethod, weights: readonly number[]): ShareBasis {
  const total = weights.reduce((a, w) => a + w, 0);
  return { kind, ...(pool !== undefined ? { pool } : {}), period, wh, basis: total === 0 ? 'equal' : method, members: weights.length, weightTotal: total === 0 ? weights.length : total };
}
