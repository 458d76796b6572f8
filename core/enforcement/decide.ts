import type { Zone } from '../tou/zone.ts';
import { moneyText } from '../units.ts';
import type { AccountPolicy } from './config.ts';
import { protectedAt } from './windows.ts';

/**
 * The prepaid cut-off decision for one account (docs/enforcement.md): pure, from the
 * policy, the account's live balance (the balance worker's `balance` point, never
 * recomputed here), the freshness of the data, a manager's override and the state the
 * relay is wanted in now. The workers run it every balance cycle; what it returns is
 * logged in the audit trail and, in `on` mode, becomes a relay command.
 *
 * Order of the rules, safest first:
 * 1. mode off: nothing is decided (the relay is left as it is);
 * 2. a manager's override in force: force close / hold keep power on, force trip cuts it;
 * 3. protected account (保电): power on, always;
 * 4. no balance yet: leave the relay as it is wanted now;
 * 5. cut already: close once the balance is above `reconnect_above` (a payment), whatever
 *    the windows and the data age (keeping power on is the safe side); else stay open;
 * 6. balance + grace <= 0: trip, unless the data is stale or a protected window is running
 *    (then the trip waits, and the tenant gets a final warning saying until when);
 * 7. otherwise power on, with a warning when the balance runs out within warn_hours and a
 *    final warning within final_warning_hours (or once the balance is into the grace).
 *
 * Energy drawn while a trip waits (a night, stale data, a protected account) is still
 * metered and charged: the balance goes negative and that debt is part of what must be
 * paid to reconnect (billing.md section 5 is unchanged; nothing here touches charges).
 */

export type Wanted = 'closed' | 'open';

export type DecisionReason =
  | 'mode-off'
  | 'force-close'
  | 'force-trip'
  | 'hold'
  | 'protected-account'
  | 'no-balance'
  | 'reconnect'
  | 'below-reconnect'
  | 'balance-exhausted'
  | 'balance-ok';

export type DeferReason = 'protected-account' | 'hold' | 'protected-window' | 'stale-data';

export type WarningLevel = 'none' | 'warning' | 'final';

export interface ManualOverride {
  /** hold: keep power on (no trip); force-close / force-trip: the manager's command. */
  readonly kind: 'hold' | 'force-close' | 'force-trip';
  readonly reason: string;
  readonly by: string;
  /** Epoch ms; absent: until released. */
  readonly until?: number;
}

export interface RelayDecisionInput {
  readonly now: number;
  readonly policy: AccountPolicy;
  readonly zone: Zone;
  readonly holidays: ReadonlySet<string>;
  /** The account's live balance: fen, hours to zero at the trailing rate, the point's time. */
  readonly balance?: { readonly fen: number; readonly hoursLeft?: number };
  /** staleReasons(...): anything here blocks a trip. */
  readonly stale: readonly string[];
  readonly override?: ManualOverride;
  /** The state the relay is wanted in now (closed when never decided). */
  readonly wanted: Wanted;
}

export interface RelayDecision {
  readonly wanted: Wanted;
  readonly reason: DecisionReason;
  /** A trip the balance calls for but that waits, and why; `until` for a protected window. */
  readonly deferred?: { readonly reason: DeferReason; readonly until?: number; readonly detail: string };
  readonly warning: WarningLevel;
  /** Fen to pay to get power back (the relay is wanted open); 0 otherwise. */
  readonly restoreFen: number;
  /** One English line for the audit log. */
  readonly detail: string;
}

const money = (fen: number) => moneyText(fen);

/** The smallest payment that lifts `balanceFen` above `aboveFen` (balance must exceed it). */
export function restoreAmountFen(balanceFen: number, aboveFen: number): number {
  return Math.max(0, aboveFen - balanceFen + 1);
}

function earlyWarning(p: AccountPolicy, balance: { fen: number; hoursLeft?: number }, deferred: boolean): WarningLevel {
  if (deferred || balance.fen <= 0) return 'final';
  const h = balance.hoursLeft;
  if (h !== undefined && h <= p.finalWarningHours) return 'final';
  if (h !== undefined && h <= p.warnHours) return 'warning';
  return 'none';
}

export function decideRelay(input: RelayDecisionInput): RelayDecision {
  const { policy: p, balance, now } = input;
  if (p.mode === 'off') return { wanted: input.wanted, reason: 'mode-off', warning: 'none', restoreFen: 0, detail: 'enforcement is off for this account: nothing decided, the relay is left as it is' };

  const o = input.override;
  if (o && (o.until === undefined || o.until > now)) {
    const until = o.until !== undefined ? ` until ${input.zone.format(o.until)}` : '';
    if (o.kind === 'force-close') return { wanted: 'closed', reason: 'force-close', warning: 'none', restoreFen: 0, detail: `manager ${o.by} forced power on${until}: ${o.reason}` };
    if (o.kind === 'force-trip' && !p.protected) {
      return { wanted: 'open', reason: 'force-trip', warning: 'none', restoreFen: 0, detail: `manager ${o.by} forced power off${until}: ${o.reason}` };
    }
    if (o.kind === 'hold') {
      const exhausted = balance !== undefined && balance.fen + p.graceFen <= 0;
      return {
        wanted: 'closed',
        reason: 'hold',
        ...(exhausted ? { deferred: { reason: 'hold' as const, ...(o.until !== undefined ? { until: o.until } : {}), detail: `held by ${o.by}${until}: ${o.reason}` } } : {}),
        warning: exhausted ? 'final' : 'none',
        restoreFen: 0,
        detail: `held on by ${o.by}${until}: ${o.reason}`,
      };
    }
  }

  if (p.protected) {
    const exhausted = balance !== undefined && balance.fen + p.graceFen <= 0;
    return {
      wanted: 'closed',
      reason: 'protected-account',
      ...(exhausted ? { deferred: { reason: 'protected-account' as const, detail: 'protected account (保电): never tripped; the debt is still charged' } } : {}),
      warning: 'none',
      restoreFen: 0,
      detail: `protected account (保电): never tripped${balance ? `; balance ${money(balance.fen)}` : ''}`,
    };
  }

  if (!balance) return { wanted: input.wanted, reason: 'no-balance', warning: 'none', restoreFen: 0, detail: 'no live balance for the account yet: the relay is left as it is' };

  if (input.wanted === 'open') {
    if (balance.fen > p.reconnectAboveFen) {
      return { wanted: 'closed', reason: 'reconnect', warning: 'none', restoreFen: 0, detail: `balance ${money(balance.fen)} is above ${money(p.reconnectAboveFen)}: reconnect` };
    }
    const restore = restoreAmountFen(balance.fen, p.reconnectAboveFen);
    return { wanted: 'open', reason: 'below-reconnect', warning: 'none', restoreFen: restore, detail: `balance ${money(balance.fen)}: power stays off until a payment of ${money(restore)} or more` };
  }

  if (balance.fen + p.graceFen <= 0) {
    const why = `balance ${money(balance.fen)} with grace ${money(p.graceFen)} is exhausted`;
    if (input.stale.length > 0) {
      return { wanted: 'closed', reason: 'balance-exhausted', deferred: { reason: 'stale-data', detail: input.stale.join('; ') }, warning: 'final', restoreFen: 0, detail: `${why}; no trip on stale data: ${input.stale.join('; ')}` };
    }
    const hit = protectedAt(p.windows, input.zone, input.holidays, now);
    if (hit) {
      const when = input.zone.format(hit.until);
      return {
        wanted: 'closed',
        reason: 'balance-exhausted',
        deferred: { reason: 'protected-window', until: hit.until, detail: `protected window ${hit.names.join(' + ')} until ${when}` },
        warning: 'final',
        restoreFen: 0,
        detail: `${why}; trip waits for the end of the protected window (${hit.names.join(' + ')}) at ${when}`,
      };
    }
    return { wanted: 'open', reason: 'balance-exhausted', warning: 'none', restoreFen: restoreAmountFen(balance.fen, p.reconnectAboveFen), detail: `${why}: trip` };
  }

  return { wanted: 'closed', reason: 'balance-ok', warning: earlyWarning(p, balance, false), restoreFen: 0, detail: `balance ${money(balance.fen)}${balance.hoursLeft !== undefined ? `, ${balance.hoursLeft} h left` : ''}` };
}

/** Warnings go out once per crossing: the level to send now (rising), and the state to keep. */
export function nextWarning(previous: WarningLevel, now: WarningLevel): { readonly send?: 'warning' | 'final'; readonly state: WarningLevel } {
  const rank = { none: 0, warning: 1, final: 2 } as const;
  if (now === 'none') return { state: 'none' };
  if (rank[now] > rank[previous]) return { send: now, state: now };
  return { state: rank[now] >= rank[previous] ? now : previous };
}
