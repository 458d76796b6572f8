import { fromEpochDay } from './local-date.ts';
import type { LocalDate } from './local-date.ts';
import { daysFromCivil } from '../readings/rfc3339.ts';

/**
 * IANA time-zone arithmetic through Intl (billing.md section 3: schedules and settlement
 * days are in the site's local wall-clock time, DST included). Intl is the only source of
 * zone rules the pure core may use; results are cached because each call is slow.
 */

const HOUR = 3_600_000;

export class Zone {
  private readonly fmt: Intl.DateTimeFormat;
  private readonly cache = new Map<number, number>();

  constructor(readonly timezone: string) {
    this.fmt = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      era: 'short',
    });
  }

  /** Offset (local wall time - UTC) in ms at a UTC instant. */
  offsetAt(utc: number): number {
    const sec = Math.floor(utc / 1000) * 1000;
    const hit = this.cache.get(sec);
    if (hit !== undefined) return hit;
    const p: Record<string, string> = {};
    for (const part of this.fmt.formatToParts(sec)) p[part.type] = part.value;
    let y = Number(p.year);
    if (p.era === 'BC' || p.era === 'B') y = 1 - y;
    const wall = daysFromCivil(y, Number(p.month), Number(p.day)) * 86_400_000 + (Number(p.hour) * 3600 + Number(p.minute) * 60 + Number(p.second)) * 1000;
    const off = wall - sec;
    if (this.cache.size > 100_000) this.cache.clear();
    this.cache.set(sec, off);
    return off;
  }

  /** Local wall-clock ms (as if UTC) of a UTC instant. */
  wall(utc: number): number {
    return utc + this.offsetAt(utc);
  }

  /** Local date of a UTC instant. */
  dateOf(utc: number): LocalDate {
    return fromEpochDay(Math.floor(this.wall(utc) / 86_400_000));
  }

  /**
   * The first UTC instant whose local wall time is >= the given wall time. On a fall-back
   * the earlier of the two instants; a wall time skipped by a spring-forward maps to the
   * end of the gap (the first instant that exists after it).
   */
  firstInstantAtOrAfter(wallMs: number): number {
    // Offsets are within +-26 h; look at the offsets around the candidates.
    const candidates = new Set<number>();
    for (const probe of [wallMs - 26 * HOUR, wallMs - 14 * HOUR, wallMs, wallMs + 14 * HOUR]) {
      candidates.add(wallMs - this.offsetAt(probe));
    }
    let best = Infinity;
    for (const c of candidates) if (this.wall(c) === wallMs && c < best) best = c;
    if (best !== Infinity) return best;
    // Skipped wall time: the transition instant where wall time jumps past it.
    const t = this.transitions(wallMs - 30 * HOUR, wallMs + 30 * HOUR);
    for (const tr of t) if (this.wall(tr) >= wallMs && this.wall(tr - 1) < wallMs) return tr;
    throw new RangeError(`cannot place local time ${new Date(wallMs).toISOString().slice(0, 19)} in ${this.timezone}`);
  }

  /** UTC instant of local midnight starting a local date (billing.md section 3). */
  midnight(date: LocalDate): number {
    const [y, m, d] = date.split('-').map(Number);
    return this.firstInstantAtOrAfter(daysFromCivil(y, m, d) * 86_400_000);
  }

  /** Instants in [a, b) where the offset changes (the first instant with the new offset). */
  transitions(a: number, b: number): number[] {
    const out: number[] = [];
    const step = 3 * HOUR;
    let t = a;
    let off = this.offsetAt(t);
    while (t < b) {
      const next = Math.min(t + step, b);
      const o2 = this.offsetAt(next);
      if (o2 !== off) {
        // Transitions happen on whole seconds (offsetAt reads whole seconds), so bisect on
        // whole seconds: `hi` is then the first instant of the new offset itself, never a
        // millisecond after it (a caller's bound such as midnight + 1 ms must not shift it).
        let lo = Math.floor(t / 1000) * 1000; // offset === off
        let hi = Math.floor(next / 1000) * 1000; // offset === o2
        while (hi - lo > 1000) {
          const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
          if (this.offsetAt(mid) === off) lo = mid;
          else hi = mid;
        }
        if (hi >= a && hi < b) out.push(hi);
        off = o2;
      }
      t = next;
    }
    return out;
  }

  /**
   * RFC 3339 at the local offset (billing.md section 6): seconds, milliseconds only when
   * non-zero, `+08:00` style offset (`Z` never, the site's offset is the point).
   */
  format(utc: number): string {
    const off = this.offsetAt(utc);
    const wall = utc + off;
    const iso = new Date(wall).toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ of the wall time
    const ms = ((utc % 1000) + 1000) % 1000;
    const base = iso.slice(0, 19) + (ms !== 0 ? iso.slice(19, 23) : '');
    const abs = Math.abs(off) / 1000;
    const oh = Math.floor(abs / 3600);
    const om = Math.floor((abs % 3600) / 60);
    return `${base}${off < 0 ? '-' : '+'}${String(oh).padStart(2, '0')}:${String(om).padStart(2, '0')}`;
  }
}

const zones = new Map<string, Zone>();
/** One Zone (with its cache) per time zone name. */
export function zoneOf(timezone: string): Zone {
  let z = zones.get(timezone);
  if (!z) {
    z = new Zone(timezone);
    zones.set(timezone, z);
  }
  return z;
}
