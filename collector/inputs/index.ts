/**
 * Every meter input, registered by protocol on import. A new protocol adds its folder
 * and one import line here.
 */
import './modbus-tcp/index.ts';
import './modbus-rtu/index.ts';
import './dlt645/index.ts';

export { createInput, registerInput, registeredProtocols } from './registry.ts';
export type { InputResources, CollectorInputContext, ProtocolFactory, Protocol } from './registry.ts';
