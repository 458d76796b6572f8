import type { DayType } from '../tou/local-date.ts';

/**
 * The prepaid cut-off policy of a site, resolved from the site file's `enforcement` block
 * with its defaults (docs/enforcement.md). Money in integer fen, durations in ms, times of
 * day in minutes after local midnight.
 */

export type EnforcementMode = 'off' | 'dry-run' | 'on';

/** A time when no trip is sent. `to <= from` ends on the next day (a night). */
export interface ProtectedWindow {
  readonly name: string;
  /** Matching local dates: their weekday, or `holiday` for the site's holidays. */
  readonly days: readonly DayType[];
  /** Minutes after local midnight, 0..1439. */
  readonly from: number;
  /** Minutes after local midnight, 1..1440; at or before `from`: on the next day. */
  readonly to: number;
}

/** What one account is held to: the site's policy with the account's overrides applied. */
export interface AccountPolicy {
  readonly mode: EnforcementMode;
  /** Trip when balance + grace <= 0 (fen, >= 0). */
  readonly graceFen: number;
  /** Reconnect when balance > this (fen); never below -grace, so the relay cannot flap. */
  readonly reconnectAboveFen: number;
  readonly warnHours: number;
  readonly finalWarningHours: number;
  readonly windows: readonly ProtectedWindow[];
  readonly close: 'now' | 'permit';
  /** 保电: never tripped. */
  readonly protected: boolean;
}

export interface EnforcementConfig {
  /** The site-wide policy (mode, grace, windows, ...). */
  readonly site: Omit<AccountPolicy, 'protected'>;
  readonly accounts: Readonly<Record<string, Partial<AccountPolicy>>>;
  readonly maxDataAgeMs: number;
  readonly maxSpoolSamples: number;
  readonly commandsPerMinute: number;
  readonly readbackMs: number;
  readonly commandValidityMs: number;
}

const ALL_DAYS: readonly DayType[] = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun', 'holiday'];

/**
 * No trip at night (18:00-08:00), at weekends or on the site's holidays: a cut should happen
 * when the tenant and the property's staff can act on it (the practice of State Grid's
 * remote fee control, which forbids remote trips outside working hours and on holidays).
 */
export const DEFAULT_WINDOWS: readonly ProtectedWindow[] = [
  { name: 'nights', days: ALL_DAYS, from: 18 * 60, to: 8 * 60 },
  { name: 'weekends', days: ['sat', 'sun'], from: 0, to: 1440 },
  { name: 'holidays', days: ['holiday'], from: 0, to: 1440 },
];

export const DEFAULT_ENFORCEMENT: EnforcementConfig = {
  site: {
    // A new site decides and logs but sends nothing until someone switches it on.
    mode: 'dry-run',
    graceFen: 0,
    reconnectAboveFen: 0,
    warnHours: 24,
    finalWarningHours: 2,
    windows: DEFAULT_WINDOWS,
    close: 'now',
  },
  accounts: {},
  maxDataAgeMs: 15 * 60_000,
  maxSpoolSamples: 10_000,
  commandsPerMinute: 6,
  readbackMs: 60_000,
  commandValidityMs: 5 * 60_000,
};

/** The policy one account is held to. */
export function policyFor(config: EnforcementConfig, account: string): AccountPolicy {
  const o = config.accounts[account] ?? {};
  return { ...config.site, protected: false, ...o };
}

export { ALL_DAYS };
