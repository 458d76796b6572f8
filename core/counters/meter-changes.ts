import type { Meter, MeterChange } from '../site/model.ts';
import type { AcceptedSeries, QualityFlag, RawSeries } from '../types.ts';
import { kwhText } from '../units.ts';
import { acceptReadings } from './accept.ts';

/**
 * A meter position over its replacements and CT swaps (billing.md section 11, rules 5-6).
 * Its raw readings are cut at each change: readings before `at` are the old register's,
 * readings at or after it the new one's. Each piece gets the counter rules of section 2 on
 * its own, at its own multiplier, framed by the change's declared registers: the old piece
 * ends with the reading (at, final_kwh), so its energy up to the swap is billed, spread over
 * the interval from its last reading as any interval is; the new piece starts from the
 * baseline (at, initial_kwh). No `reset`, no energy lost: a `meter_change` flag instead (and
 * `estimated` when final_kwh was not read off the old meter).
 *
 * The result is one AcceptedSeries: at a change the two pieces meet at the same instant
 * (the old piece's last reading, then the new baseline with delta 0), so the splitter sees
 * a zero-length interval there and nothing else changes downstream. `wh` stays the raw
 * register (it steps down at a replacement); `delta` is primary Wh.
 */

/** The multiplier in force at instant t (the change at exactly t already applies). */
export function multiplierAt(meter: Meter, t: number): number {
  let m = meter.multiplier ?? 1;
  for (const c of meter.changes ?? []) {
    if (c.at <= t) m = c.multiplier;
    else break;
  }
  return m;
}

/** First index i with time[i] >= t (time sorted). */
function lowerBound(time: Float64Array, t: number): number {
  let lo = 0;
  let hi = time.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (time[mid] < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function changeFlags(meter: Meter, c: MeterChange, before: number): QualityFlag[] {
  const mult = c.multiplier !== before ? `, multiplier ${before} -> ${c.multiplier}` : before !== 1 ? `, multiplier ${before}` : '';
  const serial = c.serial !== undefined ? `, new serial ${c.serial}` : '';
  const out: QualityFlag[] = [
    { meter: meter.id, time: c.at, kind: 'meter_change', detail: `register ${kwhText(c.finalWh)} kWh (final${c.estimated ? ', estimated' : ''}) -> ${kwhText(c.initialWh)} kWh (initial)${mult}${serial}` },
  ];
  if (c.estimated) out.push({ meter: meter.id, time: c.at, kind: 'estimated', detail: `final register ${kwhText(c.finalWh)} kWh of the replaced meter was entered by hand, not read` });
  return out;
}

/**
 * The counter rules over a meter position (sorted raw readings).
 * @param historyFromMs where the given readings start to be complete (the workers load a
 *   window): a change before it is not framed (its piece's readings there are all there is,
 *   the first one the baseline), only its multiplier applies. Offline: -Infinity.
 * @param untilMs the rollup's last reading: changes after it wait for readings after them.
 */
export function acceptMeterSeries(meter: Meter, raw: RawSeries, historyFromMs = -Infinity, untilMs = Infinity): AcceptedSeries {
  // A change after untilMs is not framed yet (the workers' rollup: readings so far end
  // there, and its carried state must not run ahead of them); its multiplier not applied.
  const changes = (meter.changes ?? []).filter((c) => c.at <= untilMs);
  const base = meter.multiplier ?? 1;
  if (changes.length === 0) return acceptReadings(meter, raw, base);
  // A window's first reading is the baseline: a change at or before it (or before
  // historyFromMs) has nothing of the old register here to frame. A meter whose first
  // reading comes after historyFromMs has no earlier reading at all (loaders add the last
  // one before their window), so there the changes before it are framed as offline.
  const from = raw.time.length > 0 ? Math.min(historyFromMs, raw.time[0]) : historyFromMs;
  // Pieces: [bound_j, bound_j+1) with the multiplier in force and whether each end is framed.
  const framed = changes.filter((c) => c.at > from);
  const skipped = changes.filter((c) => c.at <= from);
  let mult = skipped.length ? skipped[skipped.length - 1].multiplier : base;
  const parts: AcceptedSeries[] = [];
  const flags: QualityFlag[] = [];
  let start = 0;
  for (let j = 0; j <= framed.length; j++) {
    const next = framed[j];
    const to = next ? lowerBound(raw.time, next.at) : raw.time.length;
    const prev = framed[j - 1];
    const n = to - start + (prev ? 1 : 0) + (next ? 1 : 0);
    const time = new Float64Array(n);
    const wh = new Float64Array(n);
    let k = 0;
    if (prev) {
      time[k] = prev.at;
      wh[k++] = prev.initialWh;
    }
    time.set(raw.time.subarray(start, to), k);
    wh.set(raw.wh.subarray(start, to), k);
    k += to - start;
    if (next) {
      time[k] = next.at;
      wh[k] = next.finalWh;
    }
    parts.push(acceptReadings(meter, { time, wh }, mult));
    if (next) {
      flags.push(...changeFlags(meter, next, mult));
      mult = next.multiplier;
    }
    start = to;
  }
  let total = 0;
  for (const p of parts) total += p.time.length;
  const time = new Float64Array(total);
  const wh = new Float64Array(total);
  const delta = new Float64Array(total);
  let k = 0;
  for (const p of parts) {
    time.set(p.time, k);
    wh.set(p.wh, k);
    delta.set(p.delta, k);
    k += p.time.length;
    flags.push(...p.flags);
  }
  return { meter: meter.id, time, wh, delta, flags };
}
