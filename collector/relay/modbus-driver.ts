import type { Meter } from '../../core/index.ts';
import type { BusTransport } from '../bus/index.ts';
import { serialSettingsOf } from '../bus/index.ts';
import { MeterReadError } from '../input.ts';
import { registerMap } from '../inputs/modbus/maps.ts';
import type { RelaySpec } from '../inputs/modbus/maps.ts';
import { exceptionText } from '../inputs/modbus-sample.ts';
import { parseReadReply, readReplyCheck, readRequest } from '../inputs/modbus-rtu/rtu-frame.ts';
import { TCP_DEFAULT_TIMEOUT_MS } from '../inputs/modbus-tcp/modbus-tcp-input.ts';
import type { CommandOutcome, RelayCommand, RelayDriver, RelayReadback, RelayResources } from './types.ts';
import { parseWriteReply, writeReplyCheck, writeRequest } from './modbus-rtu-write.ts';

type Holding = Extract<RelaySpec, { kind: 'holding' }>;

/**
 * Modbus relay control: a write of the map's trip or close value to its relay register
 * and a read of its status register, over Modbus TCP (the collector's pooled connection)
 * or RTU (a priority transaction on the bus). Modbus has no protection (保电) command and
 * no "close permitted": protect-on/off are refused as unsupported and close-permit closes.
 */
export class ModbusRelayDriver implements RelayDriver {
  readonly meter: Meter;
  private readonly relay: Holding;
  private readonly res: RelayResources;

  constructor(meter: Meter, res: RelayResources) {
    const c = meter.connection;
    if (!c || c.protocol === 'dlt645') throw new Error(`meter ${meter.id} is not a Modbus meter`);
    const relay = registerMap(c.map).relay;
    if (relay.kind !== 'holding') throw new Error(`map ${c.map} has no relay register`);
    this.meter = meter;
    this.relay = relay;
    this.res = res;
  }

  async send(command: RelayCommand): Promise<CommandOutcome> {
    if (command === 'protect-on' || command === 'protect-off') return { accepted: false, reasons: ['unsupported'], text: `Modbus meter ${this.meter.id} has no protection (保电) command` };
    const value = command === 'trip' ? this.relay.trip : this.relay.close;
    const what = `${command === 'trip' ? 'trip' : 'close'} (write ${value} to 0x${this.relay.address.toString(16).padStart(4, '0')})`;
    try {
      await this.write(value);
    } catch (err) {
      // The meter answered with an exception: it refused the write.
      if (err instanceof MeterReadError && err.kind === 'exception') return { accepted: false, reasons: ['exception'], text: `meter ${this.meter.id} refused ${what}: ${err.message}` };
      throw err;
    }
    return { accepted: true, text: `meter ${this.meter.id} accepted ${what}` };
  }

  async readState(): Promise<RelayReadback> {
    const raw = await this.readStatus();
    const st = this.relay.status;
    if (raw !== st.open && raw !== st.closed) throw new MeterReadError(this.meter.id, 'value', `relay status register reads ${raw}, neither ${st.open} (open) nor ${st.closed} (closed)`);
    const state = raw === st.closed ? 'closed' : 'open';
    return { state, raw, text: `relay ${state === 'open' ? 'open (power off)' : 'closed (power on)'} [register 0x${st.address.toString(16).padStart(4, '0')} = ${raw}]` };
  }

  private async write(value: number): Promise<void> {
    const c = this.meter.connection!;
    if (c.protocol === 'modbus-tcp') {
      await this.res.tcp.writeRegister(this.meter.id, c.host, c.port, c.unit, this.relay.write, this.relay.address, value, c.timeout_ms ?? TCP_DEFAULT_TIMEOUT_MS);
      return;
    }
    if (c.protocol !== 'modbus-rtu') throw new Error('unreachable');
    const bus = this.res.buses.get(c.port);
    const timeout = c.timeout_ms ?? 1000;
    await bus.transact(
      this.meter.id,
      serialSettingsOf(c),
      async (t: BusTransport) => {
        t.flush();
        await t.write(writeRequest(c.unit, this.relay.write, this.relay.address, value));
        const frame = await t.read(writeReplyCheck(c.unit, this.relay.write), timeout);
        const r = parseWriteReply(frame, this.relay.write, this.relay.address);
        if (!r.ok) throw new MeterReadError(this.meter.id, r.kind, r.kind === 'exception' ? `unit ${c.unit} write @${this.relay.address}: ${exceptionText(r.code ?? 0)}` : r.message);
      },
      { priority: true },
    );
  }

  private async readStatus(): Promise<number> {
    const c = this.meter.connection!;
    const st = this.relay.status;
    if (c.protocol === 'modbus-tcp') {
      const regs = await this.res.tcp.read(this.meter.id, c.host, c.port, c.unit, st.functionCode, st.address, 1, c.timeout_ms ?? TCP_DEFAULT_TIMEOUT_MS);
      return regs[0];
    }
    if (c.protocol !== 'modbus-rtu') throw new Error('unreachable');
    const bus = this.res.buses.get(c.port);
    const timeout = c.timeout_ms ?? 1000;
    return bus.transact(
      this.meter.id,
      serialSettingsOf(c),
      async (t) => {
        let last: MeterReadError | undefined;
        for (let attempt = 0; attempt < 2; attempt++) {
          t.flush();
          await t.write(readRequest(c.unit, st.functionCode, st.address, 1));
          let frame: Buffer;
          try {
            frame = await t.read(readReplyCheck(c.unit, st.functionCode), timeout);
          } catch (err) {
            last = err instanceof MeterReadError ? err : new MeterReadError(this.meter.id, 'timeout', String(err));
            continue;
          }
          const r = parseReadReply(frame, st.functionCode, 1);
          if (r.ok) return r.registers[0];
          if (r.kind === 'exception') throw new MeterReadError(this.meter.id, 'exception', `relay status: ${exceptionText(r.code ?? 0)}`);
          last = new MeterReadError(this.meter.id, r.kind, r.message);
        }
        throw last!;
      },
      { priority: true },
    );
  }
}
