import type { Meter, Site } from '../../core/index.ts';
import type { BusRegistry } from '../bus/index.ts';
import type { ModbusTcpPool } from '../inputs/modbus-tcp/tcp-pool.ts';
import type { RelaySecrets } from './secrets.ts';

/**
 * One meter's load relay, driven over its own protocol through the collector's shared
 * resources (the serial bus scheduler with command priority, the Modbus TCP pool).
 * Errors on the wire throw MeterReadError (timeout, crc, connection, ...); a meter that
 * answers and refuses is an outcome, not an error.
 */
export interface RelayDriver {
  readonly meter: Meter;
  /** What the relay looks like now (one priority read). */
  readState(): Promise<RelayReadback>;
  /** Sends one command; never retried here (the caller reads back before sending again). */
  send(command: RelayCommand): Promise<CommandOutcome>;
}

/** trip = open the contacts (power off); close = power on now; close-permit = the tenant closes at the meter. */
export type RelayCommand = 'trip' | 'close' | 'close-permit' | 'protect-on' | 'protect-off';

export interface RelayReadback {
  /** The contacts: open = power off. */
  readonly state: 'open' | 'closed';
  /** DL/T 645 status word 3 bit 6: the last command was a trip. */
  readonly commandTrip?: boolean;
  /** DL/T 645 status word 3 bit 12 (State Grid): protected (保电). */
  readonly protect?: boolean;
  /** The register as read (status word 3, or the Modbus status register). */
  readonly raw: number;
  /** One line for logs and the CLI. */
  readonly text: string;
}

export type CommandOutcome =
  | { readonly accepted: true; readonly text: string }
  | { readonly accepted: false; readonly reasons: readonly string[]; readonly text: string; readonly raw?: number };

export interface RelayResources {
  readonly site: Site;
  readonly buses: BusRegistry;
  readonly tcp: ModbusTcpPool;
  readonly secrets: RelaySecrets;
  /** Clock: DL/T 645 deadlines are this instant plus `commandValiditySeconds`, in the site's local time. @defaultValue Date.now */
  readonly now?: () => number;
  /**
   * How long after sending a DL/T 645 command the meter may still carry it out (N3..N8).
   * Covers the bus queue and the meter's clock drift; a meter whose clock runs ahead by
   * more refuses every command ("deadline passed": sync its time). @defaultValue 300
   */
  readonly commandValiditySeconds?: number;
}

