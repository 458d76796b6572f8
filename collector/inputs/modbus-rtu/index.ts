import { registerInput } from '../registry.ts';
import { ModbusRtuInput } from './modbus-rtu-input.ts';

export { ModbusRtuInput, RTU_DEFAULT_TIMEOUT_MS } from './modbus-rtu-input.ts';
export { crc16, readRequest, readReplyCheck, parseReadReply } from './rtu-frame.ts';

registerInput('modbus-rtu', (ctx) => new ModbusRtuInput(ctx));
