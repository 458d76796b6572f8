import { FrameScanner } from '../../collector/wire.ts';
import type { SimDlt645Meter, SimReply } from './meter.ts';

/**
 * The DL/T 645 side of a simulated RS485 line: hears every byte on the line (Modbus
 * requests included, which it skips as garbage, as a real DL/T 645 meter's UART does),
 * finds request frames and hands each to the meters. On a mixed bus the Modbus server
 * sees the same bytes and skips ours the same way (bad CRC).
 */
export class Dlt645Line {
  readonly meters: readonly SimDlt645Meter[];
  private readonly scanner = new FrameScanner();

  constructor(meters: readonly SimDlt645Meter[]) {
    const seen = new Set<string>();
    for (const m of meters) {
      if (seen.has(m.address)) throw new Error(`simulated DL/T 645 line: two meters with address ${m.address}`);
      seen.add(m.address);
    }
    this.meters = meters;
  }

  /** Bytes received from the line; returns the replies to send, each after its delay. */
  receive(chunk: Uint8Array): SimReply[] {
    const out: SimReply[] = [];
    const alone = this.meters.length === 1;
    for (const ev of this.scanner.push(chunk)) {
      if (ev.kind !== 'frame') continue; // noise, Modbus frames, corrupt requests: a meter says nothing
      for (const m of this.meters) {
        const r = m.handle(ev.frame, alone);
        if (r) out.push(r);
      }
    }
    return out;
  }
}
