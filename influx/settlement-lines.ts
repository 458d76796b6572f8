import { Point } from '@influxdata/influxdb-client';
import { F, M, T } from './schema.ts';

/**
 * What the settlement writes (billing.md section 4, workers/settlement.ts): charge lines
 * by revision, the site's day-period cells, and the facts a verifiable statement shows
 * (issue 10). Every point is keyed by its tags and the day's local midnight, so a re-run
 * overwrites (charges are revisions: a new revision is a new tag set).
 */

export interface ChargePoint {
  readonly account: string;
  readonly kind: string;
  readonly pool?: string;
  readonly period: string;
  readonly rev: number;
  readonly wh: number;
  readonly fen: number;
  /** Decimal text, 6 places. */
  readonly price: string;
  /** Adjustments: why a settled day changed. */
  readonly reason?: string;
}

export function chargeLine(site: string, day: number, c: ChargePoint): string {
  const p = new Point(M.charge).tag(T.site, site).tag(T.account, c.account).tag(T.kind, c.kind);
  if (c.pool) p.tag(T.pool, c.pool);
  p.tag(T.period, c.period).tag(T.rev, String(c.rev)).intField(F.wh, c.wh).intField(F.fen, c.fen).stringField(F.price, c.price);
  if (c.reason) p.stringField(F.reason, c.reason);
  return p.timestamp(day).toLineProtocol()!;
}

export interface SiteDayPoint {
  readonly period: string;
  readonly masterWh: number;
  readonly tenantWh: number;
  readonly commonWh: number;
  readonly lossWh: number;
  readonly lossAllocatedWh: number;
  readonly lossAbnormalWh: number;
  /** Sites with a landlord account: tenant energy of vacant units (billing.md section 11). */
  readonly vacantWh?: number;
  /** What the utility charges for the cell's master energy, fen (billing.md section 8; Grafana's recovery panel). */
  readonly utilityFen?: number;
}

/** @param normalRate the site's loss.normal_rate as decimal text; written as a float for Grafana's cap line (display only). */
export function siteDayLine(site: string, day: number, c: SiteDayPoint, normalRate: string): string {
  const p = new Point(M.siteDay)
    .tag(T.site, site)
    .tag(T.period, c.period)
    .intField(F.masterWh, c.masterWh)
    .intField(F.tenantWh, c.tenantWh)
    .intField(F.commonWh, c.commonWh)
    .intField(F.lossWh, c.lossWh)
    .intField(F.lossAllocatedWh, c.lossAllocatedWh)
    .intField(F.lossAbnormalWh, c.lossAbnormalWh)
    .floatField(F.lossNormalRate, Number(normalRate));
  if (c.vacantWh !== undefined) p.intField(F.vacantWh, c.vacantWh);
  if (c.utilityFen !== undefined) p.intField(F.utilityFen, c.utilityFen);
  return p.timestamp(day).toLineProtocol()!;
}

export interface MeterDayPoint {
  readonly meter: string;
  readonly startWh?: number;
  readonly startMs?: number;
  readonly startEstimated?: boolean;
  readonly endWh?: number;
  readonly endMs?: number;
  readonly endEstimated?: boolean;
  readonly wh: number;
}

export function meterDayLine(site: string, day: number, m: MeterDayPoint): string {
  const p = new Point(M.meterDay).tag(T.site, site).tag(T.meter, m.meter).intField(F.wh, m.wh);
  if (m.startWh !== undefined && m.startMs !== undefined) p.intField(F.startWh, m.startWh).intField(F.startMs, m.startMs).booleanField(F.startEstimated, m.startEstimated === true);
  if (m.endWh !== undefined && m.endMs !== undefined) p.intField(F.endWh, m.endWh).intField(F.endMs, m.endMs).booleanField(F.endEstimated, m.endEstimated === true);
  return p.timestamp(day).toLineProtocol()!;
}

/**
 * A tenant meter's register at a move-in or move-out inside a settled day (billing.md
 * section 11), time = that instant: the register (raw Wh), whether it was interpolated
 * across a gap, and the meter's energy of the day before it (primary Wh).
 */
export function meterMarkLine(site: string, m: { meter: string; ms: number; wh: number; estimated: boolean; whBefore: number }): string {
  return new Point(M.meterMark).tag(T.site, site).tag(T.meter, m.meter).intField(F.registerWh, m.wh).booleanField(F.estimated, m.estimated).intField(F.whBefore, m.whBefore).timestamp(m.ms).toLineProtocol()!;
}

export function meterCellLine(site: string, day: number, c: { meter: string; period: string; wh: number; gapWh: number }): string {
  return new Point(M.meterCell).tag(T.site, site).tag(T.meter, c.meter).tag(T.period, c.period).intField(F.wh, c.wh).intField(F.gapWh, c.gapWh).timestamp(day).toLineProtocol()!;
}

export interface ShareBasisPoint {
  readonly kind: 'common' | 'loss';
  readonly pool?: string;
  readonly period: string;
  readonly wh: number;
  readonly basis: string;
  readonly members: number;
  readonly weightTotal: number;
  /** Prorated divisions (billing.md section 11): the cell's length, s. */
  readonly cellS?: number;
}

export function shareBasisLine(site: string, day: number, b: ShareBasisPoint): string {
  const p = new Point(M.shareBasis).tag(T.site, site).tag(T.kind, b.kind);
  if (b.pool) p.tag(T.pool, b.pool);
  p.tag(T.period, b.period).intField(F.wh, b.wh).stringField(F.basis, b.basis).intField(F.members, b.members).intField(F.weightTotal, b.weightTotal);
  if (b.cellS !== undefined) p.intField(F.cellS, b.cellS);
  return p.timestamp(day).toLineProtocol()!;
}

/** An account there for part of a settled day-period cell (billing.md section 11): the seconds it occupied. */
export function accountCellLine(site: string, day: number, o: { account: string; period: string; seconds: number }): string {
  return new Point(M.accountCell).tag(T.site, site).tag(T.account, o.account).tag(T.period, o.period).intField(F.occupiedS, o.seconds).timestamp(day).toLineProtocol()!;
}

export function accountDayLine(site: string, day: number, a: { account: string; areaWeight: number; pools: readonly string[] }): string {
  return new Point(M.accountDay).tag(T.site, site).tag(T.account, a.account).intField(F.areaWeight, a.areaWeight).stringField(F.pools, a.pools.join(',')).timestamp(day).toLineProtocol()!;
}
