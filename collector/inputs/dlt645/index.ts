import { registerInput } from '../registry.ts';
import { Dlt645Input } from './input.ts';

export { Dlt645Input, DLT645_DEFAULT_TIMEOUT_MS } from './input.ts';
export { readMeterAddress } from './probe.ts';
export { DEFAULT_TARIFF_MAPPING, periodsByRegister } from './tariffs.ts';
export type { TariffMapping } from './tariffs.ts';

registerInput('dlt645', (ctx) => new Dlt645Input(ctx));
