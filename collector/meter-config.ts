import type { Meter, MeterConnection } from '../core/index.ts';

/**
 * A meter as the collector must read it at an instant (billing.md section 11): after a
 * replacement in place the position is read at the new meter's address (DL/T 645) or unit
 * id (Modbus) that the change names; the rest of the connection stays.
 */
export function effectiveConnection(meter: Meter, t: number): MeterConnection | undefined {
  const conn = meter.connection;
  if (!conn) return undefined;
  let address: string | number | undefined;
  for (const c of meter.changes ?? []) {
    if (c.at > t) break;
    if (c.address !== undefined) address = c.address;
  }
  if (address === undefined) return conn;
  if (conn.protocol === 'dlt645') return typeof address === 'string' ? { ...conn, address } : conn;
  return typeof address === 'number' ? { ...conn, unit: address } : conn;
}

/** The meter with its connection at instant t (what createInput reads). */
export function meterAt(meter: Meter, t: number): Meter {
  const conn = effectiveConnection(meter, t);
  return conn === meter.connection ? meter : { ...meter, ...(conn ? { connection: conn } : {}) };
}

/** The next instant after t at which a meter's address changes (a change entered ahead of time), or undefined. */
export function nextAddressChange(meter: Meter, t: number): number | undefined {
  return (meter.changes ?? []).find((c) => c.at > t && c.address !== undefined)?.at;
}

/**
 * The last meter change at or before t (any change: a replacement or a CT swap), or
 * undefined. A gap is filled from the meter's daily freezes only after it: an older freeze
 * may be another meter's register (a replacement in place) or under another multiplier.
 */
export function lastChangeAtOrBefore(meter: Meter, t: number): number | undefined {
  let at: number | undefined;
  for (const c of meter.changes ?? []) {
    if (c.at > t) break;
    at = c.at;
  }
  return at;
}
