/**
 * The billing core's public surface (billing.md). Pure: no I/O, no clock. The CLI,
 * collector (`submeter import`), workers and API import from here.
 */
export * from './types.ts';
export { BillingInputError } from './errors.ts';
export { Dec, decimalFrom } from './decimal.ts';
export * from './units.ts';

export { parseSiteYaml, SiteFileError, MODBUS_MAPS } from './site/index.ts';
export type { Site, Meter, Account, Pool, MeterRole, ShareMethod, SiteIssue, MeterConnection, ModbusMapName } from './site/index.ts';

export { FIRST_DATE, LAST_DATE, FIRST_YEAR, LAST_YEAR, DATE_RANGE_TEXT, FIRST_INSTANT_MS, END_INSTANT_MS, dateProblem, isSupportedDate, monthProblem, instantProblem, dateRangeProblem } from './date-range.ts';
export { addDays, epochDay, fromEpochDay, isLocalDate, dayTypeOf, weekdayOf } from './tou/local-date.ts';
export type { LocalDate, DayType } from './tou/local-date.ts';
export { PERIODS, versionIndexOn, scheduleEntryOn } from './tou/schedule.ts';
export type { Period, PeriodSpan, Tariff, TariffVersion, ScheduleEntry } from './tou/schedule.ts';
export { Zone, zoneOf } from './tou/zone.ts';
export { buildCalendar, layoutOn, datesBetween, PERIOD_INDEX } from './tou/calendar.ts';
export type { TouCalendar } from './tou/calendar.ts';
export { minuteOfDay, dateOfDayBucket, periodAt, priceOn, priceAt } from './tou/instant.ts';

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
export type { MeterRowsData } from './readings/store.ts';
export { ReadingsScanner } from './readings/scan.ts';
export { READING_TARIFF_COLUMNS } from './readings/csv.ts';
export { registersAt } from './readings/tariff-rows.ts';
export { DEFAULT_TARIFF_MAPPING, periodsByRegister, tariffMappingOf } from './site/tariff-mapping.ts';
export type { TariffMapping } from './site/tariff-mapping.ts';

export { acceptReadings, overPower } from './counters/accept.ts';
export { spansCells } from './counters/gap-cells.ts';
export { spreadByRegisters, REGISTER_RESOLUTION_WH } from './counters/register-spread.ts';
export type { SpreadSeries } from './counters/register-spread.ts';
export { counterState, resumeSeries } from './counters/resume.ts';
export type { CounterState, StateReading } from './counters/resume.ts';
export { rollupStep, bucketCalendars, segmentStart, BUCKET_MINUTES } from './counters/rollup-step.ts';
export type { RollupStep } from './counters/rollup-step.ts';
export { splitSeries, touBuckets, energyAt } from './split/split.ts';
export type { TouBucket } from './split/split.ts';

export { largestRemainder } from './settle/divide.ts';
export { settleDay } from './settle/settle.ts';
export { siteIndex } from './settle/site-index.ts';
export { meterTargets, siteCuts, spanAt, occupancyPieces, CellSums } from './settle/attribution.ts';
export type { MeterTarget, TenantSpan } from './settle/attribution.ts';
export { bucketSettlementProblem, settleDayMixed, moveMarks, COUNTER_FLAG_KINDS } from './settle/bucket-day.ts';
export type { BucketEvidence, BucketMeterDay, MixedDayInput, MixedDay } from './settle/bucket-day.ts';
export type { SiteIndex } from './settle/site-index.ts';

export { dedupePayments, paymentContent } from './bill/payments.ts';
export { paymentTimeProblem, PAYMENT_FUTURE_TOLERANCE_MS } from './bill/payment-time.ts';
export type { PaymentSet } from './bill/payments.ts';
export { computeBillRun, settleRange, billFromSettlement, storeReadings, meterIndex, billRunJson, billRunCsv, qualityEntries } from './bill/run.ts';
export type { ReadingSource, RangeSettlement, SettleRangeOptions } from './bill/run.ts';
export { accountBill, masterSummary, lossRate, compareLines } from './bill/assemble.ts';
export type { ChargeInput } from './bill/assemble.ts';

export { liveBalanceFen, hoursToZero, hoursText, liveStatus, costPerHour, hourAtLastPower, checkLowBalance, INITIAL_ALERT_STATE } from './live/balance.ts';
export type { LastInterval, AlertState, AlertCheck, AlertDecision } from './live/balance.ts';
export { settleMeterEnergy, chargesByAccount, dayChargesOf } from './live/provisional.ts';
export type { MeterEnergy, DayCharges } from './live/provisional.ts';
export { liveFigures, provisionalSettlements } from './live/figures.ts';
export { liveInputsFromReadings } from './live/offline.ts';
export type { LiveInputs, LiveFigures, AccountLive, DayEnergy } from './live/figures.ts';
export { computeAdvice, adviceFromTotals, shiftShareOf, isNight, nightMs, DEFAULT_SHIFT_SHARE, NIGHT_HOURS } from './advice/advise.ts';
export type { Advice, AccountAdvice, AdviceOptions, AdviceTotals } from './advice/advise.ts';
export { meterDayFacts } from './statement/meter-facts.ts';
export type { MeterDayFacts, RegisterAt } from './statement/meter-facts.ts';
export { reconcile } from './reconcile/reconcile.ts';
export { utilityCellFen } from './reconcile/utility-charge.ts';
export type { Reconciliation } from './reconcile/reconcile.ts';
export { verifiableStatement, statementNumber } from './statement/statement.ts';
export type { StatementFacts, StatementCharge, VerifiableStatement, StatementLine, StatementMeter, StatementMeterChange, StatementPool, StatementLoss, StatementShare, ShareCell, FinalBlock } from './statement/statement.ts';

// Tenancy and meter changes (billing.md section 11).
export type { MeterChange } from './site/model.ts';
export { PAYMENT_KINDS, paymentKindProblem } from './readings/csv.ts';
export type { PaymentKind } from './readings/csv.ts';
export { acceptMeterSeries, multiplierAt } from './counters/meter-changes.ts';
export { cutCalendar } from './tenancy/cuts.ts';
export { meterTimeline, occupantAt, occupancyOf, occupiesAt, tenancyCuts, metersOf, metersOccupiedBy, uncovered } from './tenancy/occupancy.ts';
export type { OccupancySpan } from './tenancy/occupancy.ts';
export { finalStatement, finalStatementRange, computeFinalStatement, finalStatementJson } from './tenancy/final-statement.ts';
export type { FinalStatement, LedgerEntry } from './tenancy/final-statement.ts';
export { diffSites, daysToResettle, describeChanges } from './site/diff.ts';
export type { SiteChange, SiteDiff } from './site/diff.ts';

export {
  DEFAULT_ENFORCEMENT,
  DEFAULT_WINDOWS,
  policyFor,
  protectedAt,
  staleReasons,
  commandBudget,
  decideRelay,
  nextWarning,
  restoreAmountFen,
} from './enforcement/index.ts';
export type {
  AccountPolicy,
  EnforcementConfig,
  EnforcementMode,
  ProtectedWindow,
  WindowHit,
  FreshnessInput,
  DecisionReason,
  DeferReason,
  ManualOverride,
  RelayDecision,
  RelayDecisionInput,
  Wanted,
  WarningLevel,
} from './enforcement/index.ts';
export * from './topup/index.ts';
export type { TopupConfig, TopupProviderName } from './site/index.ts';
