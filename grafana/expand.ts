/**
 * Grafana's InfluxQL macro and variable expansion, reproduced so tests (and anyone
 * debugging a panel) can run a panel's or alert's query against InfluxDB directly:
 *
 * - `$timeFilter` -> `time >= <from>ms and time <= <to>ms`
 * - `$__interval` -> the panel interval: range / max data points, rounded the way Grafana
 *   rounds it (kbn.roundInterval), never below the panel's or datasource's minimum
 * - `$var`, `${var}`, `[[var]]` -> the selected value; several selected values (a multi
 *   variable) become a regex group `(a|b)` of regex-escaped values, which is why the
 *   dashboards match variables as `=~ /^$var$/`
 */

/** Grafana's "nice" interval steps (public/app/core/utils/kbn.ts roundInterval), in ms. */
const ROUND_STEPS: readonly [below: number, value: number][] = [
  [15, 10], [35, 20], [75, 50], [150, 100], [350, 200], [750, 500], [1_500, 1_000],
  [3_500, 2_000], [7_500, 5_000], [12_500, 10_000], [17_500, 15_000], [25_000, 20_000],
  [45_000, 30_000], [90_000, 60_000], [210_000, 120_000], [450_000, 300_000],
  [1_050_000, 600_000], [2_100_000, 900_000], [4_500_000, 1_800_000], [9_000_000, 3_600_000],
  [21_600_000, 7_200_000], [86_400_000, 21_600_000], [604_800_000, 86_400_000],
  [1_814_400_000, 604_800_000], [3_628_800_000, 2_592_000_000],
];

export function roundInterval(ms: number): number {
  for (const [below, value] of ROUND_STEPS) if (ms < below) return value;
  return 31_536_000_000;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, y: 31_536_000_000 };

export function parseDuration(text: string): number {
  const m = /^(\d+)(ms|s|m|h|d|w|y)$/.exec(text.trim().replace(/^>/, ''));
  if (!m) throw new Error(`not a Grafana duration: ${JSON.stringify(text)}`);
  return Number(m[1]) * UNIT_MS[m[2]];
}

/** An interval in InfluxQL duration syntax, largest whole unit first (`15m`, `1h`, `500ms`). */
export function formatDuration(ms: number): string {
  for (const u of ['w', 'd', 'h', 'm', 's'] as const) if (ms % UNIT_MS[u] === 0 && ms >= UNIT_MS[u]) return `${ms / UNIT_MS[u]}${u}`;
  return `${ms}ms`;
}

/** The `$__interval` Grafana gives a panel: range / maxDataPoints, rounded, at least `min`. */
export function panelInterval(fromMs: number, toMs: number, maxDataPoints: number, min?: string): string {
  const raw = roundInterval((toMs - fromMs) / maxDataPoints);
  return formatDuration(Math.max(raw, min ? parseDuration(min) : 0));
}

/** Grafana's regex escaping of one variable value (influx datasource, influxSpecialRegexEscape). */
export function regexEscape(value: string): string {
  return value.replace(/[\\^$*+?.()|[\]{}/]/g, '\\$&');
}

export type VariableValue = string | readonly string[];

export interface ExpandContext {
  readonly fromMs: number;
  readonly toMs: number;
  /** The `$__interval` text, e.g. `1m`. */
  readonly interval: string;
  readonly variables?: Readonly<Record<string, VariableValue>>;
}

function formatValue(value: VariableValue): string {
  if (typeof value === 'string') return value;
  if (value.length === 1) return regexEscape(value[0]);
  return `(${value.map(regexEscape).join('|')})`;
}

export function expandInfluxQL(query: string, ctx: ExpandContext): string {
  let q = query
    .replace(/\$timeFilter\b/g, `time >= ${ctx.fromMs}ms and time <= ${ctx.toMs}ms`)
    .replace(/\$__interval_ms\b/g, String(parseDuration(ctx.interval)))
    .replace(/\$__interval\b/g, ctx.interval);
  // Longest names first, so $account is not cut by a variable named $a.
  const names = Object.keys(ctx.variables ?? {}).sort((a, b) => b.length - a.length);
  for (const name of names) {
    const text = formatValue(ctx.variables![name]);
    q = q.split(`\${${name}}`).join(text).split(`[[${name}]]`).join(text);
    q = q.replace(new RegExp(`\\$${name}(?![A-Za-z0-9_])`, 'g'), () => text);
  }
  const left = /\$(?!__)[A-Za-z_][A-Za-z0-9_]*|\$__[a-z_]+|\[\[[^\]]+\]\]/.exec(q);
  if (left) throw new Error(`unexpanded Grafana variable ${left[0]} in: ${q}`);
  return q;
}

/**
 * A panel's time range: the dashboard's, unless the panel overrides it with `timeFrom`
 * (`now/d` = today so far, `now/M` = this month so far, `now-6h` = the last 6 hours).
 * `now/d` and `now/M` are cut in UTC here; Grafana cuts them in the dashboard's zone.
 */
export function panelRange(nowMs: number, dashboardFromMs: number, timeFrom?: string): { fromMs: number; toMs: number } {
  if (!timeFrom) return { fromMs: dashboardFromMs, toMs: nowMs };
  const d = new Date(nowMs);
  if (timeFrom === 'now/d') return { fromMs: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()), toMs: nowMs };
  if (timeFrom === 'now/M') return { fromMs: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1), toMs: nowMs };
  const rel = /^now-(.+)$/.exec(timeFrom);
  if (rel) return { fromMs: nowMs - parseDuration(rel[1]), toMs: nowMs };
  return { fromMs: nowMs - parseDuration(timeFrom), toMs: nowMs };
}
