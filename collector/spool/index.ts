export { Spool, SpoolFullError } from './spool.ts';
export { SpoolLockedError } from './spool-lock.ts';
export type { SpoolOptions, SpoolStats, SpoolBatch, SpoolPosition } from './spool.ts';
export { Forwarder } from './forwarder.ts';
export type { ForwarderOptions, ForwarderStats } from './forwarder.ts';
