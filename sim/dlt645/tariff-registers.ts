import type { Site, Period } from '../../core/index.ts';
import { buildCalendar, layoutOn, addDays, PERIODS, zoneOf } from '../../core/index.ts';
import { DEFAULT_TARIFF_MAPPING, periodsByRegister } from '../../collector/wire.ts';
import type { TariffMapping } from '../../collector/wire.ts';

export { DEFAULT_TARIFF_MAPPING } from '../../collector/wire.ts';
export type { TariffMapping } from '../../collector/wire.ts';

export interface RegisterSnapshot {
  /** Forward active total, integer Wh. */
  readonly totalWh: number;
  /** Forward active per tariff register, integer Wh; index 0 is tariff 1. */
  readonly tariffWh: readonly number[];
}

/**
 * The registers count whole 0.01 kWh (XXXXXX.XX kWh, DL/T 645-2007 appendix A), each step
 * into the register of the period it falls in: the tariff registers then add up to the
 * total exactly, as on a meter that derives its total from them.
 */
const STEP_WH = 10;

const quantise = (wh: number) => Math.floor(wh / STEP_WH) * STEP_WH;

/**
 * A meter's forward-active registers: the total and one per tariff, advanced from the
 * load model's cumulative energy, using the site's own calendar (core/tou) so the meter's
 * registers and our computed TOU buckets can be reconciled. Whoever advances them walks
 * the period changes first (`changesUntil`), so every step lies in one period and the
 * registers at an instant depend only on the load model, never on when they were read: a
 * collector that polls hourly and one that was down for three days see the same registers
 * (what billing.md section 2 rule 5 relies on; collector/inputs/dlt645/frozen-fill.test.ts).
 * A step across periods (a caller that did not walk them) is split in proportion to time.
 * Integer Wh in whole 0.01 kWh throughout: the tariff registers add up to the total (minus
 * energy in a period the mapping does not cover, e.g. deep valley).
 */
export class TariffRegisters {
  private total: number;
  private readonly tariffs: number[];
  private lastMs: number;
  private readonly registerOf: ReadonlyMap<Period, number>;
  /** Calendar cuts (period changes, midnights) after lastMs, from a calendar of a few days; and where it ends. */
  private cuts: number[] = [];
  private cutsEnd = -Infinity;

  constructor(
    private readonly site: Site | undefined,
    mapping: TariffMapping = DEFAULT_TARIFF_MAPPING,
    startMs: number,
    initial: RegisterSnapshot = { totalWh: 0, tariffWh: [0, 0, 0, 0] },
  ) {
    const reg = new Map<Period, number>();
    for (const [n, period] of periodsByRegister(mapping)) reg.set(period, n);
    this.registerOf = reg;
    const count = Math.max(4, ...reg.values());
    this.tariffs = Array.from({ length: count }, (_, i) => initial.tariffWh[i] ?? 0);
    this.total = initial.totalWh;
    this.lastMs = startMs;
  }

  /**
   * Registers for a meter that has already counted `totalWh` by `startMs`: the total (in
   * whole 0.01 kWh) is spread over the tariff registers by each period's share of the day's
   * TOU layout on that date, so the tariffs add up to the total from the first read, as on a
   * meter that has run for years (rather than a multi-MWh total over empty tariff registers).
   */
  static seeded(site: Site | undefined, mapping: TariffMapping | undefined, startMs: number, totalWh: number): TariffRegisters {
    const empty = new TariffRegisters(site, mapping, startMs, { totalWh: 0, tariffWh: [] });
    const total = quantise(Math.max(0, Math.floor(totalWh)));
    const layout = site ? layoutOn(site, zoneOf(site.timezone).dateOf(startMs)) : [{ from: 0, to: 1440, period: 'flat' as Period }];
    let minutes = 0;
    let given = 0;
    for (const span of layout) {
      minutes += span.to - span.from;
      const upto = Math.round((total / STEP_WH) * minutes / 1440) * STEP_WH;
      empty.add(span.period, upto - given);
      given = upto;
    }
    empty.total = total;
    return empty;
  }

  /**
   * The instants in (last advance, ms) where the calendar cuts (a period change or a local
   * midnight): advance to each of them, in order, before advancing to `ms`.
   */
  changesUntil(ms: number): number[] {
    if (!this.site || ms <= this.lastMs) return [];
    const out: number[] = [];
    let from = this.lastMs;
    while (from < ms) {
      if (from >= this.cutsEnd) {
        const zone = zoneOf(this.site.timezone);
        const day = zone.dateOf(from);
        const cal = buildCalendar(this.site, day, addDays(day, 3));
        this.cuts = Array.from(cal.start.subarray(1, cal.segments));
        this.cutsEnd = cal.start[cal.segments];
        this.cuts.push(this.cutsEnd);
      }
      for (const c of this.cuts) if (c > from && c < ms) out.push(c);
      from = Math.min(ms, this.cutsEnd);
    }
    return out;
  }

  /** Moves the registers to `ms`, where the meter's cumulative total is `totalWh`. */
  advance(ms: number, totalWh: number): void {
    const target = quantise(Math.floor(totalWh));
    const delta = target - this.total;
    if (ms <= this.lastMs || delta <= 0) {
      // A meter register never runs backwards; time standing still adds nothing.
      if (ms > this.lastMs) this.lastMs = ms;
      return;
    }
    this.split(this.lastMs, ms, delta);
    this.total = target;
    this.lastMs = ms;
  }

  snapshot(): RegisterSnapshot {
    return { totalWh: this.total, tariffWh: [...this.tariffs] };
  }

  private split(a: number, b: number, delta: number): void {
    if (!this.site) {
      // No site calendar: everything is flat (docs/billing.md amendment A1, no tariff).
      this.add('flat', delta);
      return;
    }
    const zone = zoneOf(this.site.timezone);
    const cal = buildCalendar(this.site, zone.dateOf(a), addDays(zone.dateOf(b), 1));
    const span = b - a;
    const steps = delta / STEP_WH;
    let covered = 0;
    let given = 0;
    for (let k = 0; k < cal.segments; k++) {
      const lo = Math.max(a, cal.start[k]);
      const hi = Math.min(b, cal.start[k + 1]);
      if (hi <= lo) continue;
      covered += hi - lo;
      // Cumulative rounding in whole steps: shares add up to delta exactly.
      const upto = Math.round((steps * covered) / span) * STEP_WH;
      this.add(PERIODS[cal.period[k]], upto - given);
      given = upto;
    }
    if (given < delta) this.add('flat', delta - given);
  }

  private add(period: Period, wh: number): void {
    const n = this.registerOf.get(period);
    if (n !== undefined && wh > 0) this.tariffs[n - 1] += wh;
  }
}
