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
 * A meter's forward-active registers: the total and one per tariff, advanced from the
 * load model's cumulative energy. An increase between two instants is split over the TOU
 * periods in between in proportion to time (exact for constant power, which is what the
 * load model holds within a slot), using the site's own calendar (core/tou) so the meter's
 * registers and our computed TOU buckets can be reconciled. Integer Wh throughout: the
 * split uses cumulative rounding, so the tariff registers always add up to the total
 * (minus energy in a period the mapping does not cover, e.g. deep valley).
 */
export class TariffRegisters {
  private total: number;
  private readonly tariffs: number[];
  private lastMs: number;
  private readonly registerOf: ReadonlyMap<Period, number>;

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
   * Registers for a meter that has already counted `totalWh` by `startMs`: the total is
   * spread over the tariff registers by each period's share of the day's TOU layout on
   * that date, so the tariffs add up to the total from the first read, as on a meter that
   * has run for years (rather than a multi-MWh total over empty tariff registers).
   */
  static seeded(site: Site | undefined, mapping: TariffMapping | undefined, startMs: number, totalWh: number): TariffRegisters {
    const empty = new TariffRegisters(site, mapping, startMs, { totalWh: 0, tariffWh: [] });
    const total = Math.max(0, Math.floor(totalWh));
    const layout = site ? layoutOn(site, zoneOf(site.timezone).dateOf(startMs)) : [{ from: 0, to: 1440, period: 'flat' as Period }];
    let minutes = 0;
    let given = 0;
    for (const span of layout) {
      minutes += span.to - span.from;
      const upto = Math.round((total * minutes) / 1440);
      empty.add(span.period, upto - given);
      given = upto;
    }
    empty.total = total;
    return empty;
  }

  /** Moves the registers to `ms`, where the meter's cumulative total is `totalWh`. */
  advance(ms: number, totalWh: number): void {
    const target = Math.floor(totalWh);
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
    let covered = 0;
    let given = 0;
    for (let k = 0; k < cal.segments; k++) {
      const lo = Math.max(a, cal.start[k]);
      const hi = Math.min(b, cal.start[k + 1]);
      if (hi <= lo) continue;
      covered += hi - lo;
      // Cumulative rounding: shares add up to delta exactly.
      const upto = Math.round((delta * covered) / span);
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
