/**
 * The billing core's public surface (billing.md). Pure: no I/O, no clock. The CLI,
 * collector (`submeter import`), workers and API import from here.
 */
export * from './types.ts';
export { BillingInputError } from './errors.ts';
export { Dec, decimalFrom } from './decimal.ts';
export * from './units.ts';

export { parseSiteYaml, SiteFileError } from './site/index.ts';
export type { Site, Meter, Account, Pool, MeterRole, ShareMethod, SiteIssue } from './site/index.ts';

export { addDays, epochDay, fromEpochDay, isLocalDate, dayTypeOf, weekdayOf } from './tou/local-date.ts';
export type { LocalDate, DayType } from './tou/local-date.ts';
export { PERIODS, versionIndexOn, scheduleEntryOn } from './tou/schedule.ts';
export type { Period, PeriodSpan, Tariff, TariffVersion, ScheduleEntry } from './tou/schedule.ts';
export { Zone, zoneOf } from './tou/zone.ts';
export { buildCalendar, layoutOn, datesBetween, PERIOD_INDEX } from './tou/calendar.ts';
export type { TouCalendar } from './tou/calendar.ts';

export {
  READING_COLUMNS,
  PAYMENT_COLUMNS,
  splitCsvLine,
  parseReadingsHeader,
  parsePaymentsHeader,
  parseReadingLine,
  parsePaymentLine,
  kwhToWh,
} from './readings/csv.ts';
export type { ReadingRow, PaymentRow, CsvFieldError, CsvResult, CsvHeader } from './readings/csv.ts';
export { parseRfc3339, daysFromCivil } from './readings/rfc3339.ts';
export { ReadingStore, sortSeries } from './readings/store.ts';
export { ReadingsScanner } from './readings/scan.ts';

export { acceptReadings, overPower } from './counters/accept.ts';
export { billableFlags, spansCells } from './counters/gap-cells.ts';
export { splitSeries, touBuckets, energyAt } from './split/split.ts';
export type { TouBucket } from './split/split.ts';

export { largestRemainder } from './settle/divide.ts';
export { settleDay } from './settle/settle.ts';
export { siteIndex } from './settle/site-index.ts';
export type { SiteIndex } from './settle/site-index.ts';

export { dedupePayments } from './bill/payments.ts';
export type { PaymentSet } from './bill/payments.ts';
export { computeBillRun, settleRange, billFromSettlement, storeReadings, meterIndex, billRunJson, billRunCsv, qualityEntries } from './bill/run.ts';
export type { ReadingSource, RangeSettlement, SettleRangeOptions } from './bill/run.ts';

export { liveBalance, costRate, hoursToZero, checkLowBalance, INITIAL_ALERT_STATE } from './live/balance.ts';
export type { LiveBalance, UnsettledEnergy, AlertState, AlertCheck, AlertDecision } from './live/balance.ts';
export { computeAdvice } from './advice/advise.ts';
export type { Advice, AccountAdvice, AdviceOptions } from './advice/advise.ts';
export { reconcile } from './reconcile/reconcile.ts';
export { utilityCellFen } from './reconcile/utility-charge.ts';
export type { Reconciliation } from './reconcile/reconcile.ts';
