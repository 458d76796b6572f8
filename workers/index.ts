/** The workers' public surface: the demo, the API and the CLI import from here. */
// Durable state for `submeter backup` registers itself (lib/backup/registry.ts).
import './backup-sections.ts';
export { startWorkers } from './start.ts';
export type { StartWorkersOptions, RunningWorkers } from './start.ts';
export { recordPayment, loadPayments, PaymentRejectedError } from './payments.ts';
export type { PaymentInput, RecordedPayment, PaymentDeps, LedgerPayment } from './payments.ts';
export { QUEUE, DEFAULTS, upsertSchedulers, openQueues, closeQueues, queuePrefix } from './queues.ts';
export { requestResettlement, requestResettlements, requestSiteSettlement, pendingSettlements } from './settle-requests.ts';
export type { SettleRequestTarget, SettleRequest } from './settle-requests.ts';
export type { ScheduleOptions, QueueName } from './queues.ts';
export { liveBill } from './statement.ts';
export { redisKeys } from './keys.ts';
export { readLiveEntry, readLiveSnapshot } from './live-snapshot.ts';
export type { LiveSnapshot, LiveEntry } from './live-snapshot.ts';
export { createNotifier } from './notifier.ts';
export type { NotifierOptions, SmtpOptions } from './notifier.ts';
export { siteReloadChannel, applyFile } from './site-reload.ts';
export type { ReloadResult, SiteReloader } from './site-reload.ts';
export type { PaymentKind } from '../core/index.ts';
export { loadLiveFigures, loadLiveInputs } from './live-figures.ts';
export type { LiveSource, LoadedLive } from './live-figures.ts';
export { processEnforcement, busOf } from './enforcement.ts';
export type { EnforcementResult } from './enforcement.ts';
export { RELAY_QUEUE, RelayJob, RELAY_JOB_OPTS, relayJobId, relayQueuePrefix, openRelayQueue, parsePayload, UnrecoverableError } from './queues.ts';
export { TopupService, TopupError } from './topup/service.ts';
export type { TopupServiceOptions, PaymentOutcome, ReconcileReport, ReconcileReportItem } from './topup/service.ts';
export type { TopupOrder, RefundRecord } from './topup/order-store.ts';
export { topupKeys } from './topup/order-store.ts';
