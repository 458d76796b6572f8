export { Spool, SpoolFullError } from './spool.ts';
export type { SpoolOptions, SpoolStats, SpoolBatch, SpoolPosition } from './spool.ts';
export { Forwarder } from './forwarder.ts';
export type { ForwarderOptions, ForwarderStats } from './forwarder.ts';
