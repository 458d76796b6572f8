/** The workers' public surface: the demo, the API and the CLI import from here. */
export { startWorkers } from './start.ts';
export type { StartWorkersOptions, RunningWorkers } from './start.ts';
export { recordPayment, loadPayments, PaymentRejectedError } from './payments.ts';
export type { PaymentInput, RecordedPayment, PaymentDeps, LedgerPayment } from './payments.ts';
export { QUEUE, DEFAULTS, upsertSchedulers, openQueues, closeQueues, queuePrefix } from './queues.ts';
export { requestResettlement, requestResettlements, requestSiteSettlement, pendingSettlements } from './settle-requests.ts';
export type { SettleRequestTarget, SettleRequest } from './settle-requests.ts';
export type { ScheduleOptions, QueueName } from './queues.ts';
export { liveBill } from './statement.ts';
export { createNotifier } from './notifier.ts';
export type { NotifierOptions, SmtpOptions } from './notifier.ts';
