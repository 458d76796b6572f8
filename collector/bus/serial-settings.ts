import type { MeterConnection } from '../../core/index.ts';

export type Parity = 'none' | 'even' | 'odd';

/**
 * Line settings of one transaction. One RS485 bus may carry meters at different speeds
 * (the example site has a 9600 Modbus RTU meter and a 2400 DL/T 645 meter on
 * /dev/ttyUSB0), so every transaction names its own and the bus applies them first.
 */
export interface SerialSettings {
  readonly baudRate: number;
  /** @defaultValue 'none' (Modbus RTU); DL/T 645 meters are 8E1. */
  readonly parity: Parity;
  readonly dataBits: 7 | 8;
  readonly stopBits: 1 | 2;
}

type SerialConnection = Extract<MeterConnection, { protocol: 'modbus-rtu' | 'dlt645' }>;

/** The settings a site file's serial connection asks for (defaults: 8 data bits, 1 stop bit). */
export function serialSettingsOf(conn: SerialConnection): SerialSettings {
  return { baudRate: conn.baud, parity: conn.parity, dataBits: conn.data_bits ?? 8, stopBits: conn.stop_bits ?? 1 };
}

export function sameSettings(a: SerialSettings, b: SerialSettings): boolean {
  return a.baudRate === b.baudRate && a.parity === b.parity && a.dataBits === b.dataBits && a.stopBits === b.stopBits;
}

/** Bits on the wire per character: start + data + parity + stop. */
export function bitsPerChar(s: SerialSettings): number {
  return 1 + s.dataBits + (s.parity === 'none' ? 0 : 1) + s.stopBits;
}

/** Milliseconds one character takes on the wire (1.042 ms at 9600 8N1). */
export function charTimeMs(s: SerialSettings): number {
  return (bitsPerChar(s) * 1000) / s.baudRate;
}

/**
 * Modbus RTU's silent interval t3.5 between frames (Modbus over Serial Line v1.02,
 * 2.5.1.1): 3.5 character times, fixed at 1.75 ms above 19200 bps. protocols.md gives
 * 3.65 ms at 9600.
 */
export function silentIntervalMs(s: SerialSettings): number {
  return s.baudRate > 19_200 ? 1.75 : 3.5 * charTimeMs(s);
}

export function describeSettings(s: SerialSettings): string {
  return `${s.baudRate} ${s.dataBits}${s.parity[0].toUpperCase()}${s.stopBits}`;
}
