import type { Meter } from '../../../core/index.ts';
import type { Logger } from '../../../lib/logger.ts';
import { createLogger } from '../../../lib/logger.ts';
import type { BusTransport, SerialBus, SerialSettings } from '../../bus/index.ts';
import { serialSettingsOf } from '../../bus/index.ts';
import type { MeterInput } from '../../input.ts';
import { MeterReadError } from '../../input.ts';
import type { Sample } from '../../sample.ts';
import type { CollectorInputContext } from '../registry.ts';
import { DAILY_FREEZE_DEPTH, DI, decodeFrame, decodeValue, diText, energyWh, frameCheck, isAddress, parseReadReply, readRequest } from './codec.ts';
import { zoneOf } from '../../../core/index.ts';
import type { Zone } from '../../../core/index.ts';
import type { CodecError, DataId, FixedValue, Value } from './codec.ts';
import { periodsByRegister } from './tariffs.ts';
import { summarisePhases } from '../phases.ts';

/**
 * Reply timeout when the site file gives no `timeout_ms`. DL/T 645-2007 clause 5.3 lets a
 * meter take up to 500 ms before answering, and a 24-byte reply takes 110 ms at 2400 8E1:
 * 1 s covers both with margin.
 */
export const DLT645_DEFAULT_TIMEOUT_MS = 1000;


/** Timeouts in a row after which an optional identifier is taken as one the meter lacks (and keeps quiet about). */
const SILENT_LIMIT = 2;

type Dlt645Connection = Extract<NonNullable<Meter['connection']>, { protocol: 'dlt645' }>;

/** Numbers the codec decodes exactly as integers; instantaneous values become plain numbers here. */
const fixed = (v: FixedValue): number => v.units / 10 ** v.decimals;

/**
 * A DL/T 645-2007 meter on an RS485 bus, read through the one bus scheduler. One `read()`
 * is one bus transaction holding several requests, so energy, power, voltage and current
 * come from the same moment and no other meter's request lands in between:
 *
 * 1. forward active energy: the `00 01 FF 00` block (total and every tariff register in
 *    one frame); meters that refuse the block ("no such data") are read register by
 *    register from then on;
 * 2. total active power, then voltage and current of phases A, B, C. Identifiers a meter
 *    refuses (a single-phase meter has no phase B or C) are remembered and not asked
 *    again, so they cost bus time once, not every poll.
 *
 * Energy is required: without it the read fails. The instantaneous values are optional:
 * one the meter lacks is left out (see `optional`).
 */
export class Dlt645Input implements MeterInput {
  readonly meter: Meter;
  readonly address: string;
  private readonly bus: SerialBus;
  private readonly settings: SerialSettings;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly now: () => number;
  private readonly log: Logger;
  /** Register numbers 1..4 the site file maps to a period (or the default 1..4). */
  private readonly tariffRegisters: readonly (1 | 2 | 3 | 4)[];
  private readonly unsupported = new Set<DataId>();
  /** Optional identifiers that timed out, and how many times in a row. */
  private readonly silent = new Map<DataId, number>();
  private useBlock = true;
  /** The site's zone: the meter's clock and freeze times are local wall time. */
  private readonly zone: Zone | undefined;
  /** The meter answered "no such data" to its daily freezes: it keeps none. */
  private noFreezes = false;

  constructor(ctx: CollectorInputContext, opts: { retries?: number } = {}) {
    const conn = ctx.meter.connection;
    if (conn?.protocol !== 'dlt645') throw new MeterReadError(ctx.meter.id, 'config', 'not a dlt645 connection', false);
    if (!isAddress(conn.address)) throw new MeterReadError(ctx.meter.id, 'config', `address ${JSON.stringify(conn.address)} is not 12 digits`, false);
    this.meter = ctx.meter;
    this.address = conn.address;
    this.bus = ctx.buses.get(conn.port);
    this.settings = serialSettingsOf(conn as Dlt645Connection);
    this.timeoutMs = conn.timeout_ms ?? DLT645_DEFAULT_TIMEOUT_MS;
    // One immediate re-ask after a timeout or bad checksum: RS485 noise hits single frames.
    this.retries = opts.retries ?? 1;
    this.now = ctx.now;
    this.log = (ctx.log ?? createLogger('collector')).child({ input: 'dlt645', meter: ctx.meter.id, address: conn.address });
    const regs = [...periodsByRegister(conn.tariffs).keys()].sort((a, b) => a - b);
    const beyond = regs.filter((n) => n > 4);
    if (beyond.length) {
      // The sample (and InfluxDB's wh_t1..wh_t4) holds registers 1..4 only.
      this.log.warn({ registers: beyond }, 'tariff registers above 4 are not collected');
    }
    this.tariffRegisters = regs.filter((n): n is 1 | 2 | 3 | 4 => n >= 1 && n <= 4);
    this.zone = ctx.timezone ? zoneOf(ctx.timezone) : undefined;
  }

  /**
   * The meter's daily freezes (DL/T 645-2007 05 06 00 NN freeze time, 05 06 01 NN forward
   * active total and tariffs) that fall in (since, until), oldest first, each a sample at
   * its freeze instant marked `source: 'frozen'`: the meter's own register at midnight, so
   * the days of an outage bill from real registers. NN = 1 is the latest freeze; the walk
   * goes back until a freeze at or before `since` (or the meter's depth, 62 days). One bus
   * transaction per freeze, so a long walk does not hold the bus from other meters.
   */
  async backfill(since: number, until: number): Promise<Sample[]> {
    if (this.noFreezes || !this.zone) return [];
    const zone = this.zone;
    const out: Sample[] = [];
    for (let n = 1; n <= DAILY_FREEZE_DEPTH; n++) {
      const got = await this.bus.transact(this.meter.id, this.settings, async (t) => {
        const at = await this.request(t, DI.dailyFreezeTime(n));
        if (!at.ok) return at;
        if (at.value.kind !== 'datetime') return { ok: false as const, error: { kind: 'unexpected-reply' as const, message: 'freeze time is not a date and time' } };
        const v = at.value;
        const time = zone.firstInstantAtOrAfter(Date.UTC(v.year, v.month - 1, v.day, v.hour, v.minute));
        if (time <= since || time >= until) return { ok: true as const, value: { time } };
        const regs = await this.request(t, DI.dailyFreezeForward(n));
        if (!regs.ok) return regs;
        if (regs.value.kind !== 'block') return { ok: false as const, error: { kind: 'unexpected-reply' as const, message: 'frozen energy is not a block' } };
        return { ok: true as const, value: { time, items: regs.value.items } };
      });
      if (!got.ok) {
        if (got.error.meterError?.noData) {
          // Fewer freezes kept than asked for (or none at all: remember that).
          if (n === 1) {
            this.noFreezes = true;
            this.log.info('meter keeps no daily freezes (05 06 00 01: no such data); outages cannot be filled from it');
          }
          break;
        }
        throw this.toReadError(got.error);
      }
      const { time, items } = got.value as { time: number; items?: readonly FixedValue[] };
      if (time <= since) break;
      if (!items) continue; // a freeze at or after the live read (the meter's clock ahead of ours)
      const [total, ...regs] = items;
      const tariffWh: Partial<Record<1 | 2 | 3 | 4, number>> = {};
      for (const k of this.tariffRegisters) if (regs[k - 1] !== undefined) tariffWh[k] = energyWh(regs[k - 1]);
      out.push({ meter: this.meter.id, time, wh: energyWh(total), ...(Object.keys(tariffWh).length ? { tariffWh } : {}), source: 'frozen' });
    }
    if (out.length) this.log.info({ freezes: out.length, from: new Date(out.at(-1)!.time).toISOString(), to: new Date(out[0].time).toISOString() }, 'read back daily freezes after a gap');
    return out.reverse();
  }

  /**
   * The meter's clock (04 00 01 01 date, 04 00 01 02 time, local wall time) against ours:
   * `errorMs` = meter minus collector, taken at the middle of the transaction. The meter
   * shows whole seconds, so the error is known to about a second: enough for a bound of a
   * minute.
   */
  async readClock(): Promise<{ errorMs: number; at: number }> {
    if (!this.zone) throw new MeterReadError(this.meter.id, 'config', 'no site time zone to read the meter clock in', false);
    const zone = this.zone;
    return this.bus.transact(this.meter.id, this.settings, async (t) => {
      const t0 = this.now();
      const date = await this.request(t, DI.date);
      const time = await this.request(t, DI.time);
      const t1 = this.now();
      if (!date.ok) throw this.toReadError(date.error);
      if (!time.ok) throw this.toReadError(time.error);
      if (date.value.kind !== 'date' || time.value.kind !== 'time') throw new MeterReadError(this.meter.id, 'protocol', 'clock reply is not a date and a time');
      const d = date.value;
      const h = time.value;
      const meterUtc = zone.firstInstantAtOrAfter(Date.UTC(d.year, d.month - 1, d.day, h.hour, h.minute, h.second));
      const at = Math.round((t0 + t1) / 2);
      return { errorMs: meterUtc - at, at };
    });
  }

  async read(): Promise<Sample> {
    // No guardMs: the bus default keeps Modbus t3.5 of silence after the transaction. DL/T
    // 645 frames need none (they are delimited by 68..L..16, and our 4 FE wake-up bytes
    // lead each request), but a Modbus meter on the same line finds its next request by
    // that silence. Within the transaction, requests follow each reply at once.
    return this.bus.transact(this.meter.id, this.settings, async (t) => {
      const energy = await this.readEnergy(t);
      const time = this.now();
      const w = await this.optional(t, DI.activePowerTotal);
      const phases: { v?: number; a?: number }[] = [{}, {}, {}];
      for (const phase of [1, 2, 3] as const) {
        const v = await this.optional(t, DI.voltage(phase));
        if (v !== undefined) phases[phase - 1].v = v;
      }
      for (const phase of [1, 2, 3] as const) {
        const a = await this.optional(t, DI.current(phase));
        if (a !== undefined) phases[phase - 1].a = a;
      }
      const sample: { -readonly [K in keyof Sample]: Sample[K] } = { meter: this.meter.id, time, wh: energy.totalWh };
      if (Object.keys(energy.tariffWh).length) sample.tariffWh = energy.tariffWh;
      // Sample.w is W; the meter says kW with 4 decimals.
      if (w !== undefined) sample.w = Math.round(w * 10_000) / 10;
      // Sample.v: the mean voltage of the live phases; Sample.a: the sum of their currents
      // (inputs/phases.ts). A single-phase meter refuses phases B and C: its one phase is the summary.
      const present = phases.filter((p) => p.v !== undefined || p.a !== undefined);
      const sum = summarisePhases(present);
      if (sum.v !== undefined) sample.v = Math.round(sum.v * 10) / 10;
      if (sum.a !== undefined) sample.a = Math.round(sum.a * 1000) / 1000;
      // A three-phase meter (it answered for B or C) keeps each phase as read.
      if (present.length > 1) sample.phases = phases;
      return sample;
    });
  }

  async close(): Promise<void> {
    // The bus belongs to the collector's registry, shared with other meters.
  }

  private async readEnergy(t: BusTransport): Promise<{ totalWh: number; tariffWh: Partial<Record<1 | 2 | 3 | 4, number>> }> {
    const tariffWh: Partial<Record<1 | 2 | 3 | 4, number>> = {};
    if (this.useBlock) {
      const block = await this.request(t, DI.forwardActiveBlock);
      if (block.ok && block.value.kind === 'block') {
        const [total, ...regs] = block.value.items;
        for (const n of this.tariffRegisters) if (regs[n - 1] !== undefined) tariffWh[n] = energyWh(regs[n - 1]);
        return { totalWh: energyWh(total), tariffWh };
      }
      if (block.ok || block.error.meterError?.noData) {
        this.useBlock = false;
        this.log.info('meter refuses the 00 01 FF 00 block; reading registers one by one');
      } else throw this.toReadError(block.error);
    }
    const total = await this.request(t, DI.forwardActiveTotal);
    if (!total.ok) throw this.toReadError(total.error);
    if (total.value.kind !== 'fixed') throw new MeterReadError(this.meter.id, 'protocol', 'forward active total is not a number');
    for (const n of this.tariffRegisters) {
      const di = DI.forwardActiveTariff(n);
      if (this.unsupported.has(di)) continue;
      const r = await this.request(t, di);
      if (r.ok && r.value.kind === 'fixed') tariffWh[n] = energyWh(r.value);
      else if (!r.ok && r.error.meterError?.noData) this.markUnsupported(di);
      else if (!r.ok) throw this.toReadError(r.error);
    }
    return { totalWh: energyWh(total.value), tariffWh };
  }

  /**
   * An instantaneous value, or undefined when the meter does not have it. Some meters
   * answer an identifier they lack with silence instead of "no such data": an optional
   * value that times out is left out of this sample (energy, the billing datum, is already
   * in hand), asked without retry, and given up after SILENT_LIMIT timeouts in a row. A
   * corrupt reply leaves the value out too. Error replies other than "no such data" fail
   * the read (the meter is telling us something).
   */
  private async optional(t: BusTransport, di: DataId): Promise<number | undefined> {
    if (this.unsupported.has(di)) return undefined;
    let r: Awaited<ReturnType<Dlt645Input['request']>>;
    try {
      r = await this.request(t, di, 0);
    } catch (e) {
      if (!(e instanceof MeterReadError) || (e.kind !== 'timeout' && e.kind !== 'crc')) throw e;
      const n = e.kind === 'timeout' ? (this.silent.get(di) ?? 0) + 1 : 0;
      this.silent.set(di, n);
      this.log.warn({ di: diText(di), error: e.kind, inARow: n }, 'optional value left out of this sample');
      if (n >= SILENT_LIMIT) this.markUnsupported(di);
      return undefined;
    }
    this.silent.delete(di);
    if (r.ok) return r.value.kind === 'fixed' ? fixed(r.value) : undefined;
    if (r.error.meterError?.noData) {
      this.markUnsupported(di);
      return undefined;
    }
    throw this.toReadError(r.error);
  }

  private markUnsupported(di: DataId): void {
    this.unsupported.add(di);
    this.log.info({ di: diText(di) }, 'meter has no such data; not asking again');
  }

  /**
   * One request/reply; retried once on a timeout or a corrupt frame. Resolves with the
   * decoded value or the codec's typed error (a meter's error reply included); throws only
   * MeterReadError for a timeout or corruption that outlasts the retries.
   *
   * Frames that are not the answer to this request are skipped while the timeout runs: a
   * late reply to an earlier, timed-out request (same meter, other DI), another meter's
   * reply, or our own request echoed by an RS485 adapter that hears itself.
   */
  private async request(t: BusTransport, di: DataId, retries = this.retries): Promise<{ ok: true; value: Value } | { ok: false; error: CodecError }> {
    const req = readRequest(this.address, di);
    let lastError: MeterReadError | undefined;
    for (let attempt = 0; attempt <= retries; attempt++) {
      t.flush();
      await t.write(req);
      const deadline = performance.now() + this.timeoutMs;
      let skipped: string | undefined;
      for (;;) {
        const left = Math.max(1, Math.round(deadline - performance.now()));
        let bytes: Buffer;
        try {
          bytes = await t.read(frameCheck, left);
        } catch (e) {
          lastError = e instanceof MeterReadError ? e : new MeterReadError(this.meter.id, 'timeout', String(e));
          if (skipped) lastError = new MeterReadError(this.meter.id, 'timeout', `${lastError.message}; skipped ${skipped}`);
          this.log.debug({ di: diText(di), attempt }, 'no reply');
          break;
        }
        const frame = decodeFrame(bytes);
        if (!frame.ok) {
          lastError = this.toReadError(frame.error);
          this.log.debug({ di: diText(di), attempt, error: frame.error.kind }, 'bad frame');
          break;
        }
        const reply = parseReadReply(frame.value, this.address, di);
        if (!reply.ok && reply.error.kind === 'unexpected-reply') {
          skipped = reply.error.message;
          this.log.debug({ di: diText(di), attempt, skipped }, 'skipped a frame that does not answer this request');
          continue;
        }
        if (!reply.ok) return reply;
        return decodeValue(di, reply.value.payload);
      }
    }
    throw lastError ?? new MeterReadError(this.meter.id, 'timeout', `no reply for ${diText(di)}`);
  }

  private toReadError(e: CodecError): MeterReadError {
    switch (e.kind) {
      case 'bad-checksum':
      case 'bad-end':
      case 'bad-start':
      case 'bad-length':
      case 'truncated':
      case 'garbage':
      case 'trailing':
        return new MeterReadError(this.meter.id, 'crc', `corrupt DL/T 645 frame: ${e.message}`);
      case 'bad-bcd':
        return new MeterReadError(this.meter.id, 'value', e.message);
      case 'meter-error':
        return new MeterReadError(this.meter.id, 'exception', e.message);
      default:
        return new MeterReadError(this.meter.id, 'protocol', e.message);
    }
  }
}
