import { Point } from '@influxdata/influxdb-client';
import { F, M, T } from './schema.ts';

/**
 * `event` lines (alerts and data-quality flags) and the workers' own `worker` state. An
 * event's time comes from the data (a flag's instant, an outage start + max_gap, a day's
 * midnight), so writing it again overwrites the same point.
 */
export interface EventPoint {
  readonly kind: string;
  readonly time: number;
  readonly detail: string;
  readonly account?: string;
  readonly meter?: string;
  /** A payment's reference (top-up conflicts and alarms: the provider's transaction). */
  readonly reference?: string;
  readonly value?: number;
}

export function eventLine(site: string, e: EventPoint): string {
  const p = new Point(M.event).tag(T.site, site).tag(T.kind, e.kind);
  if (e.account) p.tag(T.account, e.account);
  if (e.meter) p.tag(T.meter, e.meter);
  if (e.reference) p.tag(T.reference, e.reference);
  p.stringField(F.detail, e.detail);
  if (e.value !== undefined) p.floatField(F.value, e.value);
  return p.timestamp(e.time).toLineProtocol()!;
}

export interface WorkerPoint {
  readonly queue: string;
  readonly time: number;
  readonly lagMs?: number;
  readonly waiting?: number;
  readonly failed?: number;
}

export function workerLine(site: string, w: WorkerPoint): string {
  const p = new Point(M.worker).tag(T.site, site).tag(T.queue, w.queue);
  if (w.lagMs !== undefined) p.intField(F.lagMs, w.lagMs);
  if (w.waiting !== undefined) p.intField(F.waiting, w.waiting);
  if (w.failed !== undefined) p.intField(F.failed, w.failed);
  return p.timestamp(w.time).toLineProtocol()!;
}
