import type { LocalDate } from './tou/local-date.ts';
import type { Period } from './tou/schedule.ts';

/**
 * The shapes the billing core hands to the CLI, workers and API (billing.md sections 2-6).
 * Energy is integer Wh, money integer fen (with the section-6 text beside it where the
 * output needs it), instants epoch milliseconds.
 */

export type QualityKind = 'conflict' | 'spike' | 'rollover' | 'reset' | 'gap' | 'incomplete' | 'negative_loss' | 'payment_conflict' | 'meter_change' | 'estimated';

/** Every data-quality flag kind (the API lists them as events). */
export const QUALITY_KINDS: readonly QualityKind[] = ['conflict', 'spike', 'rollover', 'reset', 'gap', 'incomplete', 'negative_loss', 'payment_conflict', 'meter_change', 'estimated'];

/** A data-quality flag (billing.md sections 2, 4, 6). `meter` is "" for site-level flags. */
export interface QualityFlag {
  readonly meter: string;
  /** Epoch ms of the flag's instant. */
  readonly time: number;
  readonly kind: QualityKind;
  readonly detail: string;
  /** `gap` only: the later reading's instant (a gap is reported when [time, until) overlaps the range). */
  readonly until?: number;
}

/**
 * A meter's per-tariff forward-active registers as read, register number -> Wh (billing.md
 * section 1, `kwh_t1`..`kwh_t4`; DL/T 645 `00 01 0n 00`). Which period each holds is the
 * meter's mapping (core/site/tariff-mapping.ts).
 */
export type TariffRegisterWh = Readonly<Partial<Record<1 | 2 | 3 | 4, number>>>;

/** The register numbers a reading can carry. */
export const TARIFF_REGISTERS = [1, 2, 3, 4] as const;

/**
 * The tariff registers of those readings of one meter that carry any, sorted by time:
 * row i is the reading (time[i], wh[i]) with registers reg[4i .. 4i+3] (1..4; NaN = not
 * read). Kept beside the compact (time, wh) series, since only a gap's two ends use them
 * (billing.md section 2 rule 5).
 */
export interface TariffRows {
  readonly time: Float64Array;
  readonly wh: Float64Array;
  readonly reg: Float64Array;
}

/** Raw readings of one meter sorted by time (equal times adjacent), compact. */
export interface RawSeries {
  readonly time: Float64Array;
  readonly wh: Float64Array;
  /** Tariff registers of the readings that carry them (absent: none does). */
  readonly tariff?: TariffRows;
}

/**
 * The accepted readings of one meter after the counter rules of section 2. `delta[i]` is
 * the energy (Wh) of the interval (time[i-1], time[i]] spread linearly over it; delta[0]
 * is 0, and a reset baseline has delta 0 (no energy billed into it).
 */
export interface AcceptedSeries {
  readonly meter: string;
  readonly time: Float64Array;
  /** Register value as read (Wh); after a rollover it is the raw register, not a running total. */
  readonly wh: Float64Array;
  readonly delta: Float64Array;
  readonly flags: readonly QualityFlag[];
}

export type ChargeKind = 'own' | 'common' | 'loss';

/** One settlement charge (billing.md section 4): what the prepaid balance is debited with. */
export interface ChargeLine {
  readonly account: string;
  readonly kind: ChargeKind;
  /** Common lines: the pool. */
  readonly pool?: string;
  readonly period: Period;
  readonly wh: number;
  /** The account's own tariff price for the period that day, 6 decimals. */
  readonly price: string;
  /** round_half_up(kWh x price, 2), 2 decimals. */
  readonly amount: string;
  /** The same amount in integer fen. */
  readonly fen: number;
}

/** Site energy of one (day, period) cell (billing.md section 4). */
export interface CellSummary {
  readonly period: Period;
  readonly masterWh: number;
  readonly tenantWh: number;
  readonly commonWh: number;
  /** M - sum T - sum C; negative when tenants exceed the master. */
  readonly lossWh: number;
  readonly lossAllocatedWh: number;
  readonly lossAbnormalWh: number;
  /**
   * The part of tenantWh metered on vacant units (billing.md section 11: the landlord's),
   * present when the site names a landlord account.
   */
  readonly vacantWh?: number;
}

/** The settlement of one local day (billing.md section 4). */
export interface DaySettlement {
  readonly date: LocalDate;
  /** Sorted by account, kind, pool, period. Lines of 0 Wh are not created. */
  readonly lines: readonly ChargeLine[];
  /** One per period that occurs that day, in PERIODS order. */
  readonly cells: readonly CellSummary[];
  /** negative_loss flags of the day. */
  readonly flags: readonly QualityFlag[];
  /** How each pool's energy and the allocatable loss were divided, per period (statements show it). */
  readonly shares?: readonly ShareBasis[];
  /** Sites with move-ins or move-outs: accounts there for part of a cell only (section 11). */
  readonly occupancy?: readonly PartialOccupancy[];
}

/** One division of section 4 (a pool's energy or the allocatable loss in a day-period cell). */
export interface ShareBasis {
  readonly kind: 'common' | 'loss';
  /** Common divisions: the pool. */
  readonly pool?: string;
  readonly period: Period;
  /** Energy divided, Wh (C_k, or the allocatable loss). */
  readonly wh: number;
  /**
   * The weights used: the method's, `equal` when all weights were 0 (section 4 fallback),
   * `landlord` when no member was there during the cell (section 11 rule 3: all to it).
   */
  readonly basis: 'area' | 'consumption' | 'equal' | 'landlord';
  /** Number of accounts sharing. */
  readonly members: number;
  /** Sum of the weights used: area in 10^-4 m2, own energy in Wh, or one per member (x seconds when prorated). */
  readonly weightTotal: number;
  /**
   * Present when area and equal weights were prorated by occupancy (billing.md section 11
   * rule 3): the cell's length, s. Each weight is then x the seconds the account was there
   * (the cell's length unless DaySettlement.occupancy says less).
   */
  readonly cellS?: number;
}

/** An account that occupied only part of a day-period cell (billing.md section 11). */
export interface PartialOccupancy {
  readonly account: string;
  readonly period: Period;
  /** Seconds of the cell it occupied (less than the cell's length; 0 = not there). */
  readonly seconds: number;
}

/** Energy of one day-period cell as measured, the input of settlement. */
export interface CellEnergy {
  readonly date: LocalDate;
  readonly period: Period;
  /** Epoch ms of the cell's first instant (where a negative_loss flag goes). */
  readonly firstInstant: number;
  readonly masterWh: number;
  /** Own metered energy per account id (every account of the site present, 0 if none). */
  readonly tenantWh: ReadonlyMap<string, number>;
  /** Energy per pool id (every pool present). */
  readonly poolWh: ReadonlyMap<string, number>;
}

/** A bill line (billing.md section 6): JSON key order is the order below. */
export interface BillLine {
  readonly kind: ChargeKind;
  readonly pool?: string;
  readonly period: Period;
  readonly kwh: string;
  readonly price: string;
  readonly amount: string;
}

export interface AccountBill {
  readonly account: string;
  readonly lines: readonly BillLine[];
  readonly kwh: { readonly own: string; readonly common: string; readonly loss: string };
  readonly total_amount: string;
  readonly opening_balance: string;
  readonly payments: string;
  readonly closing_balance: string;
  /** Deposits held at the end of the range (billing.md section 11): only for accounts with deposit rows. */
  readonly deposit?: string;
}

export interface MasterSummary {
  readonly kwh: string;
  readonly tenant_kwh: string;
  readonly common_kwh: string;
  /** Sites with a landlord account (billing.md section 11): tenant_kwh metered on vacant units. */
  readonly vacant_kwh?: string;
  readonly loss_kwh: string;
  readonly loss_allocated_kwh: string;
  readonly loss_abnormal_kwh: string;
  readonly loss_rate: string;
}

export interface QualityEntry {
  readonly meter: string;
  /** RFC 3339 at the site's local offset. */
  readonly time: string;
  readonly kind: QualityKind;
  readonly detail: string;
}

/** The bill run (billing.md section 6), exactly the JSON `submeter bill` prints. */
export interface BillRun {
  readonly site: string;
  readonly from: LocalDate;
  readonly to: LocalDate;
  readonly currency: string;
  readonly accounts: readonly AccountBill[];
  readonly master: MasterSummary;
  readonly quality: readonly QualityEntry[];
}
