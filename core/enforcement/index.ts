/** Prepaid enforcement (issue 13): the pure policy of the relay cut-off (docs/enforcement.md). */
export { DEFAULT_ENFORCEMENT, DEFAULT_WINDOWS, policyFor } from './config.ts';
export type { AccountPolicy, EnforcementConfig, EnforcementMode, ProtectedWindow } from './config.ts';
export { protectedAt } from './windows.ts';
export type { WindowHit } from './windows.ts';
export { staleReasons } from './staleness.ts';
export type { FreshnessInput } from './staleness.ts';
export { commandBudget } from './rate-limit.ts';
export { decideRelay, nextWarning, restoreAmountFen } from './decide.ts';
export type { DecisionReason, DeferReason, ManualOverride, RelayDecision, RelayDecisionInput, Wanted, WarningLevel } from './decide.ts';
export { resolveEnforcement } from './resolve.ts';
