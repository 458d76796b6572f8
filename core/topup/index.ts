export { checkTopupAmount, judgePayment, refundable, paymentReference, refundReference, ORDER_STATES } from './rules.ts';
export type { OrderState, OrderFacts, PaymentNotice, PaymentVerdict, ConflictCode } from './rules.ts';
export { reconcileStatement } from './statement.ts';
export type { StatementRow, LedgerLine, MismatchType, ReconcileItem, ReconcileInput, ReconcileResult, ReconcileCredit } from './statement.ts';
