/**
 * A site of three DL/T 645 meters on an eight-period TOU tariff (sharp, peak, flat,
 * valley), on one serial port, one of them programmed with another tariff register order:
 * the outage tests of billing amendment 12 (collector/inputs/dlt645/frozen-fill-tou.test.ts
 * on the simulator, cli/commands/bill.test.ts through `submeter sim` and `submeter bill`).
 */
export function frozenTouSiteYaml(port: string): string {
  const conn = (address: string, extra = '') => `{ protocol: dlt645, port: ${JSON.stringify(port)}, parity: none, address: "${address}", timeout_ms: 2000${extra} }`;
  return `
site: { id: frozen-tou, name: Frozen TOU, timezone: Asia/Shanghai }
meters:
  - { id: M0, role: master, max_gap: 2h, connection: ${conn('000000000001')} }
  - { id: T102, role: tenant, account: A102, max_gap: 2h, connection: ${conn('000000001102')} }
  # Programmed with the valley in register 1: the site file says so, and billing reads it.
  - { id: T103, role: tenant, account: A103, max_gap: 2h, connection: ${conn('000000001103', ', tariffs: { valley: 1, flat: 2, peak: 3, sharp: 4 }')} }
accounts:
  - { id: A102, name: Shop 102, tariff: tou, opening_balance: "500.00" }
  - { id: A103, name: Shop 103, tariff: tou, opening_balance: "300.00" }
loss: { normal_rate: 0.05, method: consumption }
tariffs:
  - id: tou
    versions:
      - effective_from: 2026-01-01
        prices: { sharp: "1.350000", peak: "1.100000", flat: "0.720000", valley: "0.350000" }
        schedule:
          - periods:
              - { from: "00:00", to: "07:00", period: valley }
              - { from: "07:00", to: "08:00", period: flat }
              - { from: "08:00", to: "11:00", period: peak }
              - { from: "11:00", to: "18:00", period: flat }
              - { from: "18:00", to: "20:00", period: sharp }
              - { from: "20:00", to: "22:00", period: peak }
              - { from: "22:00", to: "23:00", period: flat }
              - { from: "23:00", to: "24:00", period: valley }
`;
}
