import type { ModbusMapName } from '../../core/index.ts';
import type { BusTransport, SerialBus, SerialSettings } from '../bus/index.ts';
import { describeSettings } from '../bus/index.ts';
import { MeterReadError } from '../input.ts';
import { DI, decodeFrame, energyWh, frameCheck, parseReadAddressReply, parseReadReply, readAddressRequest, readRequest as dltReadRequest, decodeValue } from '../inputs/dlt645/codec.ts';
import { decodeReading, registerMap } from '../inputs/modbus/maps.ts';
import type { RegisterBlock } from '../inputs/modbus/maps.ts';
import { exceptionText } from '../inputs/modbus-sample.ts';
import { parseReadReply as parseRtuReply, readReplyCheck, readRequest as rtuReadRequest } from '../inputs/modbus-rtu/rtu-frame.ts';

/**
 * What is on an RS485 bus (issue 16, commissioning): the one DL/T 645 meter that answers
 * the read-address wildcard, DL/T 645 addresses the site file already names, and a scan of
 * Modbus unit ids with a register map. Everything goes through the bus scheduler like a
 * normal read, each candidate as its own client, and a silent candidate is an answer
 * ("nothing there"), never an error that backs the bus off.
 */

/** One device that answered. */
export type ProbeFinding =
  | {
      readonly protocol: 'dlt645';
      readonly address: string;
      readonly settings: SerialSettings;
      /** Forward active total, Wh, when the meter answered a read of it (compare with its display). */
      readonly wh?: number;
      /** How it was found: the read-address wildcard, or a read at an address the site file names. */
      readonly via: 'read-address' | 'site-file';
    }
  | {
      readonly protocol: 'modbus-rtu';
      readonly unit: number;
      readonly map: ModbusMapName;
      readonly settings: SerialSettings;
      /** Decoded with the map: import energy Wh and the summary voltage, to check against the display. */
      readonly wh?: number;
      readonly v?: number;
      /** The unit answered with a Modbus exception: something is there, but not with this map. */
      readonly exception?: string;
    };

export interface ProbeOptions {
  /** DL/T 645: ask the wildcard, and confirm these addresses (the site file's). Omit to skip DL/T 645. */
  readonly dlt645?: { readonly settings: SerialSettings; readonly addresses?: readonly string[] };
  /** Modbus RTU scans, one per (map, settings) to try. */
  readonly modbus?: readonly { readonly map: ModbusMapName; readonly settings: SerialSettings; readonly units: readonly number[] }[];
  /** Reply timeout per candidate, ms. @defaultValue 300 */
  readonly timeoutMs?: number;
  /** Called after each candidate (progress on a long unit-id scan). */
  readonly onProgress?: (done: number, total: number, found: ProbeFinding | undefined) => void;
}

export interface ProbeResult {
  readonly findings: readonly ProbeFinding[];
  /** What could not be decided, e.g. a garbled reply to the wildcard (several DL/T 645 meters answering at once). */
  readonly notes: readonly string[];
}

export async function probeBus(bus: SerialBus, opts: ProbeOptions): Promise<ProbeResult> {
  const timeoutMs = opts.timeoutMs ?? 300;
  const findings: ProbeFinding[] = [];
  const notes: string[] = [];
  const total = (opts.dlt645 ? 1 + (opts.dlt645.addresses?.length ?? 0) : 0) + (opts.modbus ?? []).reduce((n, s) => n + s.units.length, 0);
  let done = 0;
  const step = (f: ProbeFinding | undefined) => {
    done++;
    if (f) findings.push(f);
    opts.onProgress?.(done, total, f);
  };

  if (opts.dlt645) {
    const { settings } = opts.dlt645;
    const wildcard = await bus.transact('probe:dlt645:wildcard', settings, async (t) => {
      t.flush();
      await t.write(readAddressRequest());
      let bytes: Buffer;
      try {
        bytes = await t.read(frameCheck, timeoutMs);
      } catch (e) {
        if (e instanceof MeterReadError && e.kind === 'timeout') return { address: undefined };
        throw e;
      }
      const frame = decodeFrame(bytes);
      if (!frame.ok) return { problem: `read-address (wildcard) at ${describeSettings(settings)}: ${frame.error.message}: more than one DL/T 645 meter answering? Probe them one at a time, or list their printed addresses in the site file` };
      const address = parseReadAddressReply(frame.value);
      return address.ok ? { address: address.value } : { problem: `read-address (wildcard): ${address.error.message}` };
    });
    if ('problem' in wildcard && wildcard.problem) notes.push(wildcard.problem);
    const found = 'address' in wildcard && wildcard.address ? { protocol: 'dlt645' as const, address: wildcard.address, settings, via: 'read-address' as const, ...(await dltEnergy(bus, wildcard.address, settings, timeoutMs)) } : undefined;
    step(found);
    for (const address of opts.dlt645.addresses ?? []) {
      if (address === found?.address) {
        step(undefined);
        continue;
      }
      const e = await dltEnergy(bus, address, settings, timeoutMs);
      step(e.wh !== undefined ? { protocol: 'dlt645', address, settings, via: 'site-file', wh: e.wh } : undefined);
      if (e.wh === undefined) notes.push(`DL/T 645 ${address} (in the site file) did not answer at ${describeSettings(settings)}`);
    }
  }

  for (const scan of opts.modbus ?? []) {
    const map = registerMap(scan.map);
    const first = map.plan[0];
    for (const unit of scan.units) {
      const r = await bus.transact(`probe:modbus:${unit}`, scan.settings, async (t) => {
        const block = await rtuBlock(t, unit, first.functionCode, first.start, first.count, timeoutMs);
        if (block.kind !== 'registers') return block;
        // It answered: read the rest of the plan for a reading the installer can compare.
        const blocks: RegisterBlock[] = [{ start: first.start, registers: block.registers }];
        for (const b of map.plan.slice(1)) {
          const more = await rtuBlock(t, unit, b.functionCode, b.start, b.count, timeoutMs);
          if (more.kind !== 'registers') return { kind: 'registers' as const, blocks: undefined };
          blocks.push({ start: b.start, registers: more.registers });
        }
        return { kind: 'registers' as const, blocks };
      });
      if (r.kind === 'silent') step(undefined);
      else if (r.kind === 'exception') step({ protocol: 'modbus-rtu', unit, map: scan.map, settings: scan.settings, exception: r.text });
      else {
        let decoded: { wh?: number; v?: number } = {};
        try {
          if (r.blocks) {
            const d = decodeReading(scan.map, r.blocks);
            decoded = { wh: d.wh, v: d.v };
          }
        } catch {
          // Registers that are not a reading under this map: still a device at this unit.
        }
        step({ protocol: 'modbus-rtu', unit, map: scan.map, settings: scan.settings, ...decoded });
      }
    }
  }
  return { findings, notes };
}

type RtuOutcome = { kind: 'silent' } | { kind: 'exception'; text: string } | { kind: 'registers'; registers: number[] };

async function rtuBlock(t: BusTransport, unit: number, fc: 3 | 4, start: number, count: number, timeoutMs: number): Promise<RtuOutcome> {
  t.flush();
  await t.write(rtuReadRequest(unit, fc, start, count));
  let frame: Buffer;
  try {
    frame = await t.read(readReplyCheck(unit, fc), timeoutMs);
  } catch (e) {
    if (e instanceof MeterReadError) return { kind: 'silent' };
    throw e;
  }
  const reply = parseRtuReply(frame, fc, count);
  if (reply.ok) return { kind: 'registers', registers: reply.registers };
  if (reply.kind === 'exception') return { kind: 'exception', text: exceptionText(reply.code ?? 0) };
  // A corrupt reply: something answered; call it silent for this unit rather than guess.
  return { kind: 'silent' };
}

async function dltEnergy(bus: SerialBus, address: string, settings: SerialSettings, timeoutMs: number): Promise<{ wh?: number }> {
  return bus.transact(`probe:dlt645:${address}`, settings, async (t) => {
    t.flush();
    await t.write(dltReadRequest(address, DI.forwardActiveTotal));
    try {
      const frame = decodeFrame(await t.read(frameCheck, timeoutMs));
      if (!frame.ok) return {};
      const reply = parseReadReply(frame.value, address, DI.forwardActiveTotal);
      if (!reply.ok) return {};
      const v = decodeValue(DI.forwardActiveTotal, reply.value.payload);
      return v.ok && v.value.kind === 'fixed' ? { wh: energyWh(v.value) } : {};
    } catch (e) {
      if (e instanceof MeterReadError) return {};
      throw e;
    }
  });
}

/** `1-247`, `11`, `1-5,11,20-22` -> unit ids (Modbus RTU slaves are 1..247). */
export function parseUnits(text: string): number[] {
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new Error(`--units: '${part}' is not a unit id or a range like 1-247`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (a < 1 || b > 247 || a > b) throw new Error(`--units: '${part}' must lie in 1..247, low to high`);
    for (let u = a; u <= b; u++) out.add(u);
  }
  return [...out].sort((x, y) => x - y);
}
