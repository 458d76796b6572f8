import type { EnforcementFile } from '../site/enforcement-schema.ts';
import { ALL_DAYS, DEFAULT_ENFORCEMENT } from './config.ts';
import type { AccountPolicy, EnforcementConfig, ProtectedWindow } from './config.ts';

type Issue = { readonly path: readonly PropertyKey[]; readonly message: string };
type WindowFile = NonNullable<EnforcementFile['protected_windows']>[number];

const minutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

function windows(list: readonly WindowFile[]): ProtectedWindow[] {
  return list.map((w, i) => ({
    name: w.name ?? `window ${i + 1}`,
    days: w.days ? [...new Set(w.days)] : ALL_DAYS,
    from: w.from !== undefined ? minutes(w.from) : 0,
    to: w.to !== undefined ? minutes(w.to) : 1440,
  }));
}

/**
 * The site file's `enforcement` block with its defaults, and the cross checks its
 * structure cannot express: overrides name existing accounts, and `reconnect_above` is not
 * below `-grace` (else a balance between the two would trip and reconnect in turn).
 */
export function resolveEnforcement(file: EnforcementFile | undefined, accountIds: ReadonlySet<string>): { config: EnforcementConfig; issues: Issue[] } {
  const issues: Issue[] = [];
  const d = DEFAULT_ENFORCEMENT;
  const f = file ?? {};
  const site: Omit<AccountPolicy, 'protected'> = {
    mode: f.mode ?? d.site.mode,
    graceFen: f.grace ?? d.site.graceFen,
    reconnectAboveFen: f.reconnect_above ?? d.site.reconnectAboveFen,
    warnHours: f.warn_hours ?? d.site.warnHours,
    finalWarningHours: f.final_warning_hours ?? d.site.finalWarningHours,
    windows: f.protected_windows ? windows(f.protected_windows) : d.site.windows,
    close: f.close ?? d.site.close,
  };
  const check = (path: PropertyKey[], graceFen: number, reconnectFen: number, warnH: number, finalH: number) => {
    if (graceFen < 0) issues.push({ path: [...path, 'grace'], message: 'must not be negative (it is credit below zero)' });
    if (reconnectFen < -graceFen) issues.push({ path: [...path, 'reconnect_above'], message: `must be at least -grace (${(-graceFen / 100).toFixed(2)}), or the relay would trip and reconnect in turn` });
    if (finalH > warnH) issues.push({ path: [...path, 'final_warning_hours'], message: `must not exceed warn_hours (${warnH})` });
  };
  check(['enforcement'], site.graceFen, site.reconnectAboveFen, site.warnHours, site.finalWarningHours);
  const accounts: Record<string, Partial<AccountPolicy>> = {};
  for (const [id, o] of Object.entries(f.accounts ?? {})) {
    const path = ['enforcement', 'accounts', id];
    if (!accountIds.has(id)) {
      issues.push({ path, message: `unknown account '${id}'` });
      continue;
    }
    const a: { -readonly [K in keyof AccountPolicy]?: AccountPolicy[K] } = {};
    if (o.mode !== undefined) a.mode = o.mode;
    if (o.grace !== undefined) a.graceFen = o.grace;
    if (o.reconnect_above !== undefined) a.reconnectAboveFen = o.reconnect_above;
    if (o.warn_hours !== undefined) a.warnHours = o.warn_hours;
    if (o.final_warning_hours !== undefined) a.finalWarningHours = o.final_warning_hours;
    if (o.protected_windows !== undefined) a.windows = windows(o.protected_windows);
    if (o.close !== undefined) a.close = o.close;
    if (o.protected !== undefined) a.protected = o.protected;
    const merged = { ...site, ...a };
    check(path, merged.graceFen, merged.reconnectAboveFen, merged.warnHours, merged.finalWarningHours);
    accounts[id] = a;
  }
  return {
    config: {
      site,
      accounts,
      maxDataAgeMs: f.max_data_age ?? d.maxDataAgeMs,
      maxSpoolSamples: f.max_spool_samples ?? d.maxSpoolSamples,
      commandsPerMinute: f.commands_per_minute ?? d.commandsPerMinute,
      readbackMs: f.readback ?? d.readbackMs,
      commandValidityMs: f.command_validity ?? d.commandValidityMs,
    },
    issues,
  };
}
