import { registerInput } from '../registry.ts';
import { ModbusTcpInput } from './modbus-tcp-input.ts';

export { ModbusTcpInput, TCP_DEFAULT_TIMEOUT_MS } from './modbus-tcp-input.ts';
export { ModbusTcpPool } from './tcp-pool.ts';
export type { ModbusTcpPoolOptions } from './tcp-pool.ts';

registerInput('modbus-tcp', (ctx) => new ModbusTcpInput(ctx));
