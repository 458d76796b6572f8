/**
 * The serial-bus scheduler every RS485 input shares (Modbus RTU, DL/T 645). Usage from an
 * input:
 *
 * ```ts
 * const bus = ctx.buses.get(conn.port);
 * const reply = await bus.transact(meter.id, serialSettingsOf(conn), async (t) => {
 *   t.flush();
 *   await t.write(request);
 *   return t.read(frameCheck, timeoutMs);
 * });
 * ```
 */
export { SerialBus } from './serial-bus.ts';
export type { BusTransport, FrameCheck, TransactOptions, SerialBusOptions, SerialBusStats, BusClientStats } from './serial-bus.ts';
export { BusRegistry } from './registry.ts';
export { SerialPortLink } from './serial-link.ts';
export type { SerialLink } from './serial-link.ts';
export { serialSettingsOf, sameSettings, charTimeMs, bitsPerChar, silentIntervalMs, describeSettings } from './serial-settings.ts';
export type { SerialSettings, Parity } from './serial-settings.ts';
