/**
 * The wire formats the collector speaks (Modbus register maps and CRC, the DL/T 645-2007
 * codec and tariff registers), exported for the simulator, which must speak exactly the
 * same bytes without loading the collector's I/O (serial ports, spool, forwarder). The only
 * collector module besides index.ts another app may import (.dependency-cruiser.cjs).
 */
export * from './inputs/dlt645/codec.ts';
export { DEFAULT_TARIFF_MAPPING, periodsByRegister } from './inputs/dlt645/tariffs.ts';
export type { TariffMapping } from './inputs/dlt645/tariffs.ts';
export * from './inputs/modbus/maps.ts';
export { crc16 } from './inputs/modbus-rtu/rtu-frame.ts';
export * from './inputs/dlt645/control.ts';
