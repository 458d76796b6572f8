import { addDays, DAY_TYPES, epochDay, monthOf } from '../tou/local-date.ts';
import type { LocalDate } from '../tou/local-date.ts';
import { layoutKey, minutesToHhmm, PERIODS, scheduleEntryOn, versionIndexOn } from '../tou/schedule.ts';
import type { Period, PeriodSpan, ScheduleEntry, Tariff, TariffVersion } from '../tou/schedule.ts';
import { Dec } from '../decimal.ts';
import { FIRST_DATE } from '../date-range.ts';
import type { Account, Meter, Pool, Site, TopupConfig } from './model.ts';
import { moneyFen } from '../units.ts';
import type { SiteFile } from './schema.ts';
import { zoneOf } from '../tou/zone.ts';
import { instantMs, meterChanges, tenancyIssues } from './validate-tenancy.ts';
import { MODBUS_RELAY_MAPS } from './schema.ts';
import { resolveEnforcement } from '../enforcement/resolve.ts';

export interface RawIssue {
  readonly path: readonly PropertyKey[];
  readonly message: string;
}

/**
 * The checks zod's structure cannot express (billing.md section 1): duplicate ids,
 * dangling references, roles, TOU schedules that overlap or leave gaps, prices for every
 * period used, and one period layout across all tariffs in force on any date.
 */
export interface BuildOptions {
  /** Ids of elements that failed the schema (a salvaged file): references to them are not "unknown". */
  readonly known?: { readonly accounts: ReadonlySet<string>; readonly pools: ReadonlySet<string>; readonly tariffs: ReadonlySet<string> };
  /** Some meter failed the schema: whether a master exists cannot be judged. */
  readonly metersIncomplete?: boolean;
}

export function buildSite(file: SiteFile, opts: BuildOptions = {}): { site?: Site; issues: RawIssue[] } {
  const issues: RawIssue[] = [];
  const add = (path: PropertyKey[], message: string) => issues.push({ path, message });

  const dupes = (items: readonly { id: string }[], key: string) => {
    const seen = new Map<string, number>();
    items.forEach((it, i) => {
      const prev = seen.get(it.id);
      if (prev !== undefined) add([key, i, 'id'], `duplicate id '${it.id}' (first at ${key}[${prev}])`);
      else seen.set(it.id, i);
    });
    return seen;
  };
  dupes(file.meters, 'meters');
  const withKnown = (ids: Map<string, number>, known: ReadonlySet<string> | undefined) => ({ has: (id: string) => ids.has(id) || (known?.has(id) ?? false) });
  const accountIds = withKnown(dupes(file.accounts, 'accounts'), opts.known?.accounts);
  const poolIds = withKnown(dupes(file.pools, 'pools'), opts.known?.pools);
  const tariffIds = withKnown(dupes(file.tariffs, 'tariffs'), opts.known?.tariffs);

  file.meters.forEach((m, i) => {
    if (m.role === 'tenant') {
      if (!m.account && !m.accounts) add(['meters', i, 'account'], `tenant meter '${m.id}' needs an account (or a list of successive accounts)`);
      else if (m.account && m.accounts) add(['meters', i, 'accounts'], "give either 'account' or 'accounts', not both");
      else if (m.account && !accountIds.has(m.account)) add(['meters', i, 'account'], `unknown account '${m.account}'`);
      m.accounts?.forEach((a, j) => {
        if (!accountIds.has(a)) add(['meters', i, 'accounts', j], `unknown account '${a}'`);
        else if (m.accounts!.indexOf(a) !== j) add(['meters', i, 'accounts', j], `account '${a}' listed twice`);
      });
      if (m.pool) add(['meters', i, 'pool'], 'only common meters feed a pool');
    } else if (m.role === 'common') {
      if (!m.pool) add(['meters', i, 'pool'], `common meter '${m.id}' needs a pool`);
      else if (!poolIds.has(m.pool)) add(['meters', i, 'pool'], `unknown pool '${m.pool}'`);
      if (m.account) add(['meters', i, 'account'], 'only tenant meters bill an account');
      if (m.accounts) add(['meters', i, 'accounts'], 'only tenant meters bill an account');
    } else {
      if (m.account) add(['meters', i, 'account'], 'a master meter bills no account');
      if (m.accounts) add(['meters', i, 'accounts'], 'a master meter bills no account');
      if (m.pool) add(['meters', i, 'pool'], 'a master meter feeds no pool');
    }
  });
  if (!opts.metersIncomplete && !file.meters.some((m) => m.role === 'master')) add(['meters'], 'a site needs at least one master meter (role: master)');
  // A relay key must name a relay the platform can reach (issue 13).
  file.meters.forEach((m, i) => {
    if (!m.relay) return;
    const c = m.connection;
    if (!c) add(['meters', i, 'relay'], 'a relay needs a connection to send commands over');
    else if (c.protocol !== 'dlt645' && m.relay === 'esam') add(['meters', i, 'relay'], 'esam applies to DL/T 645 meters only');
    else if (c.protocol !== 'dlt645' && !MODBUS_RELAY_MAPS.includes(c.map)) add(['meters', i, 'relay'], `map '${c.map}' has no relay register (maps with one: ${MODBUS_RELAY_MAPS.join(', ')}; docs/protocols.md "Modbus relays")`);
    if (m.role !== 'tenant') add(['meters', i, 'relay'], 'only tenant meters are switched by prepaid enforcement');
  });

  file.accounts.forEach((a, i) => {
    if (!tariffIds.has(a.tariff)) add(['accounts', i, 'tariff'], `unknown tariff '${a.tariff}'`);
  });
  file.pools.forEach((p, i) => {
    const seen = new Set<string>();
    p.accounts?.forEach((a, j) => {
      if (!accountIds.has(a)) add(['pools', i, 'accounts', j], `unknown account '${a}'`);
      if (seen.has(a)) add(['pools', i, 'accounts', j], `account '${a}' listed twice`);
      seen.add(a);
    });
  });

  if (file.utility && !tariffIds.has(file.utility.tariff)) add(['utility', 'tariff'], `unknown tariff '${file.utility.tariff}'`);
  const topup = file.topup ? buildTopup(file.topup, file.site.currency, add) : undefined;
  const tariffs: Tariff[] = file.tariffs.map((t, ti) => buildTariff(t, ti, add));

  // Addresses on one serial bus, and unit ids on one Modbus TCP endpoint, must be unique.
  const endpoints = new Map<string, number>();
  file.meters.forEach((m, i) => {
    const c = m.connection;
    if (!c) return;
    const key = c.protocol === 'modbus-tcp' ? `tcp ${c.host}:${c.port} unit ${c.unit}` : c.protocol === 'modbus-rtu' ? `serial ${c.port} modbus unit ${c.unit}` : `serial ${c.port} dlt645 ${c.address}`;
    const prev = endpoints.get(key);
    if (prev !== undefined) add(['meters', i, 'connection'], `same address as meters[${prev}] (${key})`);
    else endpoints.set(key, i);
  });

  const enforcement = resolveEnforcement(file.enforcement, new Set([...file.accounts.map((a) => a.id), ...(opts.known?.accounts ?? [])]));
  for (const i of enforcement.issues) add([...i.path], i.message);

  const holidays = new Set(file.site.holidays);
  if (issues.length === 0) checkSiteWideLayout(tariffs, holidays, add);
  if (issues.length > 0) return { issues };

  const zone = zoneOf(file.site.timezone);
  const meters: Meter[] = file.meters.map((m, i) => ({
    id: m.id,
    name: m.name ?? m.id,
    role: m.role,
    ...(m.account ? { account: m.account } : m.accounts?.length === 1 ? { account: m.accounts[0] } : {}),
    ...(m.role === 'tenant' ? { accounts: m.accounts ?? [m.account!] } : {}),
    multiplier: m.multiplier,
    changes: meterChanges(m, i, zone, add),
    ...(m.pool ? { pool: m.pool } : {}),
    maxKw: m.max_kw,
    maxW: new Dec(m.max_kw).mul(1000).toNumber(),
    registerModulusWh: m.register_modulus_kwh * 1000,
    maxGapMs: m.max_gap,
    pollIntervalMs: m.poll_interval,
    ...(m.connection ? { connection: m.connection } : {}),
    ...(m.relay ? { relay: m.relay } : {}),
  }));
  const accounts: Account[] = file.accounts.map((a) => ({
    id: a.id,
    name: a.name ?? a.id,
    areaM2: a.area_m2,
    tariff: a.tariff,
    openingBalance: new Dec(a.opening_balance).toFixed(2),
    ...(a.low_balance !== undefined ? { lowBalance: new Dec(a.low_balance).toFixed(2) } : {}),
    ...(a.low_balance_hours !== undefined ? { lowBalanceHours: a.low_balance_hours } : {}),
    ...(a.contact ? { contact: a.contact } : {}),
    ...(a.move_in !== undefined ? { moveIn: instantMs(a.move_in, zone) } : {}),
    ...(a.move_out !== undefined ? { moveOut: instantMs(a.move_out, zone) } : {}),
  }));
  const allAccounts = accounts.map((a) => a.id).sort(byteOrder);
  const pools: Pool[] = file.pools.map((p) => ({
    id: p.id,
    name: p.name ?? p.id,
    method: p.method,
    accounts: p.accounts ? [...p.accounts].sort(byteOrder) : allAccounts,
  }));
  const site: Site = {
    id: file.site.id,
    name: file.site.name ?? file.site.id,
    timezone: file.site.timezone,
    currency: file.site.currency,
    holidays,
    firstDay: file.site.first_day ?? tariffs.flatMap((t) => t.versions.map((v) => v.effectiveFrom)).sort(byteOrder)[0] ?? FIRST_DATE,
    ...(file.site.contact ? { contact: file.site.contact } : {}),
    meters,
    accounts,
    pools,
    loss: { normalRate: file.loss.normal_rate, method: file.loss.method },
    tariffs,
    ...(file.utility ? { utility: { tariff: file.utility.tariff, markupCap: file.utility.markup_cap } } : {}),
    ...(file.site.landlord_account !== undefined ? { landlordAccount: file.site.landlord_account } : {}),
    enforcement: enforcement.config,
    ...(topup ? { topup } : {}),
  };
  // Section 11: move instants in order, no overlapping occupants, no unit without one.
  tenancyIssues(file, site, add);
  if (issues.length > 0) return { issues };
  return { site, issues };
}

/**
 * The top-up block (docs/topup.md): limits that contain every preset, providers listed
 * once, and a site currency the providers can take (WeChat Pay Native and Alipay
 * face-to-face collect CNY only).
 */
function buildTopup(t: NonNullable<SiteFile['topup']>, currency: string, add: Add): TopupConfig {
  const fen = (text: string) => moneyFen(text);
  const minFen = fen(t.min);
  const maxFen = fen(t.max);
  if (minFen > maxFen) add(['topup', 'min'], `must not exceed max (${t.max})`);
  t.presets.forEach((p, i) => {
    const v = fen(p);
    if (v < minFen || v > maxFen) add(['topup', 'presets', i], `${p} is outside min ${t.min} .. max ${t.max}`);
  });
  const seen = new Set<string>();
  t.providers.forEach((p, i) => {
    if (seen.has(p)) add(['topup', 'providers', i], `provider '${p}' listed twice`);
    seen.add(p);
    if ((p === 'wechat' || p === 'alipay') && currency !== 'CNY') add(['topup', 'providers', i], `${p} collects CNY only; the site currency is ${currency}`);
  });
  if (t.query_after >= t.expiry) add(['topup', 'query_after'], 'must be shorter than expiry (pending orders are queried before they expire)');
  return {
    providers: [...seen] as TopupConfig['providers'],
    presetsFen: t.presets.map(fen),
    minFen,
    maxFen,
    expiryMs: t.expiry,
    queryAfterMs: t.query_after,
    reconcileAt: t.reconcile_at,
    ...(t.public_url ? { publicUrl: t.public_url.replace(/\/+$/, '') } : {}),
  };
}

export function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function toMinutes(hhmm: string): number {
  return Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
}

type Add = (path: PropertyKey[], message: string) => void;

function buildTariff(t: SiteFile['tariffs'][number], ti: number, add: Add): Tariff {
  const versions: TariffVersion[] = [];
  const seenDates = new Map<string, number>();
  t.versions.forEach((v, vi) => {
    const vpath = ['tariffs', ti, 'versions', vi];
    const prev = seenDates.get(v.effective_from);
    if (prev !== undefined) add([...vpath, 'effective_from'], `two versions take effect on ${v.effective_from} (also versions[${prev}])`);
    seenDates.set(v.effective_from, vi);
    const schedule: ScheduleEntry[] = v.schedule.map((e, ei) => {
      const epath = [...vpath, 'schedule', ei];
      const spans: (PeriodSpan & { index: number })[] = e.periods.map((p, pi) => ({ from: toMinutes(p.from), to: toMinutes(p.to), period: p.period, index: pi }));
      spans.forEach((s) => {
        if (s.from >= 1440) add([...epath, 'periods', s.index, 'from'], 'a period cannot start at 24:00');
        if (s.to <= s.from) add([...epath, 'periods', s.index, 'to'], `must be after from (${minutesToHhmm(s.from)}); a period may not wrap past midnight, split it at 24:00`);
        if (!(s.period in v.prices)) add([...epath, 'periods', s.index, 'period'], `no price for period '${s.period}' in this version's prices`);
      });
      const sorted = [...spans].sort((a, b) => a.from - b.from || a.to - b.to);
      let cursor = 0;
      for (const s of sorted) {
        if (s.from > cursor) add([...epath, 'periods'], `gap: ${minutesToHhmm(cursor)}-${minutesToHhmm(s.from)} is in no period`);
        else if (s.from < cursor) add([...epath, 'periods', s.index], `overlap: ${minutesToHhmm(s.from)}-${minutesToHhmm(Math.min(cursor, s.to))} is already covered`);
        cursor = Math.max(cursor, s.to);
      }
      if (cursor < 1440) add([...epath, 'periods'], `gap: ${minutesToHhmm(cursor)}-24:00 is in no period`);
      return {
        months: e.months ? [...new Set(e.months)].sort((a, b) => a - b) : [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
        days: e.days ? [...new Set(e.days)] : [...DAY_TYPES],
        periods: sorted.map(({ from, to, period }) => ({ from, to, period })),
      };
    });
    // Every month and day type needs an entry: a date no entry matches has no period (a gap).
    for (let month = 1; month <= 12; month++) {
      for (const day of DAY_TYPES) {
        if (!schedule.some((e) => e.months.includes(month) && e.days.includes(day))) {
          add([...vpath, 'schedule'], `gap: no schedule entry matches month ${month} on day type '${day}'`);
          month = 13; // one message per version is enough
          break;
        }
      }
    }
    const prices: Partial<Record<Period, string>> = {};
    for (const p of PERIODS) if (v.prices[p] !== undefined) prices[p] = v.prices[p];
    versions.push({ effectiveFrom: v.effective_from, prices, schedule });
  });
  versions.sort((a, b) => byteOrder(a.effectiveFrom, b.effectiveFrom));
  return { id: t.id, versions };
}

/**
 * billing.md section 1: all tariffs in force on a local date must have the same period
 * layout on that date. Layouts change only at version dates, months and day types, so it
 * is enough to look at every date of the first ~400 days of each stretch between version
 * dates (all months and weekdays occur) plus every listed holiday.
 */
function checkSiteWideLayout(tariffs: readonly Tariff[], holidays: ReadonlySet<string>, add: Add): void {
  if (tariffs.length < 2) return;
  const starts = [...new Set(tariffs.flatMap((t) => t.versions.map((v) => v.effectiveFrom)))].sort(byteOrder);
  const dates = new Set<LocalDate>(holidays);
  starts.forEach((start, i) => {
    const end = starts[i + 1];
    const span = end ? Math.min(400, (epochDay(end) ?? 0) - (epochDay(start) ?? 0)) : 400;
    for (let d = 0; d < span; d++) dates.add(addDays(start, d));
  });
  const reported = new Set<string>();
  for (const date of [...dates].sort(byteOrder)) {
    let first: { id: string; key: string } | undefined;
    tariffs.forEach((t, ti) => {
      const vi = versionIndexOn(t, date);
      if (vi < 0) return;
      const entry = scheduleEntryOn(t.versions[vi], date, holidays);
      if (!entry) return;
      const key = layoutKey(entry);
      if (!first) first = { id: t.id, key };
      else if (first.key !== key) {
        const what = `${t.id}/${first.id}/${monthOf(date)}`;
        if (reported.has(what)) return;
        reported.add(what);
        add(['tariffs', ti, 'versions', vi, 'schedule'], `on ${date} tariff '${t.id}' has a different period layout than tariff '${first.id}'; TOU periods are site-wide (billing.md section 1)`);
      }
    });
  }
}
