import { BillingInputError } from '../errors.ts';
import type { Site } from '../site/model.ts';
import type { LocalDate } from '../tou/local-date.ts';
import { PERIODS } from '../tou/schedule.ts';
import type { Period } from '../tou/schedule.ts';
import type { CellEnergy, CellSummary, ChargeKind, ChargeLine, DaySettlement, PartialOccupancy, QualityFlag, ShareBasis } from '../types.ts';
import { chargeFen, kwhText, moneyText, mulDivFloor, priceText } from '../units.ts';
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

/**
 * Receives each charge of a day as section 4 makes it (a line of more than 0 Wh): the
 * account's position in SiteIndex.accountIds, the kind, the pool's position in
 * SiteIndex.pools (-1 for own and loss), the period's position in PERIODS, its Wh and its fen
 * (round_half_up(kWh x price, 2) at the account's own price). The settlement builds charge
 * lines from them; the live figures only sum them (settleCells).
 */
export type ChargeSink = (account: number, kind: ChargeKind, pool: number, period: number, wh: number, fen: number) => void;

/** What a day's settlement says besides its charges. */
export interface DayOutcome {
  readonly cells: CellSummary[];
  readonly flags: QualityFlag[];
  readonly shares: ShareBasis[];
  readonly occupancy: PartialOccupancy[];
}

/**
 * billing.md section 4 for one local day, every charge handed to `sink` in the order it is
 * made (period by period: own, each pool, loss). The one implementation of the day's rules:
 * settleIndexed turns the charges into lines, the live figures (core/live) into sums.
 */
export function settleCells(idx: SiteIndex, date: LocalDate, cells: readonly IndexedCell[], sink: ChargeSink): DayOutcome {
  const summaries: CellSummary[] = [];
  const flags: QualityFlag[] = [];
  const bases: ShareBasis[] = [];
  const partial: PartialOccupancy[] = [];
  const ids = idx.accountIds;
  const allMembers = allMembersOf(idx);
  // The price once per (period, tariff) of the day, not per charge.
  const prices = PERIODS.map(() => new Map<string, number | null>());
  const charge = (account: number, kind: ChargeKind, pool: number, p: number, wh: number) => {
    if (wh === 0) return; // section 4: lines of 0 Wh are not created
    const tariff = idx.tariffOf[account];
    const ofPeriod = prices[p];
    let micro = ofPeriod.get(tariff);
    if (micro === undefined) {
      micro = idx.price(tariff, date, PERIODS[p]) ?? null;
      ofPeriod.set(tariff, micro);
    }
    if (micro === null) {
      throw new BillingInputError(`account ${ids[account]} has ${kwhText(wh)} kWh of ${PERIODS[p]} energy on ${date} but its tariff '${tariff}' has no version (or no ${PERIODS[p]} price) in force that day`);
    }
    sink(account, kind, pool, p, wh, chargeFen(wh, micro));
  };

  for (const cell of [...cells].sort((a, b) => PERIOD_ORDER[a.period] - PERIOD_ORDER[b.period])) {
    const p = cell.period;
    const pi = PERIOD_ORDER[p];
    const M = cell.masterWh;
    const occupancy = cell.occupancy;
    if (occupancy) occupancy.occupiedS.forEach((s, a) => s < occupancy.cellS && partial.push({ account: ids[a], period: p, seconds: s }));
    let T = 0;
    for (let i = 0; i < ids.length; i++) {
      T += cell.tenantWh[i];
      charge(i, 'own', -1, pi, cell.tenantWh[i]);
    }
    let C = 0;
    idx.pools.forEach((pool, k) => {
      const ck = cell.poolWh[k];
      C += ck;
      if (ck === 0 || pool.members.length === 0) return;
      const d = divideAmong(idx, pool.method, pool.members, cell.tenantWh, ck, occupancy);
      for (const [m, share] of d.shares) charge(m, 'common', k, pi, share);
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
        for (const [i, share] of d.shares) charge(i, 'loss', -1, pi, share);
        bases.push(basisOf('loss', undefined, p, allocated, d, occupancy));
      }
    }
    summaries.push({ period: p, masterWh: M, tenantWh: T, commonWh: C, lossWh: L, lossAllocatedWh: allocated, lossAbnormalWh: abnormal, ...(cell.vacantWh !== undefined ? { vacantWh: cell.vacantWh } : {}) });
  }
  return { cells: summaries, flags, shares: bases, occupancy: partial };
}

export function settleIndexed(idx: SiteIndex, date: LocalDate, cells: readonly IndexedCell[]): DaySettlement {
  const ids = idx.accountIds;
  // Each account's lines are gathered apart and put in the order of section 6 (account, kind,
  // pool, period) at the end: accountIds is in byte order and so is idx.pools, so the order
  // is each account's small list by a numeric key, with no sort of the day's thousands of
  // lines by text (which was most of a provisional settlement's time, issue 15).
  const byAccount: (ChargeLine[] | undefined)[] = new Array(ids.length);
  const keysOf: (number[] | undefined)[] = new Array(ids.length);
  const slots = idx.pools.length + 1;
  // Price texts once per (period, tariff).
  const priceTexts = PERIODS.map(() => new Map<string, string>());
  const outcome = settleCells(idx, date, cells, (account, kind, pool, p, wh, fen) => {
    const tariff = idx.tariffOf[account];
    let price = priceTexts[p].get(tariff);
    if (price === undefined) priceTexts[p].set(tariff, (price = priceText(idx.price(tariff, date, PERIODS[p])!)));
    const period = PERIODS[p];
    const line: ChargeLine =
      pool >= 0
        ? { account: ids[account], kind, pool: idx.pools[pool].id, period, wh, price, amount: moneyText(fen), fen }
        : { account: ids[account], kind, period, wh, price, amount: moneyText(fen), fen };
    const key = (KIND_ORDER[kind] * slots + pool + 1) * PERIODS.length + p;
    const list = byAccount[account];
    if (list) {
      list.push(line);
      keysOf[account]!.push(key);
    } else {
      byAccount[account] = [line];
      keysOf[account] = [key];
    }
  });
  const lines: ChargeLine[] = [];
  for (let a = 0; a < ids.length; a++) {
    const list = byAccount[a];
    if (!list) continue;
    const keys = keysOf[a]!;
    // Insertion sort: a handful of lines per account, generated period by period.
    for (let i = 1; i < list.length; i++) {
      const k = keys[i];
      const l = list[i];
      let j = i - 1;
      for (; j >= 0 && keys[j] > k; j--) {
        keys[j + 1] = keys[j];
        list[j + 1] = list[j];
      }
      keys[j + 1] = k;
      list[j + 1] = l;
    }
    for (const l of list) lines.push(l);
  }
  return { date, lines, cells: outcome.cells, flags: outcome.flags, shares: outcome.shares, ...(cells.some((c) => c.occupancy) ? { occupancy: outcome.occupancy } : {}) };
}

/** Every account position of a site, ascending (the loss is divided among all), one array per index. */
const allMembersCache = new WeakMap<SiteIndex, readonly number[]>();
function allMembersOf(idx: SiteIndex): readonly number[] {
  let m = allMembersCache.get(idx);
  if (!m) allMembersCache.set(idx, (m = idx.accountIds.map((_, i) => i)));
  return m;
}

/**
 * What a division used (statements show it): all weights 0 means the equal split of
 * section 4 (one per member); prorated divisions (section 11) record the cell's length.
 */
function basisOf(kind: 'common' | 'loss', pool: string | undefined, period: Period, wh: number, d: Division, occupancy: CellOccupancy | undefined): ShareBasis {
  // Number arithmetic while it stays exact (area and Wh weights of a site), BigInt beyond.
  let n = 0;
  let big = false;
  for (const w of d.weights) {
    if (typeof w !== 'number') {
      big = true;
      break;
    }
    n += w;
  }
  let weightTotal: number;
  if (!big && Number.isSafeInteger(n)) weightTotal = n === 0 ? d.weights.length : n;
  else {
    let total = 0n;
    for (const w of d.weights) total += BigInt(w);
    weightTotal = total === 0n ? d.weights.length : Number(total);
  }
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
