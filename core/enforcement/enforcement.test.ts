import { describe, expect, it } from 'vitest';
import { parseSiteYaml, SiteFileError } from '../site/index.ts';
import { zoneOf } from '../tou/zone.ts';
import { DEFAULT_ENFORCEMENT, DEFAULT_WINDOWS, policyFor } from './config.ts';
import type { AccountPolicy } from './config.ts';
import { decideRelay, nextWarning, restoreAmountFen } from './decide.ts';
import type { RelayDecisionInput } from './decide.ts';
import { commandBudget } from './rate-limit.ts';
import { staleReasons } from './staleness.ts';
import { protectedAt } from './windows.ts';

const zone = zoneOf('Asia/Shanghai');
/** Shanghai wall time -> UTC ms. */
const local = (s: string) => Date.parse(`${s}+08:00`);
const HOUR = 3_600_000;

const ON: AccountPolicy = { ...DEFAULT_ENFORCEMENT.site, mode: 'on', protected: false };
const base = (over: Partial<RelayDecisionInput> = {}): RelayDecisionInput => ({
  now: local('2026-11-18T10:00:00'), // Wednesday 10:00: no default window
  policy: ON,
  zone,
  holidays: new Set(),
  balance: { fen: 5000, hoursLeft: 100 },
  stale: [],
  wanted: 'closed',
  ...over,
});

describe('protected windows (site-local time)', () => {
  it('a night window belongs to the day it starts on and runs into the next', () => {
    const nights = [{ name: 'nights', days: ['fri'] as const, from: 22 * 60, to: 8 * 60 }];
    const hit = protectedAt([{ ...nights[0], days: [...nights[0].days] }], zone, new Set(), local('2026-11-21T03:00:00'));
    expect(hit).toEqual({ names: ['nights'], until: local('2026-11-21T08:00:00') });
    expect(protectedAt([{ ...nights[0], days: ['fri'] }], zone, new Set(), local('2026-11-20T21:59:59'))).toBeUndefined();
  });

  it('the defaults chain Friday night -> weekend -> Monday 08:00', () => {
    expect(protectedAt(DEFAULT_WINDOWS, zone, new Set(), local('2026-11-20T23:00:00'))).toEqual({ names: ['nights', 'weekends'], until: local('2026-11-23T08:00:00') });
    // A holiday Monday stretches it to Tuesday 08:00.
    expect(protectedAt(DEFAULT_WINDOWS, zone, new Set(['2026-11-23']), local('2026-11-20T23:00:00'))?.until).toBe(local('2026-11-24T08:00:00'));
    expect(protectedAt(DEFAULT_WINDOWS, zone, new Set(), local('2026-11-18T10:00:00'))).toBeUndefined();
  });

  it('a holiday on a Saturday is protected by a weekend window alone and by a holiday window alone', () => {
    const sat = local('2026-11-21T12:00:00');
    expect(protectedAt([{ name: 'h', days: ['holiday'], from: 0, to: 1440 }], zone, new Set(['2026-11-21']), sat)).toBeDefined();
    expect(protectedAt([{ name: 'w', days: ['sat'], from: 0, to: 1440 }], zone, new Set(['2026-11-21']), sat)).toBeDefined();
  });

  it('windows are cut at local times across a DST change (America/New_York, 2026-03-08)', () => {
    const ny = zoneOf('America/New_York');
    const hit = protectedAt([{ name: 'n', days: ['sat'], from: 22 * 60, to: 8 * 60 }], ny, new Set(), Date.parse('2026-03-08T05:00:00Z'));
    // 08:00 EDT on Sunday = 12:00 UTC (the night lost an hour to the spring-forward).
    expect(hit?.until).toBe(Date.parse('2026-03-08T12:00:00Z'));
  });
});

describe('the decision, rule by rule', () => {
  const cases: { name: string; input: Partial<RelayDecisionInput>; expect: Record<string, unknown> }[] = [
    { name: 'balance fine: power on, no warning', input: {}, expect: { wanted: 'closed', reason: 'balance-ok', warning: 'none' } },
    { name: 'runs out within warn_hours: warning', input: { balance: { fen: 500, hoursLeft: 20 } }, expect: { wanted: 'closed', warning: 'warning' } },
    { name: 'runs out within final_warning_hours: final warning', input: { balance: { fen: 100, hoursLeft: 1.5 } }, expect: { warning: 'final' } },
    { name: 'zero balance on a working day: trip, restore 0.01', input: { balance: { fen: 0 } }, expect: { wanted: 'open', reason: 'balance-exhausted', restoreFen: 1 } },
    { name: 'grace covers a small debt: no trip yet, final warning', input: { policy: { ...ON, graceFen: 2000 }, balance: { fen: -1500 } }, expect: { wanted: 'closed', warning: 'final' } },
    { name: 'grace used up: trip', input: { policy: { ...ON, graceFen: 2000 }, balance: { fen: -2000 } }, expect: { wanted: 'open' } },
    {
      name: 'zero balance Friday 23:00 in the night window: no trip until Monday 08:00 (weekend follows)',
      input: { now: local('2026-11-20T23:00:00'), balance: { fen: -10 } },
      expect: { wanted: 'closed', reason: 'balance-exhausted', warning: 'final', deferred: { reason: 'protected-window', until: local('2026-11-23T08:00:00') } },
    },
    {
      name: 'nights only: the trip waits for Saturday 08:00',
      input: { now: local('2026-11-20T23:00:00'), balance: { fen: -10 }, policy: { ...ON, windows: [{ name: 'nights', days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], from: 22 * 60, to: 8 * 60 }] } },
      expect: { wanted: 'closed', deferred: { reason: 'protected-window', until: local('2026-11-21T08:00:00') } },
    },
    { name: 'stale data: no trip', input: { balance: { fen: -100 }, stale: ['collector silent (last state 30 min old)'] }, expect: { wanted: 'closed', deferred: { reason: 'stale-data' } } },
    { name: 'protected account (保电): never tripped, debt stays', input: { balance: { fen: -50_000 }, policy: { ...ON, protected: true } }, expect: { wanted: 'closed', reason: 'protected-account', deferred: { reason: 'protected-account' } } },
    { name: 'manager hold in force: no trip', input: { balance: { fen: -100 }, override: { kind: 'hold', reason: 'ward on night shift', by: 'manager:1', until: local('2026-11-19T10:00:00') } }, expect: { wanted: 'closed', reason: 'hold', deferred: { reason: 'hold' } } },
    { name: 'expired hold: trip', input: { balance: { fen: -100 }, override: { kind: 'hold', reason: 'x', by: 'm', until: local('2026-11-18T09:00:00') } }, expect: { wanted: 'open', reason: 'balance-exhausted' } },
    { name: 'force trip with money in the account', input: { override: { kind: 'force-trip', reason: 'safety inspection', by: 'manager:1' } }, expect: { wanted: 'open', reason: 'force-trip' } },
    { name: 'force trip is not applied to a protected account', input: { policy: { ...ON, protected: true }, override: { kind: 'force-trip', reason: 'x', by: 'm' } }, expect: { wanted: 'closed', reason: 'protected-account' } },
    { name: 'force close while in debt', input: { wanted: 'open', balance: { fen: -9000 }, override: { kind: 'force-close', reason: 'medical equipment', by: 'manager:1' } }, expect: { wanted: 'closed', reason: 'force-close' } },
    { name: 'cut and still in debt: stays off, restore amount = debt + 0.01', input: { wanted: 'open', balance: { fen: -1234 } }, expect: { wanted: 'open', reason: 'below-reconnect', restoreFen: 1235 } },
    { name: 'a payment lifts the balance above the threshold: reconnect, even at night and on stale data', input: { wanted: 'open', balance: { fen: 1 }, now: local('2026-11-21T02:00:00'), stale: ['balance is 30 min old'] }, expect: { wanted: 'closed', reason: 'reconnect' } },
    { name: 'reconnect threshold above zero', input: { wanted: 'open', balance: { fen: 5000 }, policy: { ...ON, reconnectAboveFen: 5000 } }, expect: { wanted: 'open', restoreFen: 1 } },
    { name: 'no balance yet: left as it is', input: { balance: undefined, wanted: 'open' }, expect: { wanted: 'open', reason: 'no-balance' } },
    { name: 'mode off: nothing decided', input: { policy: { ...ON, mode: 'off' }, balance: { fen: -100 } }, expect: { wanted: 'closed', reason: 'mode-off' } },
    { name: 'dry-run decides like on (the worker sends nothing)', input: { policy: { ...ON, mode: 'dry-run' }, balance: { fen: -100 } }, expect: { wanted: 'open', reason: 'balance-exhausted' } },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(decideRelay(base(c.input))).toMatchObject(c.expect);
    });
  }

  it('every decision explains itself in one line', () => {
    for (const c of cases) expect(decideRelay(base(c.input)).detail.length).toBeGreaterThan(10);
  });

  it('restore amount is the smallest payment that lifts the balance strictly above the threshold', () => {
    expect(restoreAmountFen(-1234, 0)).toBe(1235);
    expect(restoreAmountFen(100, 0)).toBe(0);
    expect(restoreAmountFen(0, 0)).toBe(1);
  });
});

describe('warnings once per crossing', () => {
  it('rise sends once, a drop back to none re-arms', () => {
    expect(nextWarning('none', 'warning')).toEqual({ send: 'warning', state: 'warning' });
    expect(nextWarning('warning', 'warning')).toEqual({ state: 'warning' });
    expect(nextWarning('warning', 'final')).toEqual({ send: 'final', state: 'final' });
    expect(nextWarning('final', 'warning')).toEqual({ state: 'final' });
    expect(nextWarning('final', 'none')).toEqual({ state: 'none' });
  });
});

describe('stale data and the per-bus budget', () => {
  const now = local('2026-11-18T10:00:00');
  const fresh = { now, maxAgeMs: 15 * 60_000, maxSpoolSamples: 100, balanceTime: now - 5_000, meters: [{ id: 'T1', lastSeen: now - 60_000, consecutiveErrors: 0 }], collector: { time: now - 10_000, spoolSamples: 3, spoolFull: false } };
  it('fresh data has no reasons; each kind of staleness names itself', () => {
    expect(staleReasons(fresh)).toEqual([]);
    expect(staleReasons({ ...fresh, collector: { ...fresh.collector, time: now - HOUR } })).toEqual(['collector silent (last state 60 min old)']);
    expect(staleReasons({ ...fresh, collector: { ...fresh.collector, spoolSamples: 500 } })[0]).toMatch(/spool backing up/);
    expect(staleReasons({ ...fresh, collector: undefined })).toEqual(['no collector state']);
    expect(staleReasons({ ...fresh, meters: [{ id: 'T1', lastSeen: now - 60_000, consecutiveErrors: 3 }] })[0]).toMatch(/failing/);
    expect(staleReasons({ ...fresh, meters: [{ id: 'T1' }] })).toEqual(['meter T1 never read']);
    expect(staleReasons({ ...fresh, balanceTime: undefined })).toEqual(['no balance computed yet']);
  });
  it('at most N commands in any minute on a bus', () => {
    expect(commandBudget([], now, 6)).toBe(6);
    expect(commandBudget([now - 59_000, now - 1000, now - 61_000], now, 2)).toBe(0);
    expect(commandBudget([now - 61_000], now, 2)).toBe(2);
  });
});

describe('the site file enforcement block', () => {
  const site = (block: string) =>
    parseSiteYaml(`
site: { id: e, timezone: Asia/Shanghai }
meters:
  - { id: M, role: master }
  - { id: T1, role: tenant, account: A1, relay: plain, connection: { protocol: dlt645, port: /dev/ttyUSB0, address: "000000000001" } }
accounts:
  - { id: A1, tariff: t }
  - { id: A2, tariff: t }
tariffs:
  - { id: t, versions: [{ effective_from: 2026-01-01, prices: { flat: "1" }, schedule: [{ periods: [{ from: "00:00", to: "24:00", period: flat }] }] }] }
${block}`);

  it('absent: dry-run with the defaults (a new site sends nothing)', () => {
    const s = site('');
    expect(s.enforcement).toEqual(DEFAULT_ENFORCEMENT);
    expect(policyFor(s.enforcement!, 'A1').mode).toBe('dry-run');
  });

  it('reads the block with overrides and durations', () => {
    const s = site(`enforcement:
  mode: on
  grace: "10.00"
  reconnect_above: 5
  max_data_age: 10m
  readback: 30s
  protected_windows: [{ name: nights, from: "22:00", to: "07:00" }, { days: [holiday] }]
  accounts:
    A1: { protected: true }
    A2: { mode: dry-run, grace: 0, reconnect_above: "0.00" }`);
    const e = s.enforcement!;
    expect(e.site).toMatchObject({ mode: 'on', graceFen: 1000, reconnectAboveFen: 500 });
    expect(e.site.windows).toEqual([
      { name: 'nights', days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun', 'holiday'], from: 1320, to: 420 },
      { name: 'window 2', days: ['holiday'], from: 0, to: 1440 },
    ]);
    expect(e.maxDataAgeMs).toBe(600_000);
    expect(e.readbackMs).toBe(30_000);
    expect(policyFor(e, 'A1')).toMatchObject({ protected: true, mode: 'on' });
    expect(policyFor(e, 'A2')).toMatchObject({ mode: 'dry-run', graceFen: 0, reconnectAboveFen: 0 });
  });

  it('refuses bad blocks with the key path and line', () => {
    const bad = (block: string) => {
      try {
        site(block);
      } catch (e) {
        if (e instanceof SiteFileError) return e.issues.map((i) => `${i.path}@${i.line}: ${i.message}`);
      }
      return [];
    };
    expect(bad('enforcement: { mode: always }')[0]).toMatch(/^enforcement\.mode@\d+: /);
    expect(bad('enforcement:\n  accounts:\n    A9: { protected: true }')[0]).toMatch(/^enforcement\.accounts\.A9@\d+: unknown account 'A9'/);
    expect(bad('enforcement: { grace: "10.00", reconnect_above: "-20.00" }')[0]).toMatch(/reconnect_above.*trip and reconnect in turn/);
    expect(bad('enforcement: { protected_windows: [{ from: "22:00", to: "22:00" }] }')[0]).toMatch(/protected_windows\[0\]\.to/);
    expect(bad('enforcement: { max_data_age: forever }')[0]).toMatch(/max_data_age/);
    expect(bad('enforcement: { warn_hours: 1, final_warning_hours: 5 }')[0]).toMatch(/final_warning_hours/);
  });

  it('a relay on a meter must be reachable: no connection, a map without relay, esam on Modbus', () => {
    const meters = (m: string) => {
      try {
        parseSiteYaml(`site: { id: e, timezone: Asia/Shanghai }
meters:
  - { id: M, role: master }
${m}
accounts: [{ id: A1, tariff: t }]
tariffs:
  - { id: t, versions: [{ effective_from: 2026-01-01, prices: { flat: "1" }, schedule: [{ periods: [{ from: "00:00", to: "24:00", period: flat }] }] }] }`);
        return '';
      } catch (e) {
        return (e as SiteFileError).issues.map((i) => `${i.path}: ${i.message}`).join('\n');
      }
    };
    expect(meters('  - { id: T, role: tenant, account: A1, relay: plain }')).toMatch(/meters\[1\]\.relay: a relay needs a connection/);
    expect(meters('  - { id: T, role: tenant, account: A1, relay: plain, connection: { protocol: modbus-tcp, host: h, unit: 1, map: sdm120 } }')).toMatch(/map 'sdm120' has no relay register/);
    expect(meters('  - { id: T, role: tenant, account: A1, relay: esam, connection: { protocol: modbus-tcp, host: h, unit: 1, map: dds238 } }')).toMatch(/esam applies to DL\/T 645/);
    expect(meters('  - { id: T, role: tenant, account: A1, relay: plain, connection: { protocol: modbus-tcp, host: h, unit: 1, map: dds238 } }')).toBe('');
  });
});
