import type { Site } from '../../core/index.ts';
import { parseSiteYaml } from '../../core/index.ts';

/**
 * A small site for DL/T 645 tests: a master without connection (the site file needs one),
 * one DL/T 645 tenant meter (T102, address
 * 000000001102) and, when `modbusPort` is given, a Modbus RTU tenant (T101, unit 11) on
 * the same port. The TOU layout is the example site's (Asia/Shanghai, valley 23-07,
 * peak 08-11 and 18-23, flat otherwise; sharp 19-21 in July and August).
 */
export function dlt645TestSite(opts: { port: string; parity?: 'none' | 'even'; baud?: number; tariffs?: string; modbusPort?: string; modbusBaud?: number; timeoutMs?: number }): Site {
  const conn = [
    `protocol: dlt645`,
    `port: ${JSON.stringify(opts.port)}`,
    `baud: ${opts.baud ?? 2400}`,
    `parity: ${opts.parity ?? 'none'}`,
    `address: "000000001102"`,
    ...(opts.tariffs ? [`tariffs: ${opts.tariffs}`] : []),
    ...(opts.timeoutMs ? [`timeout_ms: ${opts.timeoutMs}`] : []),
  ].join(', ');
  const modbus = opts.modbusPort
    ? `
  - id: T101
    role: tenant
    account: A101
    connection: { protocol: modbus-rtu, port: ${JSON.stringify(opts.modbusPort)}, baud: ${opts.modbusBaud ?? 9600}, unit: 11, map: ddsu666 }`
    : '';
  return parseSiteYaml(`
site: { id: dlt-test, timezone: Asia/Shanghai }
meters:
  - { id: M0, role: master }
  - id: T102
    role: tenant
    account: A102
    connection: { ${conn} }${modbus}
accounts:
  - { id: A101, tariff: commercial }
  - { id: A102, tariff: commercial }
tariffs:
  - id: commercial
    versions:
      - effective_from: 2026-01-01
        prices: { sharp: "1.263840", peak: "1.053200", flat: "0.702100", valley: "0.351100" }
        schedule:
          - months: [1, 2, 3, 4, 5, 6, 9, 10, 11, 12]
            periods:
              - { from: "00:00", to: "07:00", period: valley }
              - { from: "07:00", to: "08:00", period: flat }
              - { from: "08:00", to: "11:00", period: peak }
              - { from: "11:00", to: "18:00", period: flat }
              - { from: "18:00", to: "23:00", period: peak }
              - { from: "23:00", to: "24:00", period: valley }
          - months: [7, 8]
            periods:
              - { from: "00:00", to: "07:00", period: valley }
              - { from: "07:00", to: "08:00", period: flat }
              - { from: "08:00", to: "11:00", period: peak }
              - { from: "11:00", to: "18:00", period: flat }
              - { from: "18:00", to: "19:00", period: peak }
              - { from: "19:00", to: "21:00", period: sharp }
              - { from: "21:00", to: "23:00", period: peak }
              - { from: "23:00", to: "24:00", period: valley }
`);
}
