/** The workers' public surface: the demo, the API and the CLI import from here. */
// Durable state for `submeter backup` registers itself (lib/backup/registry.ts).
import './backup-sections.ts';
export { startWorkers } from './start.ts';
export type { StartWorkersOptions, RunningWorkers } from './start.ts';
export { recordPayment, loadPayments, PaymentRejectedError } from './payments.ts';
export type { PaymentInput, RecordedPayment, PaymentDeps, LedgerPayment } from './payments.ts';
export { QUEUE, DEFAULTS, upsertSchedulers, openQueues, closeQueues, requestResettlement } from './queues.ts';
export type { ScheduleOptions, QueueName } from './queues.ts';
export { liveBill } from './statement.ts';
export { createNotifier } from './notifier.ts';
export type { NotifierOptions, SmtpOptions } from './notifier.ts';
