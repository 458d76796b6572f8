import type { SerialBus, SerialSettings } from '../../bus/index.ts';
import { MeterReadError } from '../../input.ts';
import { decodeFrame, frameCheck, parseReadAddressReply, readAddressRequest } from './codec.ts';

/**
 * Asks the one DL/T 645 meter on a bus for its address (read address, C = 13, to the
 * AAAAAAAAAAAA wildcard): what an installer needs before writing the site file, since the
 * printed address is often hidden behind the meter seal. Only with a single meter on the
 * bus (protocols.md): several would answer at once and collide, which shows up here as a
 * corrupt frame or a timeout. Goes through the bus scheduler like any read.
 */
export async function readMeterAddress(bus: SerialBus, settings: SerialSettings, timeoutMs = 1000): Promise<string> {
  return bus.transact('dlt645-probe', settings, async (t) => {
    t.flush();
    await t.write(readAddressRequest());
    const bytes = await t.read(frameCheck, timeoutMs);
    const frame = decodeFrame(bytes);
    if (!frame.ok) throw new MeterReadError('dlt645-probe', 'crc', `read address: ${frame.error.message} (more than one meter on the bus?)`);
    const address = parseReadAddressReply(frame.value);
    if (!address.ok) throw new MeterReadError('dlt645-probe', 'protocol', `read address: ${address.error.message}`);
    return address.value;
  });
}
