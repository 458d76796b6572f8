export { parseSiteYaml } from './load.ts';
export { SiteFileError } from './errors.ts';
export type { SiteIssue } from './errors.ts';
export type { Site, Meter, Account, Pool, MeterRole, ShareMethod, MeterConnection, ModbusMapName, TopupConfig, TopupProviderName } from './model.ts';
export { MODBUS_MAPS } from './schema.ts';
export { byteOrder } from './validate.ts';
