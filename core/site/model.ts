import type { DayType, LocalDate } from '../tou/local-date.ts';
import type { Tariff } from '../tou/schedule.ts';
import type { EnforcementConfig } from '../enforcement/config.ts';
import type { MeterConnection, ModbusMapName } from './schema.ts';

export type { MeterConnection, ModbusMapName };
export type MeterRole = 'master' | 'tenant' | 'common';
export type ShareMethod = 'area' | 'consumption' | 'equal';

/** The validated site, in the shape the core computes with. Decimals are canonical text. */
export interface Site {
  readonly id: string;
  readonly name: string;
  /** IANA zone; schedules and settlement days are in its local wall-clock time. */
  readonly timezone: string;
  readonly currency: string;
  readonly holidays: ReadonlySet<LocalDate>;
  /** The first local day the site bills: `site.first_day`, else the earliest tariff effective_from (else the first supported date). */
  readonly firstDay: LocalDate;
  /** Whom tenants call (site.contact); shown on the tenant page. */
  readonly contact?: { readonly name?: string; readonly phone?: string; readonly email?: string };
  readonly meters: readonly Meter[];
  readonly accounts: readonly Account[];
  readonly pools: readonly Pool[];
  readonly loss: { readonly normalRate: string; readonly method: ShareMethod };
  readonly tariffs: readonly Tariff[];
  /** The utility's tariff for the master meter and the resale markup cap (reconciliation). */
  readonly utility?: { readonly tariff: string; readonly markupCap: string };
  /** The account that bears vacant units' energy (billing.md section 11). */
  readonly landlordAccount?: string;
  /** Prepaid enforcement policy (issue 13); absent on sites built by hand: DEFAULT_ENFORCEMENT. */
  readonly enforcement?: EnforcementConfig;
  /** Online top-up settings (docs/topup.md); absent: tenants cannot top up online. */
  readonly topup?: TopupConfig;
}

/** A meter replaced in place, or its CT swapped (billing.md section 11). */
export interface MeterChange {
  /** Epoch ms of the change. */
  readonly at: number;
  /** The old register at `at`, Wh (raw, before the multiplier). */
  readonly finalWh: number;
  /** The new register at `at`, Wh (raw). */
  readonly initialWh: number;
  /** The multiplier in force from `at` on (resolved: the previous one when the file gives none). */
  readonly multiplier: number;
  readonly serial?: string;
  /** The collector's new address: DL/T 645 12 digits, or a Modbus unit id. */
  readonly address?: string | number;
  /** final_kwh was not read off the old meter. */
  readonly estimated: boolean;
}

export type TopupProviderName = 'wechat' | 'alipay' | 'stripe';

/** The site file's `topup` block, in integer fen and milliseconds. */
export interface TopupConfig {
  readonly providers: readonly TopupProviderName[];
  readonly presetsFen: readonly number[];
  readonly minFen: number;
  readonly maxFen: number;
  readonly expiryMs: number;
  readonly queryAfterMs: number;
  /** HH:MM local. */
  readonly reconcileAt: string;
  readonly publicUrl?: string;
}

export interface Meter {
  readonly id: string;
  readonly name: string;
  readonly role: MeterRole;
  /**
   * Tenant meters with one listed occupant: that account. Billing never reads this alone:
   * who a meter's energy belongs to at an instant is `occupantAt` (core/tenancy), which
   * knows move-ins, move-outs and the landlord account.
   */
  readonly account?: string;
  /** Tenant meters: the listed occupants in file order (`account: X` is `[X]`). */
  readonly accounts?: readonly string[];
  /** CT ratio x PT ratio before the first change. @defaultValue 1 */
  readonly multiplier?: number;
  /** Replacements in place, sorted by `at`. @defaultValue [] */
  readonly changes?: readonly MeterChange[];
  /** Common meters: the pool they feed. */
  readonly pool?: string;
  /** max_kw as decimal text (billing.md section 2, spike rule). */
  readonly maxKw: string;
  /** max_kw in whole watts (max_kw has at most 3 decimals). */
  readonly maxW: number;
  /** register_modulus_kwh in Wh (rollover rule). */
  readonly registerModulusWh: number;
  /** max_gap in milliseconds (gap flag). */
  readonly maxGapMs: number;
  readonly pollIntervalMs: number;
  readonly connection?: MeterConnection;
  /** Load relay (issue 13): plaintext control, an ESAM-only meter (unsupported), or none. */
  readonly relay?: 'plain' | 'esam';
}

export interface Account {
  readonly id: string;
  readonly name: string;
  readonly areaM2: string;
  readonly tariff: string;
  /** Money, 2 decimals, as text. */
  readonly openingBalance: string;
  readonly lowBalance?: string;
  readonly lowBalanceHours?: number;
  /** Epoch ms of the move-in (occupancy starts); absent = always occupied before move_out. */
  readonly moveIn?: number;
  /** Epoch ms of the move-out (occupancy ends, exclusive); absent = still occupied. */
  readonly moveOut?: number;
  readonly contact?: { readonly email?: string; readonly webhook?: string };
}

export interface Pool {
  readonly id: string;
  readonly name: string;
  readonly method: ShareMethod;
  /** The accounts sharing the pool, sorted by id; all accounts when the file omits the list. */
  readonly accounts: readonly string[];
}

export type { DayType };
