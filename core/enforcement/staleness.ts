/**
 * "No trip on stale data": a trip needs a fresh picture of the account. Any reason
 * returned here blocks a trip (never a reconnect: a payment is in the ledger whatever the
 * meters do, and keeping power on is the safe side).
 */

export interface FreshnessInput {
  readonly now: number;
  readonly maxAgeMs: number;
  readonly maxSpoolSamples: number;
  /** Time of the account's last balance point (the balance worker's output), if any. */
  readonly balanceTime?: number;
  /** The account's meters: last successful read and failures in a row (meter_health). */
  readonly meters: readonly { readonly id: string; readonly lastSeen?: number; readonly consecutiveErrors?: number }[];
  /** The collector's last state line, if any. */
  readonly collector?: { readonly time: number; readonly spoolSamples: number; readonly spoolFull: boolean };
}

/** Why the data is too old to trip on; empty when it is fresh. English, for the audit log. */
export function staleReasons(f: FreshnessInput): string[] {
  const out: string[] = [];
  const age = (t: number) => `${Math.round((f.now - t) / 60_000)} min old`;
  if (f.balanceTime === undefined) out.push('no balance computed yet');
  else if (f.now - f.balanceTime > f.maxAgeMs) out.push(`balance is ${age(f.balanceTime)}`);
  for (const m of f.meters) {
    if (m.lastSeen === undefined) out.push(`meter ${m.id} never read`);
    else if (f.now - m.lastSeen > f.maxAgeMs) out.push(`meter ${m.id} last read ${age(m.lastSeen)}`);
    else if ((m.consecutiveErrors ?? 0) > 0) out.push(`meter ${m.id} failing (${m.consecutiveErrors} errors in a row)`);
  }
  if (!f.collector) out.push('no collector state');
  else {
    if (f.now - f.collector.time > f.maxAgeMs) out.push(`collector silent (last state ${age(f.collector.time)})`);
    if (f.collector.spoolFull) out.push('collector spool full');
    else if (f.collector.spoolSamples > f.maxSpoolSamples) out.push(`collector spool backing up (${f.collector.spoolSamples} samples waiting)`);
  }
  return out;
}
