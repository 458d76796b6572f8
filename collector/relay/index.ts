/**
 * Relay control (issue 13): one driver per meter over its own protocol, the secrets the
 * DL/T 645 commands need, and (relay-executor.ts) the collector's executor of the
 * workers' relay jobs.
 */
export { createRelayDriver, relayUnsupported } from './driver.ts';
export type { RelayDriver, RelayCommand, RelayReadback, CommandOutcome, RelayResources } from './driver.ts';
export { loadRelaySecrets, RelaySecretsError } from './secrets.ts';
export type { RelaySecrets } from './secrets.ts';
