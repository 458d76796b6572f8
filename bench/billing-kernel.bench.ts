import { acceptReadings, parseSiteYaml, splitSeries, buildCalendar } from '../core/index.ts';

/**
 * Billing kernel (issue 3): readings per second per core for reading-to-TOU-bucket
 * splitting (billing.md section 3: linear interpolation in integer Wh at every 15-minute
 * and TOU cut), against the goal of 5 million/s. One thread, so the figure is per core.
 * Also timed: the counter rules (section 2) + split together, and a baseline that does
 * the same split with BigInt on every interval (what "integers on the hot path" saves).
 *
 * Run: npx tsx bench/billing-kernel.bench.ts [meters]   (default 300 meters x 1 month of 1-minute readings)
 */

const GOAL = 5_000_000;
const meters = Number(process.argv[2] ?? 300);
const site = parseSiteYaml(`site: { id: bench, timezone: Asia/Shanghai }
meters:
  - { id: M, role: master }
tariffs:
  - id: t
    versions:
      - effective_from: 2026-01-01
        prices: { sharp: 1.5, peak: 1.05, flat: 0.7, valley: 0.35 }
        schedule:
          - periods:
              - { from: "00:00", to: "07:00", period: valley }
              - { from: "07:00", to: "08:00", period: flat }
              - { from: "08:00", to: "11:00", period: peak }
              - { from: "11:00", to: "18:00", period: flat }
              - { from: "18:00", to: "19:00", period: peak }
              - { from: "19:00", to: "21:00", period: sharp }
              - { from: "21:00", to: "23:00", period: peak }
              - { from: "23:00", to: "24:00", period: valley }
`);
const cal = buildCalendar(site, '2026-10-01', '2026-11-01', 15);
const minutes = 31 * 1440 - 1; // all inside the calendar, so the conservation check is exact
const t0 = cal.start[0];

// One month of 1-minute readings per meter, with jitter so intervals straddle cuts.
const series = Array.from({ length: meters }, (_, m) => {
  const time = new Float64Array(minutes);
  const wh = new Float64Array(minutes);
  let e = 1_000_000 + m;
  for (let i = 0; i < minutes; i++) {
    time[i] = t0 + i * 60_000 + ((i * 7919 + m * 104729) % 20_000) - 10_000 * (i > 0 ? 1 : 0);
    e += (i * 31 + m * 17) % 400;
    wh[i] = e;
  }
  return { time, wh };
});
const meter = site.meters[0];
const accepted = series.map((s) => acceptReadings({ ...meter, maxW: 100_000_000 }, s));
const readings = meters * (minutes - 1);

function bigintSplit(time: Float64Array, delta: Float64Array, start: Float64Array, segs: number, out: Float64Array): void {
  let j = 0;
  for (let i = 1; i < time.length; i++) {
    const d = BigInt(delta[i]);
    const a = time[i - 1];
    const b = time[i];
    while (start[j + 1] <= a) j++;
    const dt = BigInt(b - a);
    let prev = 0n;
    for (let k = j; k < segs && start[k] < b; k++) {
      const end = start[k + 1] < b ? start[k + 1] : b;
      const e = (2n * d * BigInt(end - a) + dt) / (2n * dt);
      out[k] += Number(e - prev);
      prev = e;
    }
  }
}

function time(label: string, rows: number, fn: () => void, rounds = 5): { label: string; perSec: number } {
  fn(); // warm-up
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const s = performance.now();
    fn();
    best = Math.min(best, performance.now() - s);
  }
  const perSec = rows / (best / 1000);
  process.stderr.write(`[bench] ${label}: ${(perSec / 1e6).toFixed(2)} M readings/s (best of ${rounds}, ${best.toFixed(0)} ms)\n`);
  return { label, perSec };
}

const out = new Float64Array(cal.segments);
let checksum = 0;
const split = time('split into 15-min TOU buckets', readings, () => {
  out.fill(0);
  for (const a of accepted) splitSeries(a, cal, out);
  checksum = out.reduce((x, y) => x + y, 0);
});
const full = time('counter rules + split', readings, () => {
  out.fill(0);
  for (const s of series) splitSeries(acceptReadings({ ...meter, maxW: 100_000_000 }, s), cal, out);
});
const few = accepted.slice(0, Math.max(1, Math.floor(meters / 10)));
const big = time('baseline: BigInt on every interval', few.length * (minutes - 1), () => {
  out.fill(0);
  for (const a of few) bigintSplit(a.time, a.delta, cal.start, cal.segments, out);
}, 2);
const expected = accepted.reduce((s, a) => s + a.delta.reduce((x, y) => x + y, 0), 0);
if (checksum !== expected) throw new Error(`conservation broken: ${checksum} != ${expected}`);

const row = (r: { label: string; perSec: number }, vs: string, ratio: number) => `| ${r.label} | ${(r.perSec / 1e6).toFixed(2)} | ${vs} | ${ratio.toFixed(2)} |`;
process.stdout.write(
  [
    '## Billing kernel: readings to 15-minute TOU buckets (per core)',
    '',
    `${meters} meters x one month of 1-minute readings (${(readings / 1e6).toFixed(1)} M intervals), Asia/Shanghai, 8 TOU pieces a day plus the 15-minute grid (${cal.segments} segments). One thread; best of 5 rounds. Energy is conserved (checked).`,
    `Reproduce: \`npx tsx bench/billing-kernel.bench.ts ${meters}\``,
    '',
    '| kernel | M readings/s | compared with | ratio |',
    '|---|---|---|---|',
    row(split, 'goal 5 M/s', split.perSec / GOAL),
    row(full, 'goal 5 M/s', full.perSec / GOAL),
    row(big, 'integer kernel', big.perSec / split.perSec),
    '',
  ].join('\n'),
);
