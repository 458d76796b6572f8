import type { Sample } from './sample.ts';

/**
 * `submeter collect --test` for people (issue 16): one row per meter with energy in kWh,
 * power, voltage and current (per phase on three-phase meters) and the meter's own tariff
 * registers; the line protocol stays available with `--format lp`. Columns no meter has are
 * left out; a meter that could not be read gets a row with its error. kWh is the register
 * as the meter shows it (raw); `x` is the multiplier (CT x PT, billing.md section 11) the
 * site file puts on it now, shown where it is not 1, so an installer checks both.
 */
export function sampleTable(samples: readonly Sample[], errors: Readonly<Record<string, string>> = {}, multiplier: (meter: string, t: number) => number = () => 1): string {
  const head = ['meter', 'kWh', 'x', 'W', 'V', 'A', 'PF', 'Hz', 'L1 / L2 / L3 (V A W)', 'tariff registers (kWh)'];
  const rows = samples.map((s) => [
    s.meter,
    (s.wh / 1000).toFixed(3),
    multiplier(s.meter, s.time) === 1 ? '' : String(multiplier(s.meter, s.time)),
    num(s.w, 1),
    num(s.v, 1),
    num(s.a, 3),
    num(s.pf, 3),
    num(s.hz, 2),
    s.phases ? s.phases.map((p) => `${num(p.v, 1)} ${num(p.a, 2)} ${num(p.w, 0)}`).join(' / ') : '',
    s.tariffWh ? ([1, 2, 3, 4] as const).filter((n) => s.tariffWh![n] !== undefined).map((n) => `T${n} ${(s.tariffWh![n]! / 1000).toFixed(2)}`).join('  ') : '',
  ]);
  const cols = head.map((_, i) => i).filter((i) => i < 2 || rows.some((r) => r[i] !== '' && r[i] !== '-'));
  const widths = cols.map((i) => Math.max(head[i].length, ...rows.map((r) => r[i].length)));
  // Text columns left-aligned, numbers right-aligned.
  const left = (i: number) => i === 0 || i >= 8;
  const line = (cells: string[]) =>
    cols
      .map((i, k) => (left(i) ? cells[i].padEnd(widths[k]) : cells[i].padStart(widths[k])))
      .join('  ')
      .trimEnd();
  const out = [line(head), ...rows.map(line)];
  const meterWidth = widths[0];
  for (const [meter, err] of Object.entries(errors)) out.push(`${meter.padEnd(meterWidth)}  NOT READ: ${err}`);
  return `${out.join('\n')}\n`;
}

function num(x: number | undefined, places: number): string {
  return x === undefined ? '-' : x.toFixed(places);
}
