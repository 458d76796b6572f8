import type { Site } from '../../core/index.ts';
import { zoneOf } from '../../core/index.ts';
import {
  BROADCAST_ADDRESS,
  DI,
  FN,
  METER_ERROR,
  decodeControl,
  decodeDi,
  decodeTimeSync,
  encodeBcd,
  encodeValue,
  errorReply,
  formatOf,
  isAddress,
  readAddressReply,
  readReply,
  whToEnergy,
} from '../../collector/wire.ts';
import type { DataId, Frame, MeterDateTime } from '../../collector/wire.ts';
import {
  DAILY_FREEZE_DEPTH,
  compareMeterTime,
  controlErrorReply,
  controlReply,
  decodeControlRequest,
  DI_STATUS_WORD_3,
  encodeStatusWord3,
  FN_CONTROL,
  parseControlPassword,
  refusalWord,
  STATUS3_BIT,
} from '../../collector/wire.ts';
import type { ControlAction, ControlRefusalReason } from '../../collector/wire.ts';
import type { RelayAction, SimRelay } from '../relay.ts';
import { TariffRegisters } from './tariff-registers.ts';
import type { RegisterSnapshot, TariffMapping } from './tariff-registers.ts';

/** What the simulator's load model says about one meter at an instant. */
export interface MeterState {
  /** Cumulative forward active energy, Wh, never decreasing: the tariff registers advance from it. */
  readonly totalWh: number;
  /**
   * The total register as the meter shows it, when it differs from `totalWh` (the
   * simulator's injected rollover, reset or spike). @defaultValue the accumulated total
   */
  readonly registerWh?: number;
  /** Cumulative reverse active energy, Wh. @defaultValue 0 */
  readonly reverseWh?: number;
  /** Total active power, W (negative when exporting). */
  readonly w?: number;
  /** Phase voltages A, B, C in V; a single-phase meter gives one. */
  readonly v?: readonly number[];
  /** Phase currents A, B, C in A. */
  readonly a?: readonly number[];
}

/**
 * Faults a test or the demo can switch on at any time (issue 7: slow replies, corrupt
 * frames, no answer). Mutable on purpose: `meter.faults.silent = true` mid-run.
 */
export interface Dlt645Faults {
  /** Extra delay before every reply, ms (a meter slower than the collector's timeout). */
  delayMs?: number;
  /** Flip the checksum of every reply. */
  corrupt?: boolean;
  /** Never answer (a dead or disconnected meter). */
  silent?: boolean;
}

export interface SimDlt645MeterOptions {
  /** 12-digit address, e.g. "000000001102". */
  readonly address: string;
  /** The load model at an instant; `energyRead` marks a read of the total register (the simulator's spikes show there). */
  readonly source: (ms: number, opts: { readonly energyRead: boolean }) => MeterState;
  readonly now: () => number;
  /** The site: its timezone for the meter clock and its TOU calendar for the tariff registers. */
  readonly site?: Site;
  /** The meter's tariff-register programming. @defaultValue DEFAULT_TARIFF_MAPPING */
  readonly tariffs?: TariffMapping;
  /** Register values at start. @defaultValue the load model's total, spread over the tariffs by the day's TOU layout */
  readonly initial?: RegisterSnapshot;
  /**
   * Where the tariff registers start counting (the load model's epoch): seeded there and
   * advanced to the start, so the registers at an instant do not depend on when the meter
   * was created (a restarted simulator, or the history `simulateReadings` writes, agree).
   * Ignored with `initial`. @defaultValue the start
   */
  readonly epoch?: number;
  /** Meter turnaround before a reply, ms (real meters take 5-45 ms, protocols.md). @defaultValue 0 */
  readonly turnaroundMs?: number;
  readonly faults?: Dlt645Faults;
  /**
   * Model quirks of real meters. `noBlock`: refuses the `00 01 FF 00` block ("no such
   * data"), as some older meters do. `silentUnknown`: does not answer identifiers it lacks
   * at all, instead of sending "no such data".
   */
  readonly quirks?: { readonly noBlock?: boolean; readonly silentUnknown?: boolean };
  /** The load relay and how the meter guards it (issue 13). Without it the meter refuses control commands. */
  readonly control?: SimControlOptions;
  /**
   * The meter's clock: `offsetMs` ahead of true time at start, gaining `driftPpm` parts per
   * million from then on (a quartz clock off by 11.6 ppm gains a second a day). A
   * broadcast time sync resets both to the time it carries. @defaultValue exact
   */
  readonly clock?: { readonly offsetMs?: number; readonly driftPpm?: number };
  /**
   * A broadcast time sync further than this from the meter's own clock is ignored, as the
   * standard requires (DL/T 645-2007, broadcast time sync: applied only within +-5 min).
   * @defaultValue 300000
   */
  readonly timeSyncWindowMs?: number;
}

/** One daily freeze the meter keeps (DL/T 645-2007 05 06 xx NN). */
interface DailyFreeze {
  /** The freeze instant on the meter's own clock, as it reports it. */
  readonly at: { readonly year: number; readonly month: number; readonly day: number; readonly hour: number; readonly minute: number };
  readonly totalWh: number;
  readonly tariffWh: readonly number[];
}

/** How a simulated meter takes remote control commands (1CH). */
export interface SimControlOptions {
  readonly relay: SimRelay;
  /** The meter's control password, level byte + 6 digits (e.g. 02123456). @defaultValue '02000000' */
  readonly password?: string;
  /**
   * Error word of refusals: 'state-grid' answers the 2-byte State Grid 2013 word (deadline,
   * protected, ... told apart) and a 2-byte execution status after 9C; 'standard' answers
   * the one-byte DL/T 645-2007 word, bit 2 for every refusal, as State Grid meters do in
   * that mode. @defaultValue 'state-grid'
   */
  readonly errorWord?: 'state-grid' | 'standard';
  /** The meter demands ESAM-encrypted control: every plaintext command is refused. */
  readonly esam?: boolean;
}

const RELAY_ACTION: Partial<Record<ControlAction, RelayAction>> = { trip: 'trip', closeNow: 'close-now', closePermit: 'close-permit', protectOn: 'protect-on', protectOff: 'protect-off' };
/** State Grid 2013 execution status word after 9C: which command the meter carried out. */
const EXEC_BIT: Record<ControlAction, number> = { closeNow: 0, closePermit: 1, trip: 2, protectOn: 8, protectOff: 9, alarm: 10, alarmOff: 11 };

/** XXXXXX.XX kWh rolls over after 999999.99 kWh, i.e. at 10^9 Wh. */
const register = (wh: number) => whToEnergy(wh % 1_000_000_000);

/** A request-level fault from the simulator (sim/faults.ts RequestFault): silence, bad checksum or an error reply. */
export type RequestFaultLike = { readonly kind: 'no-answer' } | { readonly kind: 'crc' } | { readonly kind: 'exception' };

/** A reply to put on the line after `delayMs`. */
export interface SimReply {
  readonly bytes: Uint8Array;
  readonly delayMs: number;
}

/**
 * One simulated DL/T 645-2007 meter: answers read (11) for the identifiers the codec
 * knows, read-address (13) when asked through the wildcard, takes broadcast time sync (08)
 * without answering, and sends an error reply ("no such data") for anything else it
 * cannot serve, as real meters do.
 */
export class SimDlt645Meter {
  readonly address: string;
  readonly faults: Dlt645Faults;
  /** Requests this meter was addressed by (tests check polling order and counts). */
  requests = 0;
  private readonly registers: TariffRegisters;
  private readonly opts: SimDlt645MeterOptions;
  /** Meter clock minus true time at `clockBase`, ms (set by a time-sync broadcast). */
  private clockOffsetMs = 0;
  private driftPpm = 0;
  private clockBase: number;
  /** Daily freezes, newest first, at most DAILY_FREEZE_DEPTH. */
  private readonly freezes: DailyFreeze[] = [];
  /** Wall-clock ms (meter's clock, site zone) of the next midnight freeze. */
  private nextFreezeWall: number;
  /** Broadcast time syncs ignored for being outside the window. */
  refusedTimeSyncs = 0;

  constructor(opts: SimDlt645MeterOptions) {
    if (!isAddress(opts.address) || opts.address.includes('A')) throw new Error(`simulated DL/T 645 meter: address must be 12 digits, got ${JSON.stringify(opts.address)}`);
    this.opts = opts;
    this.address = opts.address;
    this.faults = { ...opts.faults };
    const start = opts.now();
    this.clockBase = start;
    this.clockOffsetMs = opts.clock?.offsetMs ?? 0;
    this.driftPpm = opts.clock?.driftPpm ?? 0;
    this.nextFreezeWall = this.freezeWallAfter(start);
    const seedAt = opts.initial === undefined && opts.epoch !== undefined && opts.epoch < start ? opts.epoch : start;
    this.registers = opts.initial
      ? new TariffRegisters(opts.site, opts.tariffs, start, opts.initial)
      : TariffRegisters.seeded(opts.site, opts.tariffs, seedAt, opts.source(seedAt, { energyRead: false }).totalWh);
    if (seedAt < start) this.advanceRegisters(start, opts.source);
  }

  /**
   * Advances the registers to `t` through every period change before it (each step then
   * lies in one period: the registers do not depend on when they are read), with `totalAt`
   * the load model (its last call is at t).
   */
  private advanceRegisters(t: number, totalAt: SimDlt645MeterOptions['source'], energyRead = false): MeterState {
    for (const c of this.registers.changesUntil(t)) this.registers.advance(c, totalAt(c, { energyRead: false }).totalWh);
    const state = totalAt(t, { energyRead });
    this.registers.advance(t, state.totalWh);
    return state;
  }

  /** The registers now (advancing them from the load model first). */
  readRegisters(): RegisterSnapshot {
    const now = this.opts.now();
    this.takeFreezes(now);
    this.advanceRegisters(now, this.opts.source);
    return this.registers.snapshot();
  }

  /**
   * The meter's answer to a request frame it received, or undefined when it stays silent
   * (not addressed, broadcast, silent fault). `alone`: the only DL/T 645 meter on the line,
   * so wildcard requests are for it (with two or more they would collide: none answers).
   */
  handle(frame: Frame, alone: boolean, fault?: RequestFaultLike): SimReply | undefined {
    const c = decodeControl(frame.control);
    if (frame.address === BROADCAST_ADDRESS && !c.fromMeter) {
      if (c.fn === FN.broadcastTimeSync) this.syncClock(frame);
      return undefined; // protocols.md: meters do not answer broadcasts
    }
    if (!this.isAddressedBy(frame, alone)) return undefined;
    this.requests++;
    if (this.faults.silent || fault?.kind === 'no-answer') return undefined;
    const bytes = fault?.kind === 'exception' ? errorReply(this.address, c.fn, METER_ERROR.other) : this.answer(c.fn, frame);
    if (!bytes) return undefined;
    if (this.faults.corrupt || fault?.kind === 'crc') bytes[bytes.length - 2] ^= 0xff;
    return { bytes, delayMs: (this.opts.turnaroundMs ?? 0) + (this.faults.delayMs ?? 0) };
  }

  /**
   * Whether a request frame is for this meter: its own address, or a wildcard pattern
   * when it is `alone` on the line (with two or more, wildcard replies would collide, so
   * none answers). Replies of other meters and broadcasts are not requests to answer.
   */
  isAddressedBy(frame: Frame, alone: boolean): boolean {
    if (decodeControl(frame.control).fromMeter || frame.address === BROADCAST_ADDRESS) return false;
    return frame.address.includes('AA') ? alone && this.matches(frame.address) : frame.address === this.address;
  }

  private matches(pattern: string): boolean {
    for (let i = 0; i < 12; i += 2) {
      const p = pattern.slice(i, i + 2);
      if (p !== 'AA' && p !== this.address.slice(i, i + 2)) return false;
    }
    return true;
  }

  private answer(fn: number, frame: Frame): Uint8Array | undefined {
    switch (fn) {
      case FN.read: {
        // 2007 reads may append a block count and a time after the DI; we serve the DI alone.
        if (frame.data.length < 4) return errorReply(this.address, fn, METER_ERROR.other);
        const di = decodeDi(frame.data, 0);
        const payload = this.value(di);
        if (payload) return readReply(this.address, di, payload);
        return this.opts.quirks?.silentUnknown ? undefined : errorReply(this.address, fn, METER_ERROR.noData);
      }
      case FN.readAddress:
        return readAddressReply(this.address);
      case FN_CONTROL:
        return this.controlCommand(frame);
      default:
        // Follow-up (12) included: this meter never announces follow-up frames.
        return errorReply(this.address, fn, METER_ERROR.other);
    }
  }

  private value(di: DataId): Uint8Array | undefined {
    if (di === DI_STATUS_WORD_3 && this.opts.control) return encodeStatusWord3(this.statusWord3());
    const f = formatOf(di);
    if (!f) return undefined;
    const now = this.opts.now();
    const d1 = (di >>> 8) & 0xff;
    const d2 = (di >>> 16) & 0xff;
    const d0 = di & 0xff;
    // Reads of the forward total (alone or in the block) are the simulator's energy reads.
    const energyRead = di >>> 24 === 0 && d2 === 0x01 && (d1 === 0 || d1 === 0xff);
    this.takeFreezes(now);
    if (di >>> 16 === 0x0506) return this.frozenValue(di);
    const state = this.advanceRegisters(now, this.opts.source, energyRead);
    const regs = this.registers.snapshot();
    if (di >>> 24 === 0 && d0 === 0) {
      // Only the current registers (DI0 = 00); previous settlement periods are not kept.
      const forward = d2 === 0x01;
      const total = forward ? (state.registerWh ?? regs.totalWh) : Math.floor(state.reverseWh ?? 0);
      const tariffs = forward ? regs.tariffWh : regs.tariffWh.map(() => 0);
      if (d1 === 0) return encodeValue(di, register(total));
      if (d1 === 0xff && this.opts.quirks?.noBlock) return undefined;
      if (d1 === 0xff) return encodeValue(di, { kind: 'block', items: [total, ...tariffs].map(register) });
      return d1 <= tariffs.length ? encodeValue(di, register(tariffs[d1 - 1])) : undefined;
    }
    if (d0 !== 0 && di >>> 24 === 0) return undefined;
    if ((di & 0xffff00ff) === (DI.voltage(1) & 0xffff00ff)) {
      const v = state.v?.[d1 - 1];
      return v === undefined ? undefined : encodeBcd(Math.round(v * 10), 2);
    }
    if ((di & 0xffff00ff) === (DI.current(1) & 0xffff00ff)) {
      const a = state.a?.[d1 - 1];
      return a === undefined ? undefined : encodeBcd(Math.round(a * 1000), 3, true);
    }
    if (di === DI.activePowerTotal) return state.w === undefined ? undefined : encodeBcd(Math.round(state.w * 10), 3, true); // XX.XXXX kW = 0.1 W steps
    if (di === DI.date || di === DI.time) {
      const t = this.clock(now);
      return di === DI.date
        ? encodeValue(di, { kind: 'date', year: t.year, month: t.month, day: t.day, weekday: new Date(Date.UTC(t.year, t.month - 1, t.day)).getUTCDay() })
        : encodeValue(di, { kind: 'time', hour: t.hour, minute: t.minute, second: t.second });
    }
    return undefined;
  }

  /** Sets the meter's clock at run time (tests: a meter that drifts, or was set wrong). */
  setClock(clock: { readonly offsetMs?: number; readonly driftPpm?: number }, now: number = this.opts.now()): void {
    this.takeFreezes(now);
    this.clockOffsetMs = clock.offsetMs ?? this.clockErrorMs(now);
    this.driftPpm = clock.driftPpm ?? 0;
    this.clockBase = now;
    this.nextFreezeWall = this.freezeWallAfter(now);
  }

  /** The meter's clock minus true time at `now`, ms (its offset plus what it has drifted since). */
  clockErrorMs(now: number = this.opts.now()): number {
    return this.clockOffsetMs + ((now - this.clockBase) * this.driftPpm) / 1e6;
  }

  /**
   * Daily freezes (DL/T 645-2007 05 06 xx NN): at every midnight of the meter's own clock
   * the meter keeps its forward active registers. The registers only move when asked, so
   * freezes passed since the last request are taken now, in order, each at its instant
   * (the registers advanced to that instant from the load model first, through every period
   * change: what a meter that was polled all along would have counted).
   */
  private takeFreezes(now: number): void {
    const zone = this.opts.site ? zoneOf(this.opts.site.timezone) : undefined;
    for (;;) {
      // The true instant at which the meter's clock shows the next midnight:
      // t + clockError(t) = M, with clockError linear in t.
      const meterUtc = zone ? zone.firstInstantAtOrAfter(this.nextFreezeWall) : this.nextFreezeWall - 8 * 3_600_000;
      const k = this.driftPpm / 1e6;
      const at = Math.round((meterUtc - this.clockOffsetMs + this.clockBase * k) / (1 + k));
      if (at > now) return;
      this.advanceRegisters(at, this.opts.source);
      const regs = this.registers.snapshot();
      const d = new Date(this.nextFreezeWall);
      this.freezes.unshift({ at: { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: 0, minute: 0 }, totalWh: regs.totalWh, tariffWh: regs.tariffWh });
      if (this.freezes.length > DAILY_FREEZE_DEPTH) this.freezes.length = DAILY_FREEZE_DEPTH;
      this.nextFreezeWall += 86_400_000;
    }
  }

  /** Wall ms of the first midnight on the meter's clock after `now` (after a clock change). */
  private freezeWallAfter(now: number): number {
    const utc = now + this.clockErrorMs(now);
    const wall = this.opts.site ? zoneOf(this.opts.site.timezone).wall(utc) : utc + 8 * 3_600_000;
    return (Math.floor(wall / 86_400_000) + 1) * 86_400_000;
  }

  private frozenValue(di: DataId): Uint8Array | undefined {
    const n = di & 0xff;
    const f = this.freezes[n - 1];
    if (!f) return undefined; // fewer freezes kept than asked for: "no such data"
    if (((di >>> 8) & 0xff) === 0x00) return encodeValue(di, { kind: 'datetime', ...f.at });
    return encodeValue(di, { kind: 'block', items: [f.totalWh, ...f.tariffWh].map(register) });
  }

  /** The meter's wall clock (site time zone, UTC+8 when no site is given). */
  private clock(now: number): MeterDateTime {
    const utc = now + this.clockErrorMs(now);
    const wall = this.opts.site ? zoneOf(this.opts.site.timezone).wall(utc) : utc + 8 * 3_600_000;
    const d = new Date(wall);
    return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds() };
  }

  private syncClock(frame: Frame): void {
    const t = decodeTimeSync(frame);
    if (!t.ok) return;
    const now = this.opts.now();
    const wallNow = this.opts.site ? zoneOf(this.opts.site.timezone).wall(now) : now + 8 * 3_600_000;
    const wanted = Date.UTC(t.value.year, t.value.month - 1, t.value.day, t.value.hour, t.value.minute, t.value.second);
    // Offsets within a DST-free day are enough for a test clock; the wall offset is applied as is.
    const error = wanted - wallNow;
    const meterError = this.clockErrorMs(now);
    if (Math.abs(meterError - error) > (this.opts.timeSyncWindowMs ?? 300_000)) {
      this.refusedTimeSyncs++;
      return;
    }
    this.takeFreezes(now);
    // Set to the time sent; the quartz keeps its rate, so it drifts on from there.
    this.clockOffsetMs = error;
    this.clockBase = now;
    this.nextFreezeWall = this.freezeWallAfter(now);
  }

  /** Status word 3 as this meter would report it: relay state bit 4, command bit 6, protect bit 12. */
  statusWord3(): number {
    const r = this.opts.control?.relay.state();
    if (!r) return 0;
    return (r.closed ? 0 : 1 << STATUS3_BIT.relayOpen) | (r.commandTrip ? 1 << STATUS3_BIT.commandTrip : 0) | (r.protect ? 1 << STATUS3_BIT.protect : 0);
  }

  /**
   * A remote control command (1C), checked as a State Grid meter checks it: ESAM-only
   * meters refuse plaintext, then the password, then the deadline against the meter's own
   * clock, then protection (no trip while 保电). Every control frame addressed to the meter
   * is counted, accepted or not (the dry-run test counts them).
   */
  private controlCommand(frame: Frame): Uint8Array {
    const ctl = this.opts.control;
    const twoByte = (ctl?.errorWord ?? 'state-grid') === 'state-grid';
    const refuse = (reason: ControlRefusalReason) =>
      twoByte ? controlErrorReply(this.address, refusalWord([reason], 2), 2) : controlErrorReply(this.address, refusalWord([reason === 'other' ? 'other' : 'unauthorised'], 1), 1);
    if (!ctl) return refuse('other');
    ctl.relay.controlFrames++;
    const req = decodeControlRequest(frame);
    if (!req.ok) return refuse('other');
    // An encrypted command needs the ESAM's MAC check, which the simulator has no keys for.
    if (req.value.encrypted) return refuse(ctl.esam ? 'mac' : 'unauthorised');
    if (ctl.esam) return refuse('unauthorised');
    const cmd = req.value.command;
    const own = parseControlPassword(ctl.password ?? '02000000');
    if (!own.ok) throw new Error(`simulated meter ${this.address}: bad control password setting`);
    if (cmd.password.level !== own.value.level || cmd.password.password !== own.value.password) return refuse('unauthorised');
    const now = this.opts.now();
    if (compareMeterTime(this.clock(now), cmd.deadline) > 0) return refuse('deadline');
    const action = RELAY_ACTION[cmd.action];
    if (action) {
      const r = ctl.relay.command(action, now);
      if (!r.ok) return refuse(r.reason);
    }
    return twoByte ? controlReply(this.address, 1 << EXEC_BIT[cmd.action]) : controlReply(this.address);
  }
}
