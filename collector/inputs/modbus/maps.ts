import { Dec } from '../../../core/index.ts';
import type { ModbusMapName } from '../../../core/index.ts';
import type { PhaseValues } from '../phases.ts';
import { summarisePhases } from '../phases.ts';

/**
 * Modbus register maps of the meters a site file can name (`connection.map`), as pure
 * data plus the encode/decode helpers. The collector decodes with them and the simulator
 * (sim/) encodes with them, so a map is written down exactly once.
 *
 * Sources (protocols.md "Modbus meter maps"):
 * - Eastron SDM630 / SDM120: volkszaehler/mbmd meters/rs485/sdm.go, sdm120.go.
 * - CHINT DTSU666: mbmd meters/rs485/dtsu666.go, gerontec/dtsu666 README.
 * - CHINT DDSU666 (single phase): arendst/Tasmota xnrg_11_ddsu666.ino and
 *   ChuwuYo/DDSUViewer; they agree on the addresses; Tasmota scales power by 1000 (kW),
 *   which we follow (DDSUViewer's table says W, but its value range is the kW one).
 * - Acrel ADW300: evcc-io/evcc templates/definition/meter/acrel-adw300.yaml.
 * - Hiking DDS238-2 ZN/S(R) single phase: fawno/Modbus "DDS238-2 ZN-S Modbus.md" (holding
 *   registers, relay at 0x001A on the ZN/SR model), arendst/Tasmota xnrg_09_dds2382.ino.
 *
 * Each map also says whether the meter has a load relay the platform may switch (issue 13,
 * docs/protocols.md "Modbus relays"): `relay.kind` 'none' with the reason, or where the
 * relay is, which values trip and close it and where its state reads back.
 */

export type RegisterType = 'float32' | 'int32' | 'uint32' | 'uint16' | 'int16';
/** Order of the two 16-bit words of a 32-bit value. Bytes within a word are always big-endian (Modbus). */
export type WordOrder = 'high-first' | 'low-first';
export type Quantity = 'energy_import' | 'power' | 'voltage' | 'current' | 'pf' | 'frequency';
export type Unit = 'kWh' | 'W' | 'kW' | 'V' | 'A' | '' | 'Hz';
export type FunctionCode = 3 | 4;

export interface RegisterField {
  readonly quantity: Quantity;
  /** 1..3 for per-phase values; absent for totals. */
  readonly phase?: 1 | 2 | 3;
  /** 0-based register address (PDU address, as on the wire). */
  readonly address: number;
  readonly type: RegisterType;
  /** physical value in `unit` = raw register value x scale. A decimal-exact number (0.01, 0.1). */
  readonly scale: number;
  readonly unit: Unit;
}

export interface ReadBlock {
  readonly functionCode: FunctionCode;
  /** First register, 0-based. */
  readonly start: number;
  readonly count: number;
}

export interface RegisterMap {
  readonly name: ModbusMapName;
  readonly description: string;
  /** 03 read holding registers or 04 read input registers, as the real meter. */
  readonly functionCode: FunctionCode;
  /** Other read functions the real meter also answers with the same registers. */
  readonly alsoAnswers: readonly FunctionCode[];
  readonly wordOrder: WordOrder;
  readonly phases: 1 | 3;
  /**
   * Largest read the meter accepts (longer: exception 03). Conservative: several meter
   * families cap a read at 40 registers; a longer block risks exception 03 on real units.
   */
  readonly maxRegistersPerRead: number;
  readonly fields: readonly RegisterField[];
  /**
   * Register ranges (inclusive) the meter answers; a read touching any register outside
   * them gets exception 02 (illegal data address), as real meters do. Registers inside a
   * range that carry no field read as 0.
   */
  readonly readable: readonly (readonly [number, number])[];
  /** Further addresses the simulator fills with a copy of a field (firmware variants). */
  readonly aliases?: readonly { readonly quantity: Quantity; readonly address: number }[];
  /** Which register blocks to read to get every field, with the fewest transactions. */
  readonly plan: readonly ReadBlock[];
  /** The meter's load relay (prepaid cut-off), or why there is none. */
  readonly relay: RelaySpec;
}

/**
 * Where a meter's load relay is on Modbus, from its datasheet. Trip = open the contacts
 * (power off), close = power on. `write` is the function the meter accepts: some meters
 * answer 06 (write single register) with exception 01 and take only 16.
 */
export type RelaySpec =
  | { readonly kind: 'none'; readonly note: string }
  | {
      readonly kind: 'holding';
      /** Register written to switch, 0-based. */
      readonly address: number;
      readonly write: 6 | 16;
      readonly trip: number;
      readonly close: number;
      /** Where the state reads back, and the value meaning open (tripped) and closed. */
      readonly status: { readonly functionCode: FunctionCode; readonly address: number; readonly open: number; readonly closed: number };
      readonly source: string;
    }
  | {
      readonly kind: 'coil';
      /** Coil written with function 05 (FF00 = on, 0000 = off). */
      readonly address: number;
      /** Whether an energised coil (FF00) means the relay closed (power on). */
      readonly onMeansClosed: boolean;
      /** Read back with function 01 at the same coil. */
      readonly source: string;
    };

/** Map names whose meter has a relay the platform can switch. */
export function relayMaps(): ModbusMapName[] {
  return (Object.values(MODBUS_REGISTER_MAPS) as RegisterMap[]).filter((m) => m.relay.kind !== 'none').map((m) => m.name);
}

const WORDS: Record<RegisterType, 1 | 2> = { float32: 2, int32: 2, uint32: 2, uint16: 1, int16: 1 };

/** Registers a field occupies. */
export function fieldWords(f: Pick<RegisterField, 'type'>): 1 | 2 {
  return WORDS[f.type];
}

/**
 * Greedy plan: fields sorted by address, a block grows while the whole span (gaps
 * included) stays within `maxRegisters`. Reading a few unused registers costs 2 bytes
 * each (about 2 ms at 9600 bps), far less than a new transaction (8-byte request, 5-byte
 * reply overhead, two t3.5 silences and the meter's turnaround: protocols.md "RS485
 * timing"), so gaps are always merged when the block still fits.
 */
export function planReads(fields: readonly RegisterField[], functionCode: FunctionCode, maxRegisters: number): ReadBlock[] {
  const sorted = [...fields].sort((a, b) => a.address - b.address);
  const blocks: { start: number; end: number }[] = [];
  for (const f of sorted) {
    const end = f.address + fieldWords(f); // exclusive
    const last = blocks[blocks.length - 1];
    if (last && end - last.start <= maxRegisters && f.address >= last.start) last.end = Math.max(last.end, end);
    else blocks.push({ start: f.address, end });
  }
  return blocks.map((b) => ({ functionCode, start: b.start, count: b.end - b.start }));
}

type MapSpec = Omit<RegisterMap, 'plan'>;

function defineMap(spec: MapSpec): RegisterMap {
  const plan = planReads(spec.fields, spec.functionCode, spec.maxRegistersPerRead);
  return Object.freeze({ ...spec, plan });
}

const f32 = (quantity: Quantity, address: number, unit: Unit, scale = 1, phase?: 1 | 2 | 3): RegisterField =>
  phase ? { quantity, phase, address, type: 'float32', scale, unit } : { quantity, address, type: 'float32', scale, unit };

/** Eastron SDM630: function 04, float32 high word first, plain units (mbmd sdm.go). */
const sdm630 = defineMap({
  name: 'sdm630',
  relay: { kind: 'none', note: 'Eastron SDM630 has pulse outputs only; its prepaid variant with a relay is a different product (SDM530Y), not this map' },
  description: 'Eastron SDM630 three-phase',
  functionCode: 4,
  alsoAnswers: [],
  wordOrder: 'high-first',
  phases: 3,
  maxRegistersPerRead: 40,
  fields: [
    f32('voltage', 0x0000, 'V', 1, 1),
    f32('voltage', 0x0002, 'V', 1, 2),
    f32('voltage', 0x0004, 'V', 1, 3),
    f32('current', 0x0006, 'A', 1, 1),
    f32('current', 0x0008, 'A', 1, 2),
    f32('current', 0x000a, 'A', 1, 3),
    f32('power', 0x0034, 'W'),
    // Per-phase active power (mbmd sdm.go; Eastron's SDM630 protocol table, input
    // registers 30013/15/17).
    f32('power', 0x000c, 'W', 1, 1),
    f32('power', 0x000e, 'W', 1, 2),
    f32('power', 0x0010, 'W', 1, 3),
    f32('pf', 0x003e, ''),
    f32('frequency', 0x0046, 'Hz'),
    f32('energy_import', 0x0048, 'kWh'),
  ],
  readable: [
    [0x0000, 0x00ff],
    [0x0156, 0x0159],
  ],
});

/** Eastron SDM120 single phase: function 04, float32 high word first (mbmd sdm120.go). */
const sdm120 = defineMap({
  name: 'sdm120',
  relay: { kind: 'none', note: 'Eastron SDM120 has pulse outputs only; no load relay' },
  description: 'Eastron SDM120 single-phase',
  functionCode: 4,
  alsoAnswers: [],
  wordOrder: 'high-first',
  phases: 1,
  maxRegistersPerRead: 40,
  fields: [
    f32('voltage', 0x0000, 'V', 1, 1),
    f32('current', 0x0006, 'A', 1, 1),
    f32('power', 0x000c, 'W'),
    f32('pf', 0x001e, ''),
    f32('frequency', 0x0046, 'Hz'),
    f32('energy_import', 0x0048, 'kWh'),
  ],
  readable: [
    [0x0000, 0x004f],
    [0x0156, 0x0159],
  ],
});

/**
 * CHINT DTSU666: function 03, float32 high word first, values in scaled units: V x0.1,
 * A x0.001, W x0.1, PF x0.001, Hz x0.01; import kWh unscaled (protocols.md; mbmd
 * dtsu666.go scalers). Phase voltages are 0x2006.. (0x2000.. are line-to-line). Import
 * energy is at 0x401E on most units and 0x101E on some firmware: the simulator answers
 * both; `registerMap('dtsu666', { importAddress: 0x101e })` makes the collector read 0x101E.
 */
const dtsu666 = defineMap({
  name: 'dtsu666',
  relay: { kind: 'none', note: 'CHINT DTSU666 is a plain meter; the relay model is the prepaid DTSY666, not this map' },
  description: 'CHINT DTSU666 three-phase',
  functionCode: 3,
  alsoAnswers: [],
  wordOrder: 'high-first',
  phases: 3,
  maxRegistersPerRead: 40,
  fields: [
    f32('voltage', 0x2006, 'V', 0.1, 1),
    f32('voltage', 0x2008, 'V', 0.1, 2),
    f32('voltage', 0x200a, 'V', 0.1, 3),
    f32('current', 0x200c, 'A', 0.001, 1),
    f32('current', 0x200e, 'A', 0.001, 2),
    f32('current', 0x2010, 'A', 0.001, 3),
    f32('power', 0x2012, 'W', 0.1),
    // Per-phase active power Pa, Pb, Pc (gerontec/dtsu666 README: 8212/8214/8216; the
    // same x0.1 W scale as the total, mbmd dtsu666.go).
    f32('power', 0x2014, 'W', 0.1, 1),
    f32('power', 0x2016, 'W', 0.1, 2),
    f32('power', 0x2018, 'W', 0.1, 3),
    f32('pf', 0x202a, '', 0.001),
    f32('frequency', 0x2044, 'Hz', 0.01),
    f32('energy_import', 0x401e, 'kWh'),
  ],
  readable: [
    [0x2000, 0x2051],
    [0x1000, 0x1031],
    [0x4000, 0x4031],
  ],
  aliases: [{ quantity: 'energy_import', address: 0x101e }],
});

/**
 * CHINT DDSU666 single phase: float32 high word first; power in kW; import kWh at 0x4000
 * (Tasmota xnrg_11_ddsu666.ino, DDSUViewer). CHINT's manual reads with function 03;
 * Tasmota reads the same registers with 04 and real units answer both.
 */
const ddsu666 = defineMap({
  name: 'ddsu666',
  relay: { kind: 'none', note: 'CHINT DDSU666 is a plain meter; the relay model is the prepaid DDSY666, not this map' },
  description: 'CHINT DDSU666 single-phase',
  functionCode: 3,
  alsoAnswers: [4],
  wordOrder: 'high-first',
  phases: 1,
  maxRegistersPerRead: 40,
  fields: [
    f32('voltage', 0x2000, 'V', 1, 1),
    f32('current', 0x2002, 'A', 1, 1),
    f32('power', 0x2004, 'kW'),
    f32('pf', 0x200a, ''),
    f32('frequency', 0x200e, 'Hz'),
    f32('energy_import', 0x4000, 'kWh'),
  ],
  readable: [
    [0x2000, 0x2021],
    [0x4000, 0x4013],
  ],
});

/**
 * Acrel ADW300: function 03 integers (evcc acrel-adw300.yaml): voltages 20..22 uint16
 * x0.1 V, currents 26..28 uint16 x0.01 A, total power 36 int32 W, forward active energy
 * 62 int32 x0.01 kWh (so 10 Wh per count). No PF or frequency in the sources we have.
 */
const adw300 = defineMap({
  name: 'adw300',
  relay: { kind: 'none', note: 'Acrel ADW300 (the evcc map we follow) exposes measurements only; no load relay register' },
  description: 'Acrel ADW300 three-phase',
  functionCode: 3,
  alsoAnswers: [],
  wordOrder: 'high-first',
  phases: 3,
  maxRegistersPerRead: 40,
  fields: [
    { quantity: 'voltage', phase: 1, address: 20, type: 'uint16', scale: 0.1, unit: 'V' },
    { quantity: 'voltage', phase: 2, address: 21, type: 'uint16', scale: 0.1, unit: 'V' },
    { quantity: 'voltage', phase: 3, address: 22, type: 'uint16', scale: 0.1, unit: 'V' },
    { quantity: 'current', phase: 1, address: 26, type: 'uint16', scale: 0.01, unit: 'A' },
    { quantity: 'current', phase: 2, address: 27, type: 'uint16', scale: 0.01, unit: 'A' },
    { quantity: 'current', phase: 3, address: 28, type: 'uint16', scale: 0.01, unit: 'A' },
    { quantity: 'power', address: 36, type: 'int32', scale: 1, unit: 'W' },
    // Per-phase active power Pa, Pb, Pc: the int32 pairs before the total (30, 32, 34),
    // as Acrel's ADW300 manual lays them out. Not in the evcc template (total only): see
    // docs/protocols.md for the confidence of this source.
    { quantity: 'power', phase: 1, address: 30, type: 'int32', scale: 1, unit: 'W' },
    { quantity: 'power', phase: 2, address: 32, type: 'int32', scale: 1, unit: 'W' },
    { quantity: 'power', phase: 3, address: 34, type: 'int32', scale: 1, unit: 'W' },
    { quantity: 'energy_import', address: 62, type: 'int32', scale: 0.01, unit: 'kWh' },
  ],
  readable: [[0, 99]],
});

/**
 * Hiking DDS238-2 ZN/S single phase, function 03, integers high word first (fawno/Modbus
 * "DDS238-2 ZN-S Modbus.md"; Tasmota xnrg_09_dds2382.ino with SetOption71, the second
 * firmware layout): import energy 0x000A uint32 x0.01 kWh, V 0x000C x0.1, A 0x000D x0.01,
 * W 0x000E int16, PF 0x0010 x0.001, Hz 0x0011 x0.01. The ZN/SR model has a relay at
 * holding register 0x001A: write 0 = off (trip), 1 = on (close), read back at the same
 * register; the meter takes function 16 only ("does not understand 06"). Tasmota reads 18
 * registers from 0 and the python example 27 in one request, so 27 is a safe limit.
 */
const dds238 = defineMap({
  name: 'dds238',
  relay: {
    kind: 'holding',
    address: 0x001a,
    write: 16,
    trip: 0,
    close: 1,
    status: { functionCode: 3, address: 0x001a, open: 0, closed: 1 },
    source: 'fawno/Modbus DDS238-2 ZN-S Modbus.md, note 3 (ZN/SR model)',
  },
  description: 'Hiking DDS238-2 ZN/S(R) single-phase',
  functionCode: 3,
  alsoAnswers: [],
  wordOrder: 'high-first',
  phases: 1,
  maxRegistersPerRead: 27,
  fields: [
    { quantity: 'energy_import', address: 0x000a, type: 'uint32', scale: 0.01, unit: 'kWh' },
    { quantity: 'voltage', phase: 1, address: 0x000c, type: 'uint16', scale: 0.1, unit: 'V' },
    { quantity: 'current', phase: 1, address: 0x000d, type: 'uint16', scale: 0.01, unit: 'A' },
    { quantity: 'power', address: 0x000e, type: 'int16', scale: 1, unit: 'W' },
    { quantity: 'pf', address: 0x0010, type: 'uint16', scale: 0.001, unit: '' },
    { quantity: 'frequency', address: 0x0011, type: 'uint16', scale: 0.01, unit: 'Hz' },
  ],
  readable: [[0x0000, 0x001a]],
});

/** Every map by the name a site file uses in `connection.map`. */
export const MODBUS_REGISTER_MAPS: Readonly<Record<ModbusMapName, RegisterMap>> = Object.freeze({ sdm630, sdm120, dtsu666, ddsu666, adw300, dds238 });

export interface MapOptions {
  /** DTSU666 only: where the import-energy register is (0x401E most units, 0x101E some). */
  readonly importAddress?: number;
}

/** The map of a name, optionally adjusted (DTSU666 import address). Throws on an unknown name. */
export function registerMap(name: string, opts: MapOptions = {}): RegisterMap {
  const map = (MODBUS_REGISTER_MAPS as Record<string, RegisterMap | undefined>)[name];
  if (!map) throw new Error(`unknown Modbus register map '${name}' (known: ${Object.keys(MODBUS_REGISTER_MAPS).join(', ')})`);
  if (opts.importAddress === undefined) return map;
  if (name !== 'dtsu666') throw new Error(`map option importAddress applies to dtsu666 only, not '${name}'`);
  const fields = map.fields.map((f) => (f.quantity === 'energy_import' ? { ...f, address: opts.importAddress! } : f));
  return defineMap({ ...map, fields });
}

/** Physical values of one meter, in base units (Wh, W, V, A, Hz). */
export interface MeterValues {
  /** Cumulative import energy, integer Wh. */
  readonly wh: number;
  /** Total active power, W. */
  readonly w: number;
  /** Phase voltages, V (one entry for single-phase meters; a single number means all phases). */
  readonly v: number | readonly number[];
  /** Phase currents, A. */
  readonly a: number | readonly number[];
  /**
   * Per-phase active power, W. @defaultValue v x a x pf of each phase (pf 1 when absent),
   * which is how the load model splits its total.
   */
  readonly wPhase?: readonly number[];
  readonly pf?: number;
  readonly hz?: number;
}

/** What decodeReading returns: the Sample's instantaneous fields plus energy. */
export interface DecodedReading {
  /** Cumulative import energy, integer Wh. */
  readonly wh: number;
  /** Total active power, W. */
  readonly w: number;
  /** Phase voltage: phase A on single-phase meters, the mean of the live phases on three-phase ones (phases.ts). */
  readonly v: number;
  /** Current: the sum over live phases. */
  readonly a: number;
  readonly pf?: number;
  readonly hz?: number;
  /** Three-phase maps: L1, L2, L3 as read (voltage, current and, where the map has it, power). */
  readonly phases?: readonly [PhaseValues, PhaseValues, PhaseValues];
}

/** Registers of one block as read: `registers[i]` is the register at `start + i`. */
export interface RegisterBlock {
  readonly start: number;
  readonly registers: ArrayLike<number>;
}

const UNIT_FACTOR: Record<Unit, number> = { kWh: 1000, W: 1, kW: 1000, V: 1, A: 1, '': 1, Hz: 1 };

/**
 * Shortest decimal text that reads back as the same float32. A float32 widened to a
 * double prints as e.g. 123.45600128173828; the meter meant 123.456. Nine significant
 * digits always round-trip a float32 (IEEE 754), so the loop ends.
 */
export function float32Text(value: number): string {
  for (let p = 1; p <= 9; p++) {
    const s = value.toPrecision(p);
    if (Math.fround(Number(s)) === value) return s;
  }
  return value.toPrecision(9);
}

// One scratch word pair for conversions: encode/decode run per request in the simulator
// and per sample in the collector, so no allocation per field.
const scratch = new DataView(new ArrayBuffer(4));

/** The raw value of a 1- or 2-word field at register index `i` of `regs` (no array per field: this runs per field of every reading). */
function readRaw(regs: RegisterBlock['registers'], i: number, words: 1 | 2, type: RegisterType, order: WordOrder): number {
  if (words === 1) {
    const w = Number(regs[i]);
    return type === 'int16' ? (w << 16) >> 16 : w;
  }
  const first = Number(regs[i]);
  const second = Number(regs[i + 1]);
  scratch.setUint16(0, order === 'high-first' ? first : second);
  scratch.setUint16(2, order === 'high-first' ? second : first);
  if (type === 'float32') return scratch.getFloat32(0);
  if (type === 'int32') return scratch.getInt32(0);
  return scratch.getUint32(0);
}

function writeRaw(raw: number, type: RegisterType, order: WordOrder): [number] | [number, number] {
  if (type === 'uint16' || type === 'int16') return [raw & 0xffff];
  if (type === 'float32') scratch.setFloat32(0, raw);
  else if (type === 'int32') scratch.setInt32(0, raw);
  else scratch.setUint32(0, raw);
  const hi = scratch.getUint16(0);
  const lo = scratch.getUint16(2);
  return order === 'high-first' ? [hi, lo] : [lo, hi];
}

/** Wh per count of an energy field (0.01 kWh -> 10), exact in decimal; cached per field. */
const whPerCountCache = new WeakMap<RegisterField, number>();
function whPerCount(f: RegisterField): number {
  let v = whPerCountCache.get(f);
  if (v === undefined) {
    v = new Dec(String(f.scale)).times(UNIT_FACTOR[f.unit]).toNumber();
    whPerCountCache.set(f, v);
  }
  return v;
}

/** The field's raw value from whichever block holds all its words. */
function rawAt(blocks: readonly RegisterBlock[], f: RegisterField, order: WordOrder, mapName: string): number {
  const n = fieldWords(f);
  for (const b of blocks) {
    if (f.address >= b.start && f.address + n <= b.start + b.registers.length) return readRaw(b.registers, f.address - b.start, n, f.type, order);
  }
  throw new RangeError(`${mapName}: register 0x${f.address.toString(16).padStart(4, '0')} (${n} words) is not in the blocks read`);
}

/**
 * Energy in integer Wh from a raw register value, in decimal arithmetic so no binary
 * float drift reaches the integer: float registers are taken at their shortest float32
 * text (what the meter displays), then x scale x 1000, rounded half-up to whole Wh.
 */
function energyWh(raw: number, f: RegisterField, mapName: string): number {
  if (!Number.isFinite(raw) || raw < 0) throw new RangeError(`${mapName}: import energy register 0x${f.address.toString(16)} reads ${raw}, not a non-negative number`);
  const text = f.type === 'float32' ? float32Text(raw) : String(raw);
  // Every map's energy register is in kWh or Wh times a power of ten (1, 0.1, 0.01): then
  // x scale x unit is a shift of the decimal point, done on the digits (the same exact
  // result as Decimal, which was half of the CPU of decoding a reading). Other scales: Decimal.
  const k = whShift(f);
  if (k !== undefined) return shiftRoundHalfUp(text, k);
  return new Dec(text).times(String(f.scale)).times(UNIT_FACTOR[f.unit]).toDecimalPlaces(0, Dec.ROUND_HALF_UP).toNumber();
}

/** k when scale x unit factor is exactly 10^k (k = 0..9), else null; cached per field. */
const whShiftCache = new WeakMap<RegisterField, number | null>();
function whShift(f: RegisterField): number | undefined {
  let k = whShiftCache.get(f);
  if (k === undefined) {
    const m = new Dec(String(f.scale)).times(UNIT_FACTOR[f.unit]);
    k = null;
    for (let i = 0; i <= 9; i++) if (m.eq(new Dec(10).pow(i))) k = i;
    whShiftCache.set(f, k);
  }
  return k ?? undefined;
}

/**
 * A non-negative decimal text (digits, an optional point, an optional exponent as
 * toPrecision writes it: "1.23e+5") times 10^k, rounded half up to an integer, exactly:
 * the digits are moved, not multiplied in binary.
 */
export function shiftRoundHalfUp(text: string, k: number): number {
  let mantissa = text;
  let exp = 0;
  const e = text.indexOf('e');
  if (e >= 0) {
    mantissa = text.slice(0, e);
    exp = Number(text.slice(e + 1));
  }
  const dot = mantissa.indexOf('.');
  const intDigits = dot >= 0 ? dot : mantissa.length;
  const digits = dot >= 0 ? mantissa.slice(0, dot) + mantissa.slice(dot + 1) : mantissa;
  // How many of `digits` stand before the decimal point once multiplied by 10^(exp + k).
  const point = intDigits + exp + k;
  if (point >= digits.length) return Number(digits + '0'.repeat(point - digits.length));
  if (point < 0) return 0;
  const whole = point === 0 ? 0 : Number(digits.slice(0, point));
  // Half up: the first dropped digit decides (the text is the exact value).
  return digits.charCodeAt(point) >= 0x35 ? whole + 1 : whole;
}

/**
 * Decodes one reading from the blocks read (normally `map.plan`, in any order).
 * Throws RangeError when a needed register is missing or the energy register is not a
 * valid count (NaN, negative): the collector flags that as a bad value.
 */
export function decodeReading(mapName: string, blocks: readonly RegisterBlock[], opts: MapOptions = {}): DecodedReading {
  const map = registerMap(mapName, opts);
  let wh: number | undefined;
  let w = 0;
  let pf: number | undefined;
  let hz: number | undefined;
  const phases: { v?: number; a?: number; w?: number }[] = [{}, {}, {}];
  for (const f of map.fields) {
    const raw = rawAt(blocks, f, map.wordOrder, mapName);
    if (f.quantity === 'energy_import') {
      wh = energyWh(raw, f, mapName);
      continue;
    }
    // Instantaneous values: plain doubles, rounded to what the meter resolves (6 significant
    // digits is below every map's resolution) so 229.899993896 prints as 229.9.
    const value = Number((raw * f.scale * UNIT_FACTOR[f.unit]).toPrecision(7));
    const ph = f.phase !== undefined ? phases[f.phase - 1] : undefined;
    if (f.quantity === 'power') {
      if (ph) ph.w = value;
      else w = value;
    } else if (f.quantity === 'voltage') phases[(f.phase ?? 1) - 1].v = value;
    else if (f.quantity === 'current') phases[(f.phase ?? 1) - 1].a = value;
    else if (f.quantity === 'pf') pf = value;
    else if (f.quantity === 'frequency') hz = value;
  }
  if (wh === undefined) throw new Error(`${mapName}: map has no import energy register`);
  // Single-phase meters: their one phase is the summary. Three-phase: the live phases only.
  const used = map.phases === 3 ? phases : phases.slice(0, 1);
  const sum = summarisePhases(used);
  const out: { wh: number; w: number; v: number; a: number; pf?: number; hz?: number; phases?: [PhaseValues, PhaseValues, PhaseValues] } = { wh, w, v: sum.v ?? 0, a: sum.a ?? 0 };
  if (pf !== undefined) out.pf = pf;
  if (hz !== undefined) out.hz = hz;
  if (map.phases === 3) out.phases = [phases[0], phases[1], phases[2]];
  return out;
}

/**
 * The register image of a meter showing `values`: address -> uint16, for every field of
 * the map (and its aliases). Energy is encoded the way meters count: integer registers
 * hold whole counts (floor: a 0.01 kWh register steps only when 10 Wh have accrued),
 * float registers the nearest float32 of the kWh value.
 */
export function encodeRegisters(mapName: string, values: MeterValues, opts: MapOptions = {}): Map<number, number> {
  const map = registerMap(mapName, opts);
  const out = new Map<number, number>();
  const phaseValue = (x: number | readonly number[], phase: number | undefined): number =>
    typeof x === 'number' ? x : (x[(phase ?? 1) - 1] ?? x[0] ?? 0);
  const put = (address: number, f: RegisterField, raw: number): void => {
    writeRaw(raw, f.type, map.wordOrder).forEach((word, i) => out.set(address + i, word));
  };
  for (const f of map.fields) {
    let raw: number;
    if (f.quantity === 'energy_import') {
      if (!Number.isInteger(values.wh) || values.wh < 0) throw new RangeError(`${mapName}: wh must be a non-negative integer, got ${values.wh}`);
      const per = whPerCount(f);
      // Integer registers: whole counts. per is an integer here (10 Wh for 0.01 kWh), so
      // integer division is exact; a fractional per (not in any map) falls back to decimal.
      raw = f.type === 'float32' ? values.wh / per : Number.isInteger(per) ? Math.floor(values.wh / per) : new Dec(values.wh).div(per).floor().toNumber();
    } else {
      const physical =
        f.quantity === 'power' && f.phase !== undefined ? phasePower(values, f.phase) : f.quantity === 'power' ? values.w : f.quantity === 'voltage' ? phaseValue(values.v, f.phase) : f.quantity === 'current' ? phaseValue(values.a, f.phase) : f.quantity === 'pf' ? (values.pf ?? 1) : (values.hz ?? 50);
      raw = physical / (f.scale * UNIT_FACTOR[f.unit]);
      if (f.type !== 'float32') raw = Math.round(raw);
    }
    if (f.type !== 'float32') raw = clampInt(raw, f.type);
    put(f.address, f, raw);
    for (const alias of map.aliases ?? []) if (alias.quantity === f.quantity && alias.address !== f.address) put(alias.address, f, raw);
  }
  return out;
}

/** A phase's active power for the register image: the given one, or v x a x pf of that phase. */
function phasePower(values: MeterValues, phase: 1 | 2 | 3): number {
  const given = values.wPhase?.[phase - 1];
  if (given !== undefined) return given;
  const at = (x: number | readonly number[]) => (typeof x === 'number' ? x : (x[phase - 1] ?? 0));
  return at(values.v) * at(values.a) * (values.pf ?? 1);
}

function clampInt(raw: number, type: RegisterType): number {
  const [lo, hi] = type === 'uint16' ? [0, 0xffff] : type === 'int16' ? [-0x8000, 0x7fff] : type === 'int32' ? [-0x80000000, 0x7fffffff] : [0, 0xffffffff];
  return Math.min(hi, Math.max(lo, raw));
}

/**
 * The energy register's resolution in Wh: 1 for float registers (below 8192 kWh), the Wh
 * per count of integer ones (10 for 0.01 kWh). What a reading is floored to on the wire.
 */
export function energyStepWh(mapName: string): number {
  const f = registerMap(mapName).fields.find((x) => x.quantity === 'energy_import')!;
  return f.type === 'float32' ? 1 : whPerCount(f);
}

/** True if every register in [start, start+count) lies in one of the map's readable ranges. */
export function isReadable(map: RegisterMap, start: number, count: number): boolean {
  for (let a = start; a < start + count; a++) {
    if (!map.readable.some(([lo, hi]) => a >= lo && a <= hi)) return false;
  }
  return true;
}
