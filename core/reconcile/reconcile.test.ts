import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { billFromSettlement, computeAdvice, parseSiteYaml, ReadingsScanner, reconcile, settleRange } from '../index.ts';

const cases = join(import.meta.dirname, '../../testcases');
function load(name: string, extraYaml = '') {
  const site = parseSiteYaml(readFileSync(join(cases, name, 'site.yaml'), 'utf8') + extraYaml);
  const scanner = new ReadingsScanner(site, 'readings.csv');
  scanner.push(readFileSync(join(cases, name, 'readings.csv')));
  return { site, store: scanner.end() };
}

describe('recovery reconciliation', () => {
  it('compares the utility cost of the master with tenant charges and flags prices over the cap', () => {
    // loss-above-cap: master 50 kWh; tenants pay 10.63 (10.625 kWh) and 31.88 (31.875 kWh).
    const utility = `  - id: u
    versions:
      - effective_from: 2026-01-01
        prices: { flat: "0.800000" }
        schedule: [{ periods: [{ from: "00:00", to: "24:00", period: flat }] }]
utility: { tariff: u, markup_cap: 0.1 }
`;
    const { site, store } = load('loss-above-cap', utility);
    const settled = settleRange(site, store, '2026-10-01', '2026-10-02');
    const r = reconcile(settled, billFromSettlement(settled, []));
    expect(r).toEqual({
      site: 'loss-cap',
      from: '2026-10-01',
      to: '2026-10-02',
      currency: 'CNY',
      utility: { tariff: 'u', lines: [{ period: 'flat', kwh: '50.000', price: '0.800000', amount: '40.00' }], kwh: '50.000', amount: '40.00', average_price: '0.800000', flat_price: '0.800000' },
      tenants: { kwh: '42.500', amount: '42.51', average_price: '1.000235' },
      recovery_rate: '1.0628',
      unrecovered: '-2.51',
      markup_cap: '0.1',
      // Each tenant's mix at the utility's 0.80: A1 own 10 kWh 8.00 + loss 0.625 kWh 0.50 = 8.50,
      // cap x 1.1 = 9.35; A2 own 30 kWh 24.00 + loss 1.875 kWh 1.50 = 25.50, cap 28.05.
      accounts: [
        { account: 'A1', kwh: '10.625', amount: '10.63', average_price: '1.000471', utility_amount: '8.50', cap_amount: '9.35', price_cap: '0.880000', over_cap: true },
        { account: 'A2', kwh: '31.875', amount: '31.88', average_price: '1.000157', utility_amount: '25.50', cap_amount: '28.05', price_cap: '0.880000', over_cap: true },
      ],
    });
  });
});

describe('load-shift advice', () => {
  it('reports energy by period, a typical day, the saving of moving 20 % of sharp+peak to valley, and night base load', () => {
    // july-august-sharp-hours: 1 kW flat for two days (June 30 without sharp, July 1 with 2 h sharp).
    const { site, store } = load('july-august-sharp-hours');
    const a = computeAdvice(site, store, '2026-06-30', '2026-07-02');
    expect(a.days).toBe(2);
    expect(a.accounts).toEqual([
      {
        account: 'A1',
        periods: [
          { period: 'sharp', kwh: '2.000', kwh_per_day: '1.000', price: '1.500000' },
          { period: 'peak', kwh: '30.000', kwh_per_day: '15.000', price: '1.000000' },
          { period: 'valley', kwh: '16.000', kwh_per_day: '8.000', price: '0.500000' },
        ],
        peak_kwh: '32.000',
        shift_kwh: '6.400',
        shift_to: 'valley',
        // 0.2 x (2 kWh x (1.5 - 0.5) + 30 kWh x (1.0 - 0.5)) = 3.40
        saving: '3.40',
        night_base_kw: '1.000',
      },
    ]);
  });
});
