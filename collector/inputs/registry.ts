import type { Meter, MeterConnection } from '../../core/index.ts';
import type { Logger } from '../../lib/logger.ts';
import type { BusRegistry } from '../bus/index.ts';
import type { InputContext, MeterInput } from '../input.ts';
import { MeterReadError } from '../input.ts';

/**
 * Shared resources an input factory may use, owned by the collector: serial buses by
 * device path, and pooled Modbus TCP connections by host:port.
 */
export interface InputResources {
  readonly buses: BusRegistry;
  /** Per host:port Modbus TCP connections (collector/inputs/modbus-tcp). */
  readonly tcp: import('./modbus-tcp/tcp-pool.ts').ModbusTcpPool;
  readonly log?: Logger;
  /** The site's IANA time zone: meters that report local wall time (DL/T 645 clocks and freeze times) are read in it. */
  readonly timezone?: string;
}

export type CollectorInputContext = InputContext & InputResources;

export type Protocol = MeterConnection['protocol'];

/** Makes the input of one meter; throws MeterReadError kind `config` for config that can never work. */
export type ProtocolFactory = (ctx: CollectorInputContext) => MeterInput;

const factories = new Map<Protocol, ProtocolFactory>();

/**
 * Registers the input of a protocol (Telegraf's `inputs.Add`). Each input module calls
 * it once at import time; collector/inputs/index.ts imports them all.
 */
export function registerInput(protocol: Protocol, factory: ProtocolFactory): void {
  if (factories.has(protocol)) throw new Error(`an input for protocol '${protocol}' is already registered`);
  factories.set(protocol, factory);
}

export function registeredProtocols(): Protocol[] {
  return [...factories.keys()];
}

/** The input of a meter with a connection, from the protocol it names. */
export function createInput(meter: Meter, resources: InputResources, now: () => number = Date.now): MeterInput {
  const conn = meter.connection;
  if (!conn) throw new MeterReadError(meter.id, 'config', 'meter has no connection (its readings come by import)', false);
  const factory = factories.get(conn.protocol);
  if (!factory) throw new MeterReadError(meter.id, 'config', `no input for protocol '${conn.protocol}' (have: ${registeredProtocols().join(', ') || 'none'})`, false);
  return factory({ meter, now, ...resources });
}
