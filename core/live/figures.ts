import { BillingInputError } from '../errors.ts';
import { siteIndex } from '../settle/site-index.ts';
import type { Site } from '../site/model.ts';
import { periodAt } from '../tou/instant.ts';
import type { LocalDate } from '../tou/local-date.ts';
import type { Period } from '../tou/schedule.ts';
import { zoneOf } from '../tou/zone.ts';
import type { DaySettlement } from '../types.ts';
import { moneyFen } from '../units.ts';
import { costPerHour, hoursToZero, liveBalanceFen, liveStatus } from './balance.ts';
import type { LastInterval } from './balance.ts';
import { dayChargesOf, settleMeterEnergy } from './provisional.ts';
import type { DayCharges, MeterEnergy } from './provisional.ts';
import { PERIODS } from '../tou/schedule.ts';

/**
 * The live figures of billing.md section 5 for every account of a site, from what the
 * workers (or the API before any worker ran) read: the settled balance, each unsettled
 * day's energy so far, the trailing 24 h energy and each meter's last interval.
 */

/** A local day's meter energy (sums of its 15-minute buckets, possibly of part of the day). */
export interface DayEnergy {
  readonly date: LocalDate;
  readonly energy: readonly MeterEnergy[];
}

export interface LiveInputs {
  /** Epoch ms of the figures. */
  readonly now: number;
  /** Per account: opening + payments at or before now - charges of every settled day (all revisions). */
  readonly closingFen: ReadonlyMap<string, number>;
  /** Every local day after the last settled one up to the day of `now`, with its energy so far. */
  readonly unsettled: readonly DayEnergy[];
  /** Per local day, the energy of the buckets that start in [now - 24 h, now] (settled or not). */
  readonly trailing: readonly DayEnergy[];
  /** Each meter's last interval of raw readings in the hour before now. */
  readonly lastInterval: ReadonlyMap<string, LastInterval>;
}

export interface AccountLive {
  readonly account: string;
  /** opening + payments - settled charges. */
  readonly closingFen: number;
  /** Provisional charges of all unsettled days (own + common + loss). */
  readonly provisionalFen: number;
  /** Provisional charges of the current local day. */
  readonly todayFen: number;
  /** Live balance = closing - provisional. */
  readonly balanceFen: number;
  /** Charges of the trailing 24 h cells. */
  readonly spent24Fen: number;
  readonly hoursLeft: number | null;
  /** Cost per hour at the meters' current power, shares included. */
  readonly costPerHourFen: number;
  readonly lowBalanceFen?: number;
  readonly status: 'ok' | 'low' | 'negative';
}

export interface LiveFigures {
  readonly periodNow: Period;
  readonly accounts: readonly AccountLive[];
  /**
   * Each account's own energy of the current local day so far, per period (Wh, PERIODS order,
   * periods with energy only), when that day settled provisionally: the live route's kWh today.
   */
  readonly todayOwn?: ReadonlyMap<string, readonly (readonly [Period, number])[]>;
  /** Days that could not be settled provisionally (e.g. no price in force): left out, named here. */
  readonly problems: readonly string[];
}

/**
 * The provisional settlements of the unsettled days (never part of a bill) as charge lines:
 * what liveFigures sums, written out (statements and tests compare them with the settlement).
 * Days that cannot be settled (liveFigures names them in `problems`) are left out.
 */
export function provisionalSettlements(site: Site, inputs: LiveInputs): DaySettlement[] {
  const out: DaySettlement[] = [];
  for (const d of inputs.unsettled) {
    try {
      out.push(settleMeterEnergy(site, d.date, d.energy));
    } catch (err) {
      if (!(err instanceof BillingInputError)) throw err;
    }
  }
  return out;
}

export function liveFigures(site: Site, inputs: LiveInputs): LiveFigures {
  const problems: string[] = [];
  const today = zoneOf(site.timezone).dateOf(inputs.now);
  const ids = siteIndex(site).accountIds;
  // A day given as the same object in `unsettled` and `trailing` (the workers read both from
  // one statement when the trailing 24 h hold every unsettled day) is settled once. Each day
  // is settled into sums (dayChargesOf: section 4 without writing out its lines).
  const done = new Map<DayEnergy, DayCharges | undefined>();
  const settle = (days: readonly DayEnergy[]): DayCharges[] => {
    const out: DayCharges[] = [];
    for (const d of days) {
      if (done.has(d)) {
        const s = done.get(d);
        if (s) out.push(s);
        continue;
      }
      try {
        const s = dayChargesOf(site, d.date, d.energy, d.date === today);
        done.set(d, s);
        out.push(s);
      } catch (err) {
        if (!(err instanceof BillingInputError)) throw err;
        done.set(d, undefined);
        problems.push(`${d.date}: ${err.message}`);
      }
    }
    return out;
  };
  const sum = (days: readonly DayCharges[]): Float64Array => {
    const out = new Float64Array(ids.length);
    for (const d of days) for (let i = 0; i < ids.length; i++) out[i] += d.fen[i];
    return out;
  };
  const provisional = settle(inputs.unsettled);
  const provisionalFen = sum(provisional);
  const todayDay = provisional.find((d) => d.date === today);
  const todayFen = sum(todayDay ? [todayDay] : []);
  const spent = sum(settle(inputs.trailing));
  let todayOwn: Map<string, [Period, number][]> | undefined;
  if (todayDay?.ownWh) {
    todayOwn = new Map();
    for (let i = 0; i < ids.length; i++) {
      const own: [Period, number][] = [];
      for (let p = 0; p < PERIODS.length; p++) if (todayDay.ownWh[i * PERIODS.length + p] !== 0) own.push([PERIODS[p], todayDay.ownWh[i * PERIODS.length + p]]);
      if (own.length) todayOwn.set(ids[i], own);
    }
  }
  let rate: Map<string, number>;
  try {
    rate = costPerHour(site, inputs.now, inputs.lastInterval);
  } catch (err) {
    if (!(err instanceof BillingInputError)) throw err;
    problems.push(`cost per hour: ${err.message}`);
    rate = new Map();
  }
  const byId = new Map(site.accounts.map((a) => [a.id, a]));
  const accounts = ids.map((id, i): AccountLive => {
    const a = byId.get(id)!;
    const closingFen = inputs.closingFen.get(id) ?? moneyFen(a.openingBalance);
    const prov = provisionalFen[i];
    const balanceFen = liveBalanceFen(closingFen, prov);
    const spent24Fen = spent[i];
    const lowBalanceFen = a.lowBalance !== undefined ? moneyFen(a.lowBalance) : undefined;
    return {
      account: id,
      closingFen,
      provisionalFen: prov,
      todayFen: todayFen[i],
      balanceFen,
      spent24Fen,
      hoursLeft: hoursToZero(balanceFen, spent24Fen),
      costPerHourFen: rate.get(id) ?? 0,
      ...(lowBalanceFen !== undefined ? { lowBalanceFen } : {}),
      status: liveStatus(balanceFen, lowBalanceFen),
    };
  });
  return { periodNow: periodAt(site, inputs.now), accounts, ...(todayOwn ? { todayOwn } : {}), problems };
}
