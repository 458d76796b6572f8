import type { Site } from '../../core/index.ts';
import { START, WAKEUP, decodeFrame, scanFrame } from '../../collector/wire.ts';
import type { FrameMatch, SerialBusContext, SerialFrameHandler } from '../serial-server.ts';
import type { SimulatedMeter } from '../simulated-meter.ts';
import { SimDlt645Meter } from './meter.ts';
import type { MeterState } from './meter.ts';

export interface Dlt645HandlerOptions {
  /** The site, for the meters' TOU tariff registers and clock time zone. */
  readonly site: Site;
  /** Extra turnaround per reply, ms, on top of the serial server's line timing. @defaultValue 0 */
  readonly turnaroundMs?: number;
  /**
   * Remote control (issue 13): the meters' control password (level + 6 digits; one for
   * all, or by meter id) and the error word they answer refusals with. Meters marked
   * `relay: esam` in the site file refuse plaintext commands.
   * @defaultValue password '02000000', error word 'state-grid'
   */
  readonly control?: { readonly password?: string | Readonly<Record<string, string>>; readonly errorWord?: 'state-grid' | 'standard' };
}

const isBcdOrWildcard = (b: number) => b === 0xaa || ((b & 0x0f) <= 9 && b >> 4 <= 9);

/**
 * DL/T 645-2007 on the simulator's serial buses (sim/serial-server.ts), beside Modbus RTU
 * on the same line. The DL/T 645 meters of the site answer from the same SimulatedMeter
 * values and injected faults as Modbus meters; each gets a SimDlt645Meter for the DL/T 645
 * specifics (address, tariff registers, clock) and its own switches for slow, corrupt or
 * silent replies (`handler.meter(id).faults`).
 *
 * Register `dlt645Handler({ site })` with `startSimulator({ serialProtocols })` or
 * `sim.registerSerialProtocol`.
 */
export class Dlt645SerialHandler implements SerialFrameHandler {
  readonly name = 'dlt645';
  private readonly opts: Dlt645HandlerOptions;
  private readonly views = new Map<SimulatedMeter, SimDlt645Meter>();

  constructor(opts: Dlt645HandlerOptions) {
    this.opts = opts;
  }

  /** The DL/T 645 view of a meter, once the simulator has served a request on its bus. */
  meter(id: string): SimDlt645Meter | undefined {
    for (const [sm, view] of this.views) if (sm.id === id) return view;
    return undefined;
  }

  /**
   * Claims FE.. / 68 .. buffers that can still be a DL/T 645 frame. It gives a buffer up
   * ('none') as soon as a byte rules a frame out (an address byte that is neither BCD nor
   * AA, no second 68 at offset 7), so a Modbus frame for unit 0x68 reaches the Modbus
   * handler. A frame-shaped buffer with a bad checksum is claimed and then ignored, as a
   * meter ignores a corrupt request.
   */
  match(buf: Buffer): FrameMatch {
    let s = 0;
    while (s < buf.length && buf[s] === WAKEUP) s++;
    if (s === buf.length) return s === 0 ? 'none' : 'incomplete';
    if (buf[s] !== START) return 'none';
    for (let i = 1; i <= 6 && s + i < buf.length; i++) if (!isBcdOrWildcard(buf[s + i])) return 'none';
    if (s + 7 < buf.length && buf[s + 7] !== START) return 'none';
    const step = scanFrame(buf, 0);
    if (step.kind === 'frame') return { length: step.end };
    if (step.kind === 'need-more') return 'incomplete';
    if (step.error.kind === 'bad-checksum') return { length: step.resume };
    return 'none';
  }

  async handle(frame: Buffer, bus: SerialBusContext): Promise<Buffer | null> {
    const decoded = decodeFrame(frame);
    if (!decoded.ok) return null;
    const ours = bus.meters.filter((m) => m.meter.connection?.protocol === 'dlt645');
    const alone = ours.length === 1;
    let reply: { bytes: Uint8Array; delayMs: number } | undefined;
    for (const sm of ours) {
      const view = this.view(sm);
      if (!view.isAddressedBy(decoded.value, alone)) {
        view.handle(decoded.value, alone); // broadcasts (time sync) reach every meter
        continue;
      }
      const fault = sm.takeRequestFault();
      reply = view.handle(decoded.value, alone, fault);
    }
    if (!reply) return null;
    if (reply.delayMs > 0) await new Promise((r) => setTimeout(r, reply.delayMs));
    return Buffer.from(reply.bytes);
  }

  private view(sm: SimulatedMeter): SimDlt645Meter {
    let v = this.views.get(sm);
    if (v) return v;
    const conn = sm.meter.connection;
    if (conn?.protocol !== 'dlt645') throw new Error(`meter ${sm.id} is not a DL/T 645 meter`);
    v = new SimDlt645Meter({
      address: conn.address,
      site: this.opts.site,
      tariffs: conn.tariffs,
      now: () => sm.read().time,
      source: monotoneSource(sm),
      // Counted from the model's epoch: the registers at an instant are the same whenever the
      // simulator started (the history `simulateReadings` writes agrees with them).
      epoch: sm.epoch,
      turnaroundMs: this.opts.turnaroundMs,
      control: {
        relay: sm.relay,
        password: typeof this.opts.control?.password === 'object' ? this.opts.control.password[sm.id] : this.opts.control?.password,
        errorWord: this.opts.control?.errorWord,
        esam: sm.meter.relay === 'esam',
      },
    });
    this.views.set(sm, v);
    return v;
  }
}

export function dlt645Handler(opts: Dlt645HandlerOptions): Dlt645SerialHandler {
  return new Dlt645SerialHandler(opts);
}

/**
 * The SimulatedMeter's register shows injected rollovers, resets and spikes; the tariff
 * registers must only see real consumption. So they advance on the register's increments,
 * wrapped at the modulus, and skip jumps no load could make (a rollover fault setting the
 * register near its modulus, a reset to zero).
 */
function monotoneSource(sm: SimulatedMeter): (ms: number, opts: { readonly energyRead: boolean }) => MeterState {
  const modulus = sm.meter.registerModulusWh;
  let last: { wh: number; time: number } | undefined;
  let total = 0;
  return (ms, { energyRead }) => {
    const r = sm.read({ time: ms });
    if (!last) total = r.wh;
    else {
      let d = r.wh - last.wh;
      if (d < 0 && -d > modulus / 2) d += modulus; // the register wrapped
      const plausible = (sm.meter.maxW * Math.max(0, r.time - last.time)) / 3_600_000 + 1000;
      if (d > 0 && d <= plausible) total += d;
    }
    last = { wh: r.wh, time: r.time };
    const shown = energyRead ? sm.read({ time: ms, energyRead: true }).wh : r.wh;
    return { totalWh: total, registerWh: shown, w: r.w, v: r.v, a: r.a };
  };
}
