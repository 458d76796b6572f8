/**
 * Faults the simulator injects per meter, at start (`startSimulator({ faults })`) or at run
 * time (`sim.injectFault(meter, fault)`). Each is observable on the wire:
 *
 * - `no-answer`: the meter stays silent (the client times out).
 * - `crc`: the reply is sent with a corrupted CRC (Modbus RTU) or checksum (serial
 *   protocols that register a handler); over Modbus TCP, which has no CRC, it is a no-answer.
 * - `exception`: a Modbus exception reply (default 04 server device failure); serial
 *   handlers map it to their own error reply (DL/T 645: an error frame).
 * - `rollover`: the energy register jumps to `marginWh` below the meter's modulus
 *   (register_modulus_kwh) and wraps through zero as energy accrues. A state change.
 * - `reset`: the energy register restarts from 0 (meter replaced or cleared). A state change.
 * - `spike`: the next `count` energy reads show the register plus `wh` (a corrupt read),
 *   then the true value again.
 * - `phase-loss`: a three-phase meter loses `phases` (default L2 and L3: a single-phase
 *   load on a three-phase meter, or blown fuses): they read 0 V and 0 A and the load moves
 *   to the phases left. A state change, until cleared with `clearFaults`.
 * - `relay-stuck`: the load relay's contacts no longer move: commands are accepted and the
 *   command state changes, the power does not (issue 13's mismatch alarm). Cleared by
 *   clearing the meter's faults.
 *
 * `count` for no-answer, crc and exception is how many requests are affected
 * (default: all, until cleared).
 */
export type Fault =
  | { readonly kind: 'no-answer'; readonly count?: number }
  | { readonly kind: 'crc'; readonly count?: number }
  | { readonly kind: 'exception'; readonly code?: number; readonly count?: number }
  | { readonly kind: 'rollover'; readonly marginWh?: number }
  | { readonly kind: 'reset' }
  | { readonly kind: 'spike'; readonly wh?: number; readonly count?: number }
  | { readonly kind: 'phase-loss'; readonly phases?: readonly (1 | 2 | 3)[] }
  | { readonly kind: 'relay-stuck' };

export type FaultKind = Fault['kind'];
export const FAULT_KINDS: readonly FaultKind[] = ['no-answer', 'crc', 'exception', 'rollover', 'reset', 'spike', 'phase-loss', 'relay-stuck'];

/** A request-level fault in force for the next request (what a server must do instead of answering normally). */
export type RequestFault = { readonly kind: 'no-answer' } | { readonly kind: 'crc' } | { readonly kind: 'exception'; readonly code: number };

/** @defaultValue 2000 Wh below the modulus: a busy meter wraps within minutes of model time. */
export const DEFAULT_ROLLOVER_MARGIN_WH = 2_000;
/** @defaultValue 1 MWh: far above any plausible interval, so billing.md's spike rule fires. */
export const DEFAULT_SPIKE_WH = 1_000_000;

/** Parses the CLI/env form `kind[:arg][xcount]`, e.g. `no-answer`, `exception:2`, `spike:500000x3`, `rollover:100`, `phase-loss:23` (the phases lost). */
export function parseFault(text: string): Fault {
  const m = /^([a-z-]+)(?::(\d+))?(?:x(\d+))?$/.exec(text.trim());
  const kind = m?.[1] as FaultKind | undefined;
  if (!m || !kind || !FAULT_KINDS.includes(kind)) {
    throw new Error(`bad fault '${text}': expected one of ${FAULT_KINDS.join(', ')}, optionally ':N' (exception code, spike Wh, rollover margin Wh, lost phases) and 'xCOUNT'`);
  }
  const arg = m[2] === undefined ? undefined : Number(m[2]);
  const count = m[3] === undefined ? undefined : Number(m[3]);
  switch (kind) {
    case 'no-answer':
    case 'crc':
      return count === undefined ? { kind } : { kind, count };
    case 'exception':
      return { kind, ...(arg !== undefined && { code: arg }), ...(count !== undefined && { count }) };
    case 'rollover':
      return arg === undefined ? { kind } : { kind, marginWh: arg };
    case 'reset':
    case 'relay-stuck':
      return { kind };
    case 'spike':
      return { kind, ...(arg !== undefined && { wh: arg }), ...(count !== undefined && { count }) };
    case 'phase-loss':
      return m[2] === undefined ? { kind } : { kind, phases: [...m[2]].map((d) => Number(d) as 1 | 2 | 3) };
  }
}

export function validateFault(meter: string, f: Fault): void {
  const bad = (why: string): never => {
    throw new Error(`fault for meter ${meter}: ${why}`);
  };
  if (!FAULT_KINDS.includes(f.kind)) bad(`unknown kind '${(f as { kind: string }).kind}' (known: ${FAULT_KINDS.join(', ')})`);
  if ('count' in f && f.count !== undefined && !(Number.isInteger(f.count) && f.count > 0)) bad(`count must be a positive integer, got ${f.count}`);
  if (f.kind === 'exception' && f.code !== undefined && !(Number.isInteger(f.code) && f.code >= 1 && f.code <= 0x7f)) bad(`exception code must be 1..127, got ${f.code}`);
  if (f.kind === 'spike' && f.wh !== undefined && !(Number.isInteger(f.wh) && f.wh > 0)) bad(`spike wh must be a positive integer, got ${f.wh}`);
  if (f.kind === 'phase-loss' && f.phases !== undefined && !(f.phases.length > 0 && f.phases.length < 3 && f.phases.every((p) => p === 1 || p === 2 || p === 3))) bad(`phase-loss phases must be one or two of 1, 2, 3, got ${JSON.stringify(f.phases)}`);
  if (f.kind === 'rollover' && f.marginWh !== undefined && !(Number.isInteger(f.marginWh) && f.marginWh > 0)) bad(`rollover marginWh must be a positive integer, got ${f.marginWh}`);
}
