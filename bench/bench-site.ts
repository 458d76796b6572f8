/**
 * The site of the workers' benchmarks: one master, one common meter in an area pool and
 * `tenants` tenant meters (T0001..) each with its account (A0001..), one TOU tariff; `id`
 * names the site (the soak benchmark runs many).
 */
export function benchSiteYaml(tenants: number, id = 'bench'): string {
  const ids = Array.from({ length: tenants }, (_, i) => String(i + 1).padStart(4, '0'));
  return `
site: { id: ${id}, name: Bench ${id}, timezone: Asia/Shanghai, currency: CNY }
meters:
  - { id: M0, role: master }
  - { id: C1, role: common, pool: lifts }
${ids.map((i) => `  - { id: T${i}, role: tenant, account: A${i} }`).join('\n')}
accounts:
${ids.map((i, k) => `  - { id: A${i}, name: Unit ${i}, area_m2: ${20 + (k % 50)}, tariff: c, opening_balance: "100.00" }`).join('\n')}
pools:
  - { id: lifts, method: area }
loss: { normal_rate: 0.03 }
tariffs:
  - id: c
    versions:
      - effective_from: 2026-01-01
        prices: { peak: "1.053200", flat: "0.702100", valley: "0.351100" }
        schedule:
          - periods:
              - { from: "00:00", to: "08:00", period: valley }
              - { from: "08:00", to: "11:00", period: peak }
              - { from: "11:00", to: "18:00", period: flat }
              - { from: "18:00", to: "23:00", period: peak }
              - { from: "23:00", to: "24:00", period: valley }
`;
}
