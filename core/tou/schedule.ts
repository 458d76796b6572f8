import type { DayType, LocalDate } from './local-date.ts';
import { dayTypeOf, monthOf } from './local-date.ts';

export const PERIODS = ['sharp', 'peak', 'flat', 'valley', 'deep_valley'] as const;
export type Period = (typeof PERIODS)[number];

/** A period of a day as minutes after local midnight, [from, to). */
export interface PeriodSpan {
  readonly from: number;
  readonly to: number;
  readonly period: Period;
}

export interface ScheduleEntry {
  /** Months 1..12 this entry selects (all when the site file omits `months`). */
  readonly months: readonly number[];
  /** Day types this entry selects (all when the site file omits `days`). */
  readonly days: readonly DayType[];
  /** Sorted by `from`, covering 0..1440 minutes without gap or overlap. */
  readonly periods: readonly PeriodSpan[];
}

export interface TariffVersion {
  readonly effectiveFrom: LocalDate;
  /** Price per period, decimal CNY/kWh as text with up to 6 decimals. */
  readonly prices: Readonly<Partial<Record<Period, string>>>;
  readonly schedule: readonly ScheduleEntry[];
}

export interface Tariff {
  readonly id: string;
  /** Sorted by effectiveFrom, ascending, no two on one date. */
  readonly versions: readonly TariffVersion[];
}

/** Index of the version in force on a local date (applies from its local midnight), or -1 before the first. */
export function versionIndexOn(tariff: Tariff, date: LocalDate): number {
  let found = -1;
  for (let i = 0; i < tariff.versions.length; i++) {
    if (tariff.versions[i].effectiveFrom <= date) found = i;
    else break;
  }
  return found;
}

/** billing.md section 1: the first schedule entry that matches the local date applies. */
export function scheduleEntryOn(version: TariffVersion, date: LocalDate, holidays: ReadonlySet<string>): ScheduleEntry | undefined {
  const month = monthOf(date);
  const dayType = dayTypeOf(date, holidays);
  return version.schedule.find((e) => e.months.includes(month) && e.days.includes(dayType));
}

/** Text key of a day's period layout, to compare tariffs (billing.md section 1: periods are site-wide). */
export function layoutKey(entry: ScheduleEntry): string {
  return entry.periods.map((p) => `${p.from}-${p.to}:${p.period}`).join(',');
}

export function minutesToHhmm(minutes: number): string {
  return `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
}
