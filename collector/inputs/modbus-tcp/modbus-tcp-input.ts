import type { Meter } from '../../../core/index.ts';
import type { MeterInput } from '../../input.ts';
import { MeterReadError } from '../../input.ts';
import type { Sample } from '../../sample.ts';
import type { RegisterBlock, RegisterMap } from '../modbus/maps.ts';
import { registerMap } from '../modbus/maps.ts';
import { modbusSample } from '../modbus-sample.ts';
import type { CollectorInputContext } from '../registry.ts';
import type { ModbusTcpPool } from './tcp-pool.ts';

/** @defaultValue reply timeout when the site file gives no `timeout_ms`. */
export const TCP_DEFAULT_TIMEOUT_MS = 1000;

/**
 * A Modbus TCP meter (unit id behind a host:port). Its read-plan blocks are read back
 * to back on the pooled connection; a timeout or malformed reply is retried once after
 * a short pause (a gateway drops single requests under load), an exception is not (the
 * meter answered: asking again gives the same answer).
 */
export class ModbusTcpInput implements MeterInput {
  readonly meter: Meter;
  private readonly pool: ModbusTcpPool;
  private readonly map: RegisterMap;
  private readonly host: string;
  private readonly port: number;
  private readonly unit: number;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly now: () => number;

  constructor(ctx: CollectorInputContext, opts: { retries?: number } = {}) {
    const conn = ctx.meter.connection;
    if (conn?.protocol !== 'modbus-tcp') throw new MeterReadError(ctx.meter.id, 'config', 'not a modbus-tcp connection', false);
    this.meter = ctx.meter;
    try {
      this.map = registerMap(conn.map);
    } catch (err) {
      throw new MeterReadError(ctx.meter.id, 'config', (err as Error).message, false);
    }
    this.pool = ctx.tcp;
    this.host = conn.host;
    this.port = conn.port;
    this.unit = conn.unit;
    this.timeoutMs = conn.timeout_ms ?? TCP_DEFAULT_TIMEOUT_MS;
    this.retries = opts.retries ?? 1;
    this.now = ctx.now;
  }

  async read(): Promise<Sample> {
    for (let attempt = 0; ; attempt++) {
      try {
        const registers = await this.pool.readBlocks(this.meter.id, this.host, this.port, this.unit, this.map.plan, this.timeoutMs);
        const blocks: RegisterBlock[] = registers.map((r, i) => ({ start: this.map.plan[i].start, registers: r }));
        return modbusSample(this.meter, this.map.name, blocks, this.now());
      } catch (err) {
        const retry = err instanceof MeterReadError && (err.kind === 'timeout' || err.kind === 'protocol') && attempt < this.retries;
        if (!retry) throw err;
        await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
      }
    }
  }

  async close(): Promise<void> {
    // The connection belongs to the collector's ModbusTcpPool; it closes it.
  }
}
