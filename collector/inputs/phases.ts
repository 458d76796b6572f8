/**
 * Per-phase values of a three-phase meter and the one rule for summarising them (issue 16:
 * a three-phase SDM630 feeding a single-phase load showed the mean of 230.1, 0 and 0 V as
 * 76.7 V). Summaries are taken over live phases only.
 */

import type { PhaseValues } from '../../influx/sample.ts';

/** One phase's instantaneous values (influx/sample.ts: shared with the line builders). */
export type { PhaseValues };

/**
 * A phase below this voltage is dead (not connected, fuse blown, or the meter wired to one
 * phase only). An open phase input reads a few volts to a few tens of volts of induced
 * voltage; a live low-voltage phase stays above 0.78 x 220 V = 172 V, the level below which
 * Chinese meters record loss of voltage (失压, DL/T 614 / the State Grid meter
 * specifications). 50 V separates the two with margin and still counts a deep sag as live.
 */
export const LIVE_PHASE_MIN_V = 50;

export function isLivePhase(p: PhaseValues): boolean {
  return p.v !== undefined && p.v >= LIVE_PHASE_MIN_V;
}

/**
 * The sample's summary fields from its phases: `v` is the mean voltage of the live phases,
 * `a` the sum of their currents. With no live phase (all dead, or no voltages reported)
 * every phase that reported counts, so the summary still shows what the meter shows.
 * Values are rounded to 7 significant digits, below every meter's resolution.
 */
export function summarisePhases(phases: readonly PhaseValues[]): { v?: number; a?: number } {
  const live = phases.filter(isLivePhase);
  const use = live.length > 0 ? live : phases;
  const volts = use.map((p) => p.v).filter((x): x is number => x !== undefined);
  const amps = use.map((p) => p.a).filter((x): x is number => x !== undefined);
  const out: { v?: number; a?: number } = {};
  if (volts.length) out.v = round7(volts.reduce((s, x) => s + x, 0) / volts.length);
  if (amps.length) out.a = round7(amps.reduce((s, x) => s + x, 0));
  return out;
}

const round7 = (x: number) => Number(x.toPrecision(7));
