import { multiplierAt } from '../counters/meter-changes.ts';
import { occupancyOf } from '../tenancy/occupancy.ts';
import { addDays } from '../tou/local-date.ts';
import type { LocalDate } from '../tou/local-date.ts';
import { versionIndexOn } from '../tou/schedule.ts';
import type { Tariff } from '../tou/schedule.ts';
import { zoneOf } from '../tou/zone.ts';
import type { Zone } from '../tou/zone.ts';
import { kwhText, priceMicro, priceText } from '../units.ts';
import type { Account, Meter, MeterChange, Site } from './model.ts';
import { byteOrder } from './validate.ts';

/**
 * What a changed site file means for days already settled (billing.md section 11, rule 9):
 * each change that can move a charge, with the local days it touches. The workers settle
 * those days again (revision lines with the reason); `submeter check-site --against` prints
 * them. Pure: both sites are validated already.
 */
export interface SiteChange {
  /** Why, for the revision lines (e.g. `tariff commercial from 2026-10-01: peak 1.053200 -> 1.100000`). */
  readonly reason: string;
  /** First local day touched; null = since always. */
  readonly from: LocalDate | null;
  /** Local day after the last one touched; null = open. */
  readonly to: LocalDate | null;
}

export interface SiteDiff {
  readonly changes: readonly SiteChange[];
  /** A change the running pipeline cannot take (another site, another time zone): the reason. */
  readonly refused?: string;
}

const ALL = { from: null, to: null } as const;

/** Local days [from, to) of an instant range [a, b) (a, b may be infinite). */
function daysOf(zone: Zone, a: number, b: number): { from: LocalDate | null; to: LocalDate | null } {
  return { from: Number.isFinite(a) ? zone.dateOf(a) : null, to: Number.isFinite(b) ? addDays(zone.dateOf(b - 1), 1) : null };
}

const fmt = (zone: Zone, t: number | undefined) => (t === undefined ? 'none' : zone.format(t));

export function diffSites(old: Site, next: Site): SiteDiff {
  if (old.id !== next.id) return { changes: [], refused: `the file is site ${next.id}, not ${old.id}` };
  if (old.timezone !== next.timezone) return { changes: [], refused: `time zone ${old.timezone} -> ${next.timezone}: settled days are local days; restart with a new site instead` };
  const zone = zoneOf(next.timezone);
  const out: SiteChange[] = [];
  const all = (reason: string) => out.push({ reason, ...ALL });

  for (const d of [...new Set([...old.holidays, ...next.holidays])].sort(byteOrder)) {
    if (old.holidays.has(d) !== next.holidays.has(d)) out.push({ reason: `holiday ${d} ${next.holidays.has(d) ? 'added' : 'removed'}`, from: d, to: addDays(d, 1) });
  }
  if (old.loss.normalRate !== next.loss.normalRate || old.loss.method !== next.loss.method) {
    all(`loss policy ${old.loss.normalRate}/${old.loss.method} -> ${next.loss.normalRate}/${next.loss.method}`);
  }
  if (old.landlordAccount !== next.landlordAccount) all(`landlord account ${old.landlordAccount ?? 'none'} -> ${next.landlordAccount ?? 'none'}`);
  diffById(old.pools, next.pools, (id, a, b) => {
    if (!a || !b) all(`pool ${id} ${a ? 'removed' : 'added'}`);
    else if (a.method !== b.method || a.accounts.join() !== b.accounts.join()) all(`pool ${id} changed`);
  });
  diffById(old.accounts, next.accounts, (id, a, b) => diffAccount(zone, id, a, b, out));
  diffById(old.meters, next.meters, (id, a, b) => diffMeter(zone, old, next, id, a, b, out));
  diffById(old.tariffs, next.tariffs, (id, a, b) => diffTariff(id, a, b, out));
  return { changes: out };
}

function diffById<T extends { id: string }>(old: readonly T[], next: readonly T[], f: (id: string, a: T | undefined, b: T | undefined) => void): void {
  const ids = [...new Set([...old.map((x) => x.id), ...next.map((x) => x.id)])].sort(byteOrder);
  for (const id of ids) f(id, old.find((x) => x.id === id), next.find((x) => x.id === id));
}

function diffAccount(zone: Zone, id: string, a: Account | undefined, b: Account | undefined, out: SiteChange[]): void {
  if (!a || !b) {
    const [s, e] = occupancyOf((a ?? b)!);
    out.push({ reason: `account ${id} ${a ? 'removed' : 'added'}`, ...daysOf(zone, s, e) });
    return;
  }
  const [s0, e0] = occupancyOf(a);
  const [s1, e1] = occupancyOf(b);
  const occupied = daysOf(zone, Math.min(s0, s1), Math.max(e0, e1));
  if (a.areaM2 !== b.areaM2) out.push({ reason: `account ${id} area_m2 ${a.areaM2} -> ${b.areaM2}`, ...occupied });
  if (a.tariff !== b.tariff) out.push({ reason: `account ${id} tariff ${a.tariff} -> ${b.tariff}`, ...occupied });
  if (a.moveIn !== b.moveIn) out.push({ reason: `account ${id} move_in ${fmt(zone, a.moveIn)} -> ${fmt(zone, b.moveIn)}`, ...daysOf(zone, Math.min(s0, s1), Math.max(s0, s1)) });
  if (a.moveOut !== b.moveOut) out.push({ reason: `account ${id} move_out ${fmt(zone, a.moveOut)} -> ${fmt(zone, b.moveOut)}`, ...daysOf(zone, Math.min(e0, e1), Math.max(e0, e1)) });
}

const changeKey = (c: MeterChange) => `${c.at}|${c.finalWh}|${c.initialWh}|${c.multiplier}|${c.estimated}|${c.serial ?? ''}`;

function diffMeter(zone: Zone, oldSite: Site, nextSite: Site, id: string, a: Meter | undefined, b: Meter | undefined, out: SiteChange[]): void {
  if (!a || !b) {
    out.push({ reason: `meter ${id} ${a ? 'removed' : 'added'}`, ...ALL });
    return;
  }
  if (a.role !== b.role || a.pool !== b.pool) out.push({ reason: `meter ${id} role/pool ${a.role}/${a.pool ?? '-'} -> ${b.role}/${b.pool ?? '-'}`, ...ALL });
  if (a.maxKw !== b.maxKw || a.registerModulusWh !== b.registerModulusWh || a.maxGapMs !== b.maxGapMs) out.push({ reason: `meter ${id} counter settings (max_kw, register_modulus_kwh, max_gap)`, ...ALL });
  // Occupants added or removed: their occupancy is where the meter's energy moves.
  const listA = a.accounts ?? [];
  const listB = b.accounts ?? [];
  for (const acc of [...new Set([...listA, ...listB])].sort(byteOrder)) {
    if (listA.includes(acc) === listB.includes(acc)) continue;
    const def = (listB.includes(acc) ? nextSite : oldSite).accounts.find((x) => x.id === acc);
    const [s, e] = def ? occupancyOf(def) : [-Infinity, Infinity];
    out.push({ reason: `meter ${id} occupant ${acc} ${listB.includes(acc) ? 'added' : 'removed'}`, ...daysOf(zone, s, e) });
  }
  // Replacements: the interval around each one (the day before to the day after its instant).
  const ca = a.changes ?? [];
  const cb = b.changes ?? [];
  const byAt = (list: readonly MeterChange[]) => new Map(list.map((c) => [c.at, c]));
  const atA = byAt(ca);
  const atB = byAt(cb);
  for (const t of [...new Set([...atA.keys(), ...atB.keys()])].sort((x, y) => x - y)) {
    const x = atA.get(t);
    const y = atB.get(t);
    if (x && y && changeKey(x) === changeKey(y)) continue;
    const c = (y ?? x)!;
    const day = zone.dateOf(t);
    out.push({ reason: `meter ${id} change at ${zone.format(t)} ${x && y ? 'edited' : y ? 'added' : 'removed'} (final ${kwhText(c.finalWh)}, initial ${kwhText(c.initialWh)} kWh)`, from: addDays(day, -1), to: addDays(day, 2) });
  }
  // The multiplier in force, stretch by stretch between every change instant of both files.
  const cuts = [-Infinity, ...[...new Set([...ca, ...cb].map((c) => c.at))].sort((x, y) => x - y), Infinity];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const t = cuts[i] === -Infinity ? (cuts[i + 1] === Infinity ? 0 : cuts[i + 1] - 1) : cuts[i];
    const ma = multiplierAt(a, t);
    const mb = multiplierAt(b, t);
    if (ma !== mb) out.push({ reason: `meter ${id} multiplier ${ma} -> ${mb}`, ...daysOf(zone, cuts[i], cuts[i + 1]) });
  }
}

const price = (p: string | undefined) => (p === undefined ? '-' : priceText(priceMicro(p)));

function versionText(t: Tariff, date: LocalDate): string {
  const vi = versionIndexOn(t, date);
  if (vi < 0) return 'none';
  const v = t.versions[vi];
  return JSON.stringify([v.prices, v.schedule]);
}

function diffTariff(id: string, a: Tariff | undefined, b: Tariff | undefined, out: SiteChange[]): void {
  const starts = [...new Set([...(a?.versions ?? []), ...(b?.versions ?? [])].map((v) => v.effectiveFrom))].sort(byteOrder);
  starts.forEach((from, i) => {
    const ta = a ? versionText(a, from) : 'none';
    const tb = b ? versionText(b, from) : 'none';
    if (ta === tb) return;
    const to = starts[i + 1] ?? null;
    const va = a && versionIndexOn(a, from) >= 0 ? a.versions[versionIndexOn(a, from)] : undefined;
    const vb = b && versionIndexOn(b, from) >= 0 ? b.versions[versionIndexOn(b, from)] : undefined;
    let detail = 'schedule changed';
    if (va && vb && JSON.stringify(va.schedule) === JSON.stringify(vb.schedule)) {
      const periods = [...new Set([...Object.keys(va.prices), ...Object.keys(vb.prices)])] as (keyof typeof va.prices)[];
      detail = periods
        .filter((p) => va.prices[p] !== vb.prices[p])
        .map((p) => `${p} ${price(va.prices[p])} -> ${price(vb.prices[p])}`)
        .join(', ');
    } else if (!va || !vb) detail = va ? 'version removed' : 'version added';
    out.push({ reason: `tariff ${id} from ${from}: ${detail}`, from, to });
  });
}

/**
 * The settled days a diff touches, each with its reasons joined (at most `maxReason`
 * characters: the settlement job's limit), in date order.
 */
export function daysToResettle(diff: SiteDiff, settled: Iterable<LocalDate>, maxReason = 480): Map<LocalDate, string> {
  const out = new Map<LocalDate, string>();
  for (const d of [...settled].sort(byteOrder)) {
    const why = diff.changes.filter((c) => (c.from === null || d >= c.from) && (c.to === null || d < c.to)).map((c) => c.reason);
    if (why.length === 0) continue;
    const text = `site file changed: ${why.join('; ')}`;
    out.set(d, text.length > maxReason ? `${text.slice(0, maxReason - 3)}...` : text);
  }
  return out;
}

/** One line per change: its reason and the days it touches (check-site --against). */
export function describeChanges(diff: SiteDiff): string[] {
  return diff.changes.map((c) => {
    const days = c.from === null && c.to === null ? 'every settled day' : c.from === null ? `settled days before ${c.to}` : c.to === null ? `settled days from ${c.from} on` : c.to === addDays(c.from, 1) ? `${c.from}` : `${c.from} .. ${addDays(c.to, -1)}`;
    return `${c.reason}: ${days}`;
  });
}
