import type { Zone } from '../../../core/index.ts';
import type { SerialBus, SerialSettings } from '../../bus/index.ts';
import { timeSyncBroadcast } from './codec.ts';

/**
 * Broadcast time sync (DL/T 645-2007, C = 08 to 999999999999, data ssmmhhDDMMYY in local
 * wall time, each byte +33H): every DL/T 645 meter on the bus at these serial settings
 * sets its clock, none answers. The standard has a meter take it only when its clock is
 * within +-5 min of the time sent and only once a day, and asks masters not to send it
 * around midnight, when the day's freeze is taken: the collector sends it once a day at a
 * set local time (docs/dlt645.md, "Clock"). Goes through the bus scheduler like a read;
 * the time is taken when the bus is ours, just before the frame is written.
 */
export async function broadcastTimeSync(bus: SerialBus, settings: SerialSettings, zone: Zone, now: () => number): Promise<Uint8Array> {
  return bus.transact('dlt645-time-sync', settings, async (t) => {
    const wall = new Date(zone.wall(now()));
    const frame = timeSyncBroadcast({ year: wall.getUTCFullYear(), month: wall.getUTCMonth() + 1, day: wall.getUTCDate(), hour: wall.getUTCHours(), minute: wall.getUTCMinutes(), second: wall.getUTCSeconds() });
    t.flush();
    await t.write(frame);
    return frame;
  });
}
