import type { Meter } from '../site/model.ts';
import type { AcceptedSeries, QualityFlag, RawSeries } from '../types.ts';
import { kwhText } from '../units.ts';

/**
 * billing.md section 2: from one meter's readings (sorted by time) to accepted readings
 * and interval energy. Integers (Wh, ms) throughout; BigInt only for the power check when
 * its products leave the safe range.
 */

const SAFE = Number.MAX_SAFE_INTEGER;

/** True when delta Wh over dt ms means a mean power strictly above maxW watts. */
export function overPower(deltaWh: number, dtMs: number, maxW: number): boolean {
  // mean W = delta * 3.6e6 / dt  >  maxW  <=>  delta * 3.6e6 > maxW * dt
  const lhs = deltaWh * 3_600_000;
  const rhs = maxW * dtMs;
  if (lhs <= SAFE && rhs <= SAFE) return lhs > rhs;
  return BigInt(deltaWh) * 3_600_000n > BigInt(maxW) * BigInt(dtMs);
}

const seconds = (ms: number) => `${ms / 1000} s`;

/**
 * Applies the counter rules to a meter's sorted raw readings.
 * @param multiplier CT x PT ratio in force over these readings (billing.md section 11):
 *   each accepted delta is the raw register delta times it, in whole Wh; the spike rule
 *   judges that primary energy against max_kw, rollover and reset the raw register.
 */
export function acceptReadings(meter: Meter, raw: RawSeries, multiplier = 1): AcceptedSeries {
  const n = raw.time.length;
  const time = new Float64Array(n);
  const wh = new Float64Array(n);
  const delta = new Float64Array(n);
  const flags: QualityFlag[] = [];
  const id = meter.id;
  const mod = meter.registerModulusWh;
  const maxW = meter.maxW;
  const maxGap = meter.maxGapMs;
  let k = 0; // accepted count

  // The current spike run (rule 2): up to 2 pending dropped readings.
  let run = 0;
  let runT0 = 0;
  let runW0 = 0;
  let runT1 = 0;
  let runW1 = 0;

  const accept = (t: number, w: number, d: number) => {
    if (k > 0 && t - time[k - 1] > maxGap) {
      flags.push({ meter: id, time: time[k - 1], kind: 'gap', detail: `${seconds(t - time[k - 1])} between accepted readings exceeds max_gap ${seconds(maxGap)}`, until: t });
    }
    time[k] = t;
    wh[k] = w;
    delta[k] = d;
    k++;
  };

  const src = raw.time;
  const val = raw.wh;
  let i = 0;
  while (i < n) {
    const t = src[i];
    let w = val[i];
    // Rule 1: one reading per instant; differing values keep the largest, one conflict flag.
    let j = i + 1;
    if (j < n && src[j] === t) {
      const values = new Set<number>([w]);
      while (j < n && src[j] === t) {
        values.add(val[j]);
        if (val[j] > w) w = val[j];
        j++;
      }
      if (values.size > 1) {
        const sorted = [...values].sort((x, y) => x - y).map(kwhText);
        flags.push({ meter: id, time: t, kind: 'conflict', detail: `${values.size} different readings at one instant (${sorted.join(', ')} kWh): kept the largest` });
      }
    }
    i = j;

    if (k === 0) {
      accept(t, w, 0);
      continue;
    }
    const t0 = time[k - 1];
    const e0 = wh[k - 1];
    if (w >= e0) {
      const d = w - e0;
      if (!overPower(d * multiplier, t - t0, maxW)) {
        run = 0; // a shorter run followed by an accepted reading stays dropped
        accept(t, w, d * multiplier);
        continue;
      }
      flags.push({ meter: id, time: t, kind: 'spike', detail: `${kwhText(w)} kWh is ${kwhText(d)} kWh above the last accepted reading in ${seconds(t - t0)}, above max_kw ${meter.maxKw}: dropped` });
      // Rule 2: the run continues while not lower than the previous dropped reading and within max_kw from it.
      const prevT = run === 2 ? runT1 : runT0;
      const prevW = run === 2 ? runW1 : runW0;
      if (run > 0 && w >= prevW && !overPower((w - prevW) * multiplier, t - prevT, maxW)) {
        if (run === 1) {
          run = 2;
          runT1 = t;
          runW1 = w;
          continue;
        }
        // Third of a run: its first reading is the new baseline, the 2nd and 3rd are accepted from it.
        run = 0;
        flags.push({ meter: id, time: runT0, kind: 'reset', detail: `3 consecutive readings above max_kw from ${kwhText(e0)} kWh: ${kwhText(runW0)} kWh is the new baseline, no energy billed before it` });
        accept(runT0, runW0, 0);
        accept(runT1, runW1, (runW1 - runW0) * multiplier);
        accept(t, w, (w - runW1) * multiplier);
        continue;
      }
      run = 1;
      runT0 = t;
      runW0 = w;
      continue;
    }
    // Rule 3: the register went down.
    run = 0;
    if (e0 * 10 >= 9 * mod && w * 10 < mod) {
      const d = (mod - e0 + w) * multiplier;
      flags.push({ meter: id, time: t, kind: 'rollover', detail: `register ${kwhText(e0)} -> ${kwhText(w)} kWh past modulus ${kwhText(mod)} kWh: ${kwhText(d)} kWh${multiplier !== 1 ? ` (register x ${multiplier})` : ''}` });
      accept(t, w, d);
    } else {
      flags.push({ meter: id, time: t, kind: 'reset', detail: `register ${kwhText(e0)} -> ${kwhText(w)} kWh: reset or replacement, new baseline, no energy billed` });
      accept(t, w, 0);
    }
  }
  return { meter: id, time: time.subarray(0, k), wh: wh.subarray(0, k), delta: delta.subarray(0, k), flags };
}
