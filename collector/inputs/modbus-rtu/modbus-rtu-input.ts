import type { Meter } from '../../../core/index.ts';
import type { BusTransport, SerialBus, SerialSettings } from '../../bus/index.ts';
import { serialSettingsOf, silentIntervalMs } from '../../bus/index.ts';
import type { MeterInput } from '../../input.ts';
import { MeterReadError } from '../../input.ts';
import type { Sample } from '../../sample.ts';
import type { ReadBlock, RegisterBlock, RegisterMap } from '../modbus/maps.ts';
import { registerMap } from '../modbus/maps.ts';
import { exceptionText, modbusSample } from '../modbus-sample.ts';
import type { CollectorInputContext } from '../registry.ts';
import { parseReadReply, readReplyCheck, readRequest } from './rtu-frame.ts';

/** @defaultValue reply timeout when the site file gives no `timeout_ms` (meters answer in 5-45 ms; 9600 bps frames take < 200 ms). */
export const RTU_DEFAULT_TIMEOUT_MS = 1000;

/**
 * A Modbus RTU meter on an RS485 bus. One read is one bus transaction covering every
 * block of the map's read plan, so energy and power come from the same moment and the
 * meter's blocks are not interleaved with other meters' requests.
 */
export class ModbusRtuInput implements MeterInput {
  readonly meter: Meter;
  private readonly bus: SerialBus;
  private readonly settings: SerialSettings;
  private readonly map: RegisterMap;
  private readonly unit: number;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly now: () => number;

  constructor(ctx: CollectorInputContext, opts: { retries?: number } = {}) {
    const conn = ctx.meter.connection;
    if (conn?.protocol !== 'modbus-rtu') throw new MeterReadError(ctx.meter.id, 'config', `not a modbus-rtu connection`, false);
    this.meter = ctx.meter;
    try {
      this.map = registerMap(conn.map);
    } catch (err) {
      throw new MeterReadError(ctx.meter.id, 'config', (err as Error).message, false);
    }
    this.bus = ctx.buses.get(conn.port);
    this.settings = serialSettingsOf(conn);
    this.unit = conn.unit;
    this.timeoutMs = conn.timeout_ms ?? RTU_DEFAULT_TIMEOUT_MS;
    // One immediate re-ask after a timeout or CRC error: RS485 noise hits single frames.
    this.retries = opts.retries ?? 1;
    this.now = ctx.now;
  }

  async read(): Promise<Sample> {
    const blocks = await this.bus.transact(this.meter.id, this.settings, async (t) => {
      const out: RegisterBlock[] = [];
      for (const block of this.map.plan) out.push({ start: block.start, registers: await this.readBlock(t, block) });
      return out;
    });
    return modbusSample(this.meter, this.map.name, blocks, this.now());
  }

  private async readBlock(t: BusTransport, block: ReadBlock): Promise<number[]> {
    const request = readRequest(this.unit, block.functionCode, block.start, block.count);
    const check = readReplyCheck(this.unit, block.functionCode);
    let last: MeterReadError | undefined;
    for (let attempt = 0; attempt <= this.retries; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, silentIntervalMs(this.settings)));
      t.flush();
      await t.write(request);
      let frame: Buffer;
      try {
        frame = await t.read(check, this.timeoutMs);
      } catch (err) {
        last = err instanceof MeterReadError ? err : new MeterReadError(this.meter.id, 'timeout', String(err));
        continue;
      }
      const reply = parseReadReply(frame, block.functionCode, block.count);
      if (reply.ok) return reply.registers;
      const what = `unit ${this.unit} fc ${block.functionCode} @${block.start}+${block.count}`;
      if (reply.kind === 'exception') throw new MeterReadError(this.meter.id, 'exception', `${what}: ${exceptionText(reply.code ?? 0)}`);
      last = new MeterReadError(this.meter.id, reply.kind, `${what}: ${reply.message}`);
    }
    throw last!;
  }

  async close(): Promise<void> {
    // The bus belongs to the collector's BusRegistry; it closes it.
  }
}
