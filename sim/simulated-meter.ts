import type { RegisterMap } from '../collector/wire.ts';
import { encodeRegisters, registerMap } from '../collector/wire.ts';
import type { Meter } from '../core/index.ts';
import type { Fault, RequestFault } from './faults.ts';
import { DEFAULT_ROLLOVER_MARGIN_WH, DEFAULT_SPIKE_WH, validateFault } from './faults.ts';
import type { SiteLoadModel } from './load-model.ts';
import { EXCEPTION, answerPdu, exceptionPdu, requestCovers } from './modbus-pdu.ts';
import { SimRelay } from './relay.ts';

/** What a simulated meter shows at one instant, faults applied. */
export interface MeterReading {
  readonly meter: string;
  /** Simulated time, epoch ms. */
  readonly time: number;
  /** Energy register, integer Wh, within [0, modulus). */
  readonly wh: number;
  readonly w: number;
  readonly v: readonly number[];
  readonly a: readonly number[];
  readonly pf: number;
  readonly hz: number;
}

/** What a server does with one Modbus request. */
export type ModbusOutcome = { readonly kind: 'reply'; readonly pdu: Buffer } | { readonly kind: 'silent' } | { readonly kind: 'corrupt'; readonly pdu: Buffer };

/**
 * One meter of the site as the wire sees it: the load model's values plus the injected
 * faults. Protocol servers (Modbus here, DL/T 645 through a serial handler) ask it for
 * the fault of each request (`takeRequestFault`) and for its values (`read`).
 */
export class SimulatedMeter {
  readonly meter: Meter;
  /** The register map, for Modbus meters. */
  readonly map: RegisterMap | undefined;
  /** Requests addressed to this meter, and those answered normally. */
  requests = 0;
  answered = 0;
  private readonly model: SiteLoadModel;
  private readonly now: () => number;
  private offsetWh = 0;
  private transient: { fault: RequestFault; remaining: number }[] = [];
  private spikes: { wh: number; remaining: number }[] = [];
  /** Phases lost by a phase-loss fault (1-based). */
  private lostPhases = new Set<number>();
  private readonly energyAddress: number | undefined;
  /** The meter's load relay (issue 13): open contacts stop the load. */
  readonly relay: SimRelay;

  constructor(meter: Meter, model: SiteLoadModel, now: () => number) {
    this.meter = meter;
    this.model = model;
    this.now = now;
    this.relay = new SimRelay((t) => model.snapshot(meter.id, t).totalWh, now);
    const c = meter.connection;
    this.map = c && c.protocol !== 'dlt645' ? registerMap(c.map) : undefined;
    this.energyAddress = this.map?.fields.find((f) => f.quantity === 'energy_import')?.address;
  }

  get id(): string {
    return this.meter.id;
  }

  /** The load model's epoch: the meter's counters start there (a DL/T 645 meter's tariff registers too). */
  get epoch(): number {
    return this.model.epoch;
  }

  /** Injects a fault now (see faults.ts for what each does on the wire). */
  inject(f: Fault): void {
    validateFault(this.meter.id, f);
    const modulus = this.meter.registerModulusWh;
    const total = this.model.snapshot(this.meter.id, this.now()).totalWh;
    switch (f.kind) {
      case 'no-answer':
      case 'crc':
        this.transient.push({ fault: { kind: f.kind }, remaining: f.count ?? Infinity });
        break;
      case 'exception':
        this.transient.push({ fault: { kind: 'exception', code: f.code ?? EXCEPTION.SERVER_DEVICE_FAILURE }, remaining: f.count ?? Infinity });
        break;
      case 'rollover': {
        const margin = Math.min(f.marginWh ?? DEFAULT_ROLLOVER_MARGIN_WH, modulus - 1);
        this.offsetWh = modulus - margin - total;
        break;
      }
      case 'reset':
        this.offsetWh = -total;
        break;
      case 'spike':
        this.spikes.push({ wh: f.wh ?? DEFAULT_SPIKE_WH, remaining: f.count ?? 1 });
        break;
      case 'phase-loss':
        this.lostPhases = new Set(f.phases ?? [2, 3]);
        break;
      case 'relay-stuck':
        this.relay.stuck = true;
        break;
    }
  }

  /** Clears request faults and pending spikes. Rollover and reset offsets stay: a meter's register does not jump back. */
  clearFaults(): void {
    this.transient = [];
    this.spikes = [];
    this.lostPhases.clear();
    this.relay.stuck = false;
  }

  /** The fault in force for the request arriving now, consuming one of its count. */
  takeRequestFault(): RequestFault | undefined {
    this.requests++;
    while (this.transient.length > 0) {
      const t = this.transient[0];
      if (t.remaining <= 0) {
        this.transient.shift();
        continue;
      }
      t.remaining--;
      return t.fault;
    }
    return undefined;
  }

  /**
   * Values now. `energyRead: true` marks a read of the energy register: it consumes one
   * pending spike (so a spike shows on exactly the reads the fault asked for).
   */
  read(opts: { energyRead?: boolean; time?: number } = {}): MeterReading {
    const t = opts.time ?? this.now();
    const s = this.model.snapshot(this.meter.id, t);
    const modulus = this.meter.registerModulusWh;
    // Energy the load did not draw while the relay was open (the model counts on regardless).
    const missing = this.relay.missingWh(t, s.totalWh);
    let wh = (((s.totalWh - missing + this.offsetWh) % modulus) + modulus) % modulus;
    if (opts.energyRead && this.spikes.length > 0) {
      const spike = this.spikes[0];
      wh = (wh + spike.wh) % modulus;
      if (--spike.remaining <= 0) this.spikes.shift();
    }
    let { v, a } = s;
    if (this.lostPhases.size > 0 && v.length === 3) {
      // The lost phases read 0 V and 0 A; the load is carried by the phases left, in equal shares.
      const live = [0, 1, 2].filter((i) => !this.lostPhases.has(i + 1));
      v = v.map((x, i) => (live.includes(i) ? x : 0));
      a = v.map((x, i) => (live.includes(i) ? Math.round((s.w / live.length / (x * s.pf)) * 1000) / 1000 : 0));
    }
    // Open contacts (issue 13): the voltage stays on the meter's terminals, no current flows.
    if (!this.relay.closedAt(t)) return { meter: this.meter.id, time: t, wh, w: 0, v, a: a.map(() => 0), pf: s.pf, hz: s.hz };
    return { meter: this.meter.id, time: t, wh, w: s.w, v, a, pf: s.pf, hz: s.hz };
  }

  /** The Modbus register image now (no fault consumed). */
  registers(opts: { energyRead?: boolean } = {}): Map<number, number> {
    if (!this.map) throw new Error(`meter ${this.meter.id} is not a Modbus meter`);
    const r = this.read(opts);
    const image = encodeRegisters(this.map.name, { wh: r.wh, w: r.w, v: r.v, a: r.a, pf: r.pf, hz: r.hz });
    const relay = this.map.relay;
    if (relay.kind === 'holding') image.set(relay.status.address, this.relay.state().closed ? relay.status.closed : relay.status.open);
    return image;
  }

  /** Handles one Modbus request PDU addressed to this meter: faults first, then the map. */
  modbus(pdu: Buffer): ModbusOutcome {
    if (!this.map) throw new Error(`meter ${this.meter.id} is not a Modbus meter`);
    const fault = this.takeRequestFault();
    if (fault?.kind === 'no-answer') return { kind: 'silent' };
    if (fault?.kind === 'exception') return { kind: 'reply', pdu: exceptionPdu(pdu[0] ?? 0, fault.code) };
    const write = this.relayWrite(pdu);
    if (write) return write;
    const energyRead = this.energyAddress !== undefined && requestCovers(pdu, this.energyAddress);
    const reply = answerPdu(this.map, pdu, () => this.registers({ energyRead }));
    if (fault?.kind === 'crc') return { kind: 'corrupt', pdu: reply };
    if ((reply[0] & 0x80) === 0) this.answered++;
    return { kind: 'reply', pdu: reply };
  }

  /**
   * A write to the map's relay register, answered as the meter does: the value that trips
   * or closes it (function 16, as the DDS238 takes; 06 on a meter that takes 16 only gets
   * exception 01 from answerPdu), exception 03 for any other value. Undefined when the
   * request is not a relay write.
   */
  private relayWrite(pdu: Buffer): ModbusOutcome | undefined {
    const relay = this.map?.relay;
    if (relay?.kind !== 'holding') return undefined;
    const fc = pdu[0];
    let value: number;
    if (fc === 16 && relay.write === 16 && pdu.length === 8 && pdu.readUInt16BE(1) === relay.address && pdu.readUInt16BE(3) === 1 && pdu[5] === 2) value = pdu.readUInt16BE(6);
    else if (fc === 6 && relay.write === 6 && pdu.length === 5 && pdu.readUInt16BE(1) === relay.address) value = pdu.readUInt16BE(3);
    else return undefined;
    this.relay.controlFrames++;
    if (value !== relay.trip && value !== relay.close) return { kind: 'reply', pdu: exceptionPdu(fc, EXCEPTION.ILLEGAL_DATA_VALUE) };
    this.relay.command(value === relay.trip ? 'trip' : 'close-now', this.now());
    this.answered++;
    // 16 echoes address and count; 06 echoes address and value.
    return { kind: 'reply', pdu: fc === 16 ? Buffer.from([16, relay.address >> 8, relay.address & 0xff, 0, 1]) : Buffer.from(pdu) };
  }
}
