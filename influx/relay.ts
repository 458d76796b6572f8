import { Point } from '@influxdata/influxdb-client';
import { F, M, T } from './schema.ts';

/**
 * Line protocol of prepaid enforcement (issue 13): the per-account relay state the
 * Grafana relay panel and mismatch alert read, and the relay events (kinds relay_*) that
 * tenants and managers see in their alert lists.
 */

export interface RelayPointInput {
  readonly site: string;
  readonly account: string;
  readonly time: number;
  readonly wanted: 'open' | 'closed';
  /** Read-back of the account's relay meters; undefined while unknown. */
  readonly state?: 'open' | 'closed';
  readonly mismatch: boolean;
  readonly mode: string;
  readonly decision: string;
  readonly deferred?: string;
  readonly restoreFen: number;
  readonly warning: string;
  readonly pending: number;
}

export function relayLine(r: RelayPointInput): string {
  const p = new Point(M.relay)
    .tag(T.site, r.site)
    .tag(T.account, r.account)
    .intField(F.wanted, r.wanted === 'closed' ? 1 : 0)
    .intField(F.mismatch, r.mismatch ? 1 : 0)
    .stringField(F.mode, r.mode)
    .stringField(F.decision, r.decision)
    .stringField(F.deferred, r.deferred ?? '')
    .intField(F.restoreFen, r.restoreFen)
    .stringField(F.warning, r.warning)
    .intField(F.pending, r.pending);
  if (r.state !== undefined) p.intField(F.state, r.state === 'closed' ? 1 : 0);
  return p.timestamp(r.time).toLineProtocol()!;
}

/** Kinds of relay events, in the `event` measurement. */
export const RELAY_EVENT = {
  trip: 'relay_trip',
  close: 'relay_close',
  warning: 'relay_warning',
  finalWarning: 'relay_final_warning',
  refused: 'relay_refused',
  mismatch: 'relay_mismatch',
  unsupported: 'relay_unsupported',
  failed: 'relay_failed',
} as const;
export type RelayEventKind = (typeof RELAY_EVENT)[keyof typeof RELAY_EVENT];

/** An `event` line for a relay event; `value` is the balance in CNY when known (display). */
export function relayEventLine(e: { readonly site: string; readonly kind: RelayEventKind; readonly account: string; readonly meter?: string; readonly time: number; readonly detail: string; readonly balanceFen?: number }): string {
  const p = new Point(M.event).tag(T.site, e.site).tag(T.kind, e.kind).tag(T.account, e.account);
  if (e.meter) p.tag(T.meter, e.meter);
  p.stringField(F.detail, e.detail.slice(0, 500));
  if (e.balanceFen !== undefined) p.floatField(F.value, e.balanceFen / 100);
  return p.timestamp(e.time).toLineProtocol()!;
}
