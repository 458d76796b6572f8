import type { TouCalendar } from '../tou/calendar.ts';

/**
 * Move-in and move-out instants as extra calendar cuts (billing.md section 11, rule 1):
 * a segment that contains one is split there, both halves keeping its day and period. A
 * cut changes no cell's energy (pieces telescope, section 3) but lets each piece have one
 * occupant. Instants outside the calendar or already on a boundary change nothing; with
 * none the calendar itself is returned.
 */
export function cutCalendar(cal: TouCalendar, instants: readonly number[]): TouCalendar {
  const a = cal.start[0];
  const b = cal.start[cal.segments];
  const inside = instants.filter((t) => t > a && t < b);
  if (inside.length === 0 || cal.segments === 0) return cal;
  inside.sort((x, y) => x - y);
  const starts: number[] = [];
  const day: number[] = [];
  const period: number[] = [];
  let j = 0;
  for (let k = 0; k < cal.segments; k++) {
    const s = cal.start[k];
    const e = cal.start[k + 1];
    starts.push(s);
    day.push(cal.day[k]);
    period.push(cal.period[k]);
    while (j < inside.length && inside[j] <= s) j++;
    while (j < inside.length && inside[j] < e) {
      if (inside[j] !== starts[starts.length - 1]) {
        starts.push(inside[j]);
        day.push(cal.day[k]);
        period.push(cal.period[k]);
      }
      j++;
    }
  }
  const n = starts.length;
  const start = new Float64Array(n + 1);
  start.set(starts);
  start[n] = b;
  return { timezone: cal.timezone, days: cal.days, start, day: Int32Array.from(day), period: Uint8Array.from(period), segments: n };
}
