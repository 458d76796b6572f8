import { parseRfc3339 } from '../readings/rfc3339.ts';
import { occupancyOf, uncovered } from '../tenancy/occupancy.ts';
import { isLocalDate } from '../tou/local-date.ts';
import { zoneOf } from '../tou/zone.ts';
import type { Zone } from '../tou/zone.ts';
import type { MeterChange, Site } from './model.ts';
import type { SiteFile } from './schema.ts';

/**
 * The site-file checks of billing.md section 11 (tenancy and meter changes) that need the
 * site's time zone or several keys at once: move-out after move-in, meter changes in
 * order with an address the meter's protocol can use, no two occupants of one meter at
 * once, and no instant without someone to bear the energy unless a landlord account is
 * named. Each problem names its key path (validate.ts adds the line).
 */

type Add = (path: PropertyKey[], message: string) => void;

/** An instant of the site file (schema.ts instantText) in epoch ms: a local date is its local midnight. */
export function instantMs(text: string, zone: Zone): number {
  if (isLocalDate(text)) return zone.midnight(text);
  const t = parseRfc3339(text);
  if (typeof t !== 'number') throw new RangeError(`not an instant: ${text}`); // the schema let only instants through
  return t;
}

/** A meter's changes as the core uses them: epoch ms, Wh, the multiplier in force after each. */
export function meterChanges(m: SiteFile['meters'][number], i: number, zone: Zone, add: Add): MeterChange[] {
  let mult = m.multiplier;
  let prev = -Infinity;
  const protocol = m.connection?.protocol;
  return m.meter_changes.map((c, j) => {
    const path = ['meters', i, 'meter_changes', j];
    const at = instantMs(c.at, zone);
    if (!(at > prev)) add([...path, 'at'], `must be after the previous change (${zone.format(prev)}): list changes in time order`);
    prev = at;
    if (c.address !== undefined) {
      if (!protocol) add([...path, 'address'], 'the meter has no connection: an address means nothing here');
      else if (protocol === 'dlt645' && typeof c.address !== 'string') add([...path, 'address'], 'a DL/T 645 address is 12 digits as a quoted string');
      else if (protocol !== 'dlt645' && typeof c.address !== 'number') add([...path, 'address'], `a ${protocol} address is the unit id (a number)`);
    }
    const modulus = m.register_modulus_kwh * 1000;
    if (c.final_kwh >= modulus) add([...path, 'final_kwh'], `must be below the register modulus ${m.register_modulus_kwh} kWh`);
    if (c.initial_kwh >= modulus) add([...path, 'initial_kwh'], `must be below the register modulus ${m.register_modulus_kwh} kWh`);
    mult = c.multiplier ?? mult;
    return {
      at,
      finalWh: c.final_kwh,
      initialWh: c.initial_kwh,
      multiplier: mult,
      ...(c.serial !== undefined ? { serial: c.serial } : {}),
      ...(c.address !== undefined ? { address: c.address } : {}),
      estimated: c.estimated,
    };
  });
}

export function tenancyIssues(file: SiteFile, site: Site, add: Add): void {
  const local = zoneOf(site.timezone);
  const zone = { format: (t: number) => (t === -Infinity ? 'the beginning' : t === Infinity ? 'open end' : local.format(t)) };
  const byId = new Map(site.accounts.map((a) => [a.id, a]));
  site.accounts.forEach((a, i) => {
    // Occupancy weights count whole seconds (billing.md section 11 rule 3).
    if (a.moveIn !== undefined && a.moveIn % 1000 !== 0) add(['accounts', i, 'move_in'], 'must be a whole second (no fraction): occupancy is counted in seconds');
    if (a.moveOut !== undefined && a.moveOut % 1000 !== 0) add(['accounts', i, 'move_out'], 'must be a whole second (no fraction): occupancy is counted in seconds');
    if (a.moveIn !== undefined && a.moveOut !== undefined && !(a.moveOut > a.moveIn)) add(['accounts', i, 'move_out'], `must be after move_in (${zone.format(a.moveIn)})`);
  });
  const landlord = site.landlordAccount;
  if (landlord !== undefined) {
    const a = byId.get(landlord);
    if (!a) add(['site', 'landlord_account'], `unknown account '${landlord}'`);
    else if (a.moveIn !== undefined || a.moveOut !== undefined) add(['site', 'landlord_account'], `the landlord account '${landlord}' bears vacant units at any time: it may have no move_in or move_out`);
  }
  const span = ([a, b]: readonly [number, number]) => (a === -Infinity ? `until ${zone.format(b)}` : b === Infinity ? `from ${zone.format(a)} on` : `from ${zone.format(a)} to ${zone.format(b)}`);

  site.meters.forEach((m, i) => {
    if (m.role !== 'tenant') return;
    const key = file.meters[i].accounts ? 'accounts' : 'account';
    const occ = (m.accounts ?? [])
      .map((id) => byId.get(id))
      .filter((a) => a !== undefined)
      .map((a) => ({ id: a.id, range: occupancyOf(a) }))
      .sort((x, y) => x.range[0] - y.range[0]);
    for (let k = 1; k < occ.length; k++) {
      const p = occ[k - 1];
      const q = occ[k];
      if (q.range[0] < p.range[1]) add(['meters', i, key], `occupants '${p.id}' and '${q.id}' of meter '${m.id}' overlap ${span([q.range[0], Math.min(p.range[1], q.range[1])])}: one meter has one occupant at a time (set move_out / move_in)`);
    }
    if (landlord !== undefined) return;
    // An occupant that is not there (unknown, or dropped by an error of its own) is reported
    // elsewhere; a vacancy made of it would only repeat that error in other words.
    if ((m.accounts ?? []).some((id) => !byId.has(id))) return;
    const gap = uncovered(occ.map((o) => o.range))[0];
    if (gap) add(['meters', i, key], `meter '${m.id}' has no occupant ${span(gap)}: name a site.landlord_account to bear vacant units' energy (billing.md section 11)`);
  });

  if (landlord === undefined && site.accounts.some((a) => a.moveIn !== undefined || a.moveOut !== undefined)) coverageIssues(site, span, add);
}

/** Without a landlord: every pool, and the site as a whole (the loss), needs someone present at every instant. */
function coverageIssues(site: Site, span: (r: readonly [number, number]) => string, add: Add): void {
  const byId = new Map(site.accounts.map((a) => [a.id, a]));
  const gapOf = (ids: readonly string[]) => uncovered(ids.map((id) => byId.get(id)).filter((a) => a !== undefined).map(occupancyOf))[0];
  let reported = false;
  site.pools.forEach((p, i) => {
    const gap = gapOf(p.accounts);
    if (gap) {
      add(['pools', i, 'accounts'], `no account of pool '${p.id}' occupies ${span(gap)}: its energy would have nobody to go to; name a site.landlord_account (billing.md section 11)`);
      reported = true;
    }
  });
  if (reported || site.accounts.length === 0) return;
  const gap = gapOf(site.accounts.map((a) => a.id));
  if (gap) add(['accounts'], `no account occupies ${span(gap)}: the loss would have nobody to go to; name a site.landlord_account (billing.md section 11)`);
}
