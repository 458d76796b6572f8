/** The TOU prices of the benchmarks' tariff `c` (CNY/kWh, 6 decimals as in a site file). */
export const BENCH_PRICES = { peak: '1.053200', flat: '0.702100', valley: '0.351100' } as const;

export interface BenchSiteOptions {
  /** Site name. @defaultValue `Bench <id>` */
  readonly name?: string;
  /** A second common meter (C2) in a consumption pool `hall`, and loss shared by consumption. */
  readonly hall?: boolean;
  /** Each account's opening balance. @defaultValue "100.00" */
  readonly opening?: string;
  /** Each account's low-balance alert level (none when absent). */
  readonly lowBalance?: string;
}

/**
 * The site of the benchmarks: one master, one common meter in an area pool (and with
 * `hall` a second in a consumption pool) and `tenants` tenant meters (T0001..) each with its
 * account (A0001..), one TOU tariff; `id` names the site (the soak benchmark runs many).
 */
export function benchSiteYaml(tenants: number, id = 'bench', opts: BenchSiteOptions = {}): string {
  const ids = Array.from({ length: tenants }, (_, i) => String(i + 1).padStart(4, '0'));
  const extra = `opening_balance: "${opts.opening ?? '100.00'}"${opts.lowBalance ? `, low_balance: "${opts.lowBalance}"` : ''}`;
  return `
site: { id: ${id}, name: ${opts.name ?? `Bench ${id}`}, timezone: Asia/Shanghai, currency: CNY }
meters:
  - { id: M0, role: master }
  - { id: C1, role: common, pool: lifts }
${opts.hall ? '  - { id: C2, role: common, pool: hall }\n' : ''}${ids.map((i) => `  - { id: T${i}, role: tenant, account: A${i} }`).join('\n')}
accounts:
${ids.map((i, k) => `  - { id: A${i}, name: Unit ${i}, area_m2: ${20 + (k % 50)}, tariff: c, ${extra} }`).join('\n')}
pools:
  - { id: lifts, method: area }
${opts.hall ? '  - { id: hall, method: consumption }\nloss: { normal_rate: 0.03, method: consumption }' : 'loss: { normal_rate: 0.03 }'}
tariffs:
  - id: c
    versions:
      - effective_from: 2026-01-01
        prices: { peak: "${BENCH_PRICES.peak}", flat: "${BENCH_PRICES.flat}", valley: "${BENCH_PRICES.valley}" }
        schedule:
          - periods:
              - { from: "00:00", to: "08:00", period: valley }
              - { from: "08:00", to: "11:00", period: peak }
              - { from: "11:00", to: "18:00", period: flat }
              - { from: "18:00", to: "23:00", period: peak }
              - { from: "23:00", to: "24:00", period: valley }
`;
}
