import type { Meter } from '../../core/index.ts';
import { registerMap } from '../inputs/modbus/maps.ts';
import { Dlt645RelayDriver } from './dlt645-driver.ts';
import { ModbusRelayDriver } from './modbus-driver.ts';
import type { RelayDriver, RelayResources } from './types.ts';
import type { RelaySecrets } from './secrets.ts';

export type { CommandOutcome, RelayCommand, RelayDriver, RelayReadback, RelayResources } from './types.ts';

/** Why a meter's relay cannot be driven, or undefined when it can. */
export function relayUnsupported(meter: Meter, secrets?: RelaySecrets): string | undefined {
  if (!meter.relay) return `meter ${meter.id} has no relay in the site file (meters[].relay: plain)`;
  const c = meter.connection;
  if (!c) return `meter ${meter.id} has no connection`;
  if (meter.relay === 'esam') return `meter ${meter.id} demands ESAM-encrypted control; submeter sends plaintext commands only, so it cannot switch this meter (unsupported)`;
  if (c.protocol === 'dlt645') {
    if (secrets && !secrets.forMeter(meter.id)) return `no DL/T 645 control password for meter ${meter.id} (set SUBMETER_DLT645_PASSWORD or an entry in SUBMETER_RELAY_SECRETS)`;
    return undefined;
  }
  if (registerMap(c.map).relay.kind === 'none') return `map ${c.map} of meter ${meter.id} has no relay register`;
  return undefined;
}

/**
 * The driver of a meter's relay; throws an Error naming why when it has none that can be
 * driven. A missing DL/T 645 password is found at `send` (a status read needs none).
 */
export function createRelayDriver(meter: Meter, res: RelayResources): RelayDriver {
  const why = relayUnsupported(meter);
  if (why) throw new Error(why);
  const c = meter.connection!;
  if (c.protocol === 'dlt645') return new Dlt645RelayDriver(meter, res);
  return new ModbusRelayDriver(meter, res);
}
