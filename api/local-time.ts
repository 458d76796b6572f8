/**
 * Local wall-clock helpers for one site zone (billing.md section 3: days and TOU periods
 * are local). Intl only; small and cached, because the live-status route calls them on
 * every request.
 */
const fmts = new Map<string, Intl.DateTimeFormat>();

function fmt(tz: string): Intl.DateTimeFormat {
  let f = fmts.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    fmts.set(tz, f);
  }
  return f;
}

export interface LocalParts {
  readonly date: string;
  /** Minutes after local midnight (wall clock). */
  readonly minute: number;
  /** Offset (local - UTC) in ms. */
  readonly offsetMs: number;
}

export function localParts(utcMs: number, tz: string): LocalParts {
  const sec = Math.floor(utcMs / 1000) * 1000;
  const p: Record<string, string> = {};
  for (const part of fmt(tz).formatToParts(sec)) p[part.type] = part.value;
  const date = `${p.year}-${p.month}-${p.day}`;
  const wall = Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day), Number(p.hour), Number(p.minute), Number(p.second));
  return { date, minute: Number(p.hour) * 60 + Number(p.minute), offsetMs: wall - sec };
}

/** UTC instant of local midnight starting `date` (the earlier one if a fall-back repeats it). */
export function localMidnight(date: string, tz: string): number {
  const wall = Date.parse(`${date}T00:00:00Z`);
  // Two refinements settle the offset; a third would only matter inside a DST gap at
  // midnight, where the first existing instant after it is the answer anyway.
  let t = wall - localParts(wall, tz).offsetMs;
  t = wall - localParts(t, tz).offsetMs;
  if (localParts(t, tz).date !== date) t = wall - localParts(t - 3_600_000, tz).offsetMs;
  return t;
}

/** RFC 3339 at the local offset, seconds precision (billing.md section 6 style). */
export function formatLocal(utcMs: number, tz: string): string {
  const { offsetMs } = localParts(utcMs, tz);
  const iso = new Date(Math.floor(utcMs / 1000) * 1000 + offsetMs).toISOString().slice(0, 19);
  const abs = Math.abs(offsetMs) / 60_000;
  const sign = offsetMs < 0 ? '-' : '+';
  return `${iso}${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

export function nextMonth(month: string): string {
  const [y, m] = month.split('-').map(Number);
  return m === 12 ? `${y + 1}-01` : `${y}-${String(m + 1).padStart(2, '0')}`;
}

export function monthRange(month: string): { from: string; to: string } {
  return { from: `${month}-01`, to: `${nextMonth(month)}-01` };
}
