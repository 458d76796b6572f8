import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Writes the issue-3 benchmark month: a site with `tenants` tenant meters plus a master
 * and two common meters, and 1-minute readings from 2026-10-01 (Asia/Shanghai), time-major
 * (each minute lists every meter), until about `rows` rows. Deterministic (no Math.random).
 * Used by bench/billing-cli.bench.ts; runnable alone:
 *   npx tsx bench/billing-gen.ts <dir> [rows] [tenants]
 */
export interface GeneratedMonth {
  site: string;
  readings: string;
  payments: string;
  rows: number;
  meters: number;
  minutes: number;
}

export function generateMonth(dir: string, rows = 45_000_000, tenants = 1000): GeneratedMonth {
  mkdirSync(dir, { recursive: true });
  const meters = tenants + 3;
  const minutes = Math.max(2, Math.ceil(rows / meters));
  const site = [
    'site: { id: bench-month, timezone: Asia/Shanghai, currency: CNY }',
    'meters:',
    '  - { id: M0, role: master, register_modulus_kwh: 100000000, max_kw: 100000 }',
    '  - { id: C-ELEV, role: common, pool: elevators }',
    '  - { id: C-LOBBY, role: common, pool: lobby }',
    ...Array.from({ length: tenants }, (_, i) => `  - { id: T${i + 1}, role: tenant, account: A${i + 1} }`),
    'accounts:',
    ...Array.from({ length: tenants }, (_, i) => `  - { id: A${i + 1}, area_m2: ${50 + (i % 7) * 10}, tariff: commercial, opening_balance: "1000.00" }`),
    'pools:',
    '  - { id: elevators, method: area }',
    '  - { id: lobby, method: consumption }',
    'loss: { normal_rate: 0.03, method: consumption }',
    'tariffs:',
    '  - id: commercial',
    '    versions:',
    '      - effective_from: 2026-01-01',
    '        prices: { peak: "1.053200", flat: "0.702100", valley: "0.351100" }',
    '        schedule:',
    '          - periods:',
    '              - { from: "00:00", to: "07:00", period: valley }',
    '              - { from: "07:00", to: "08:00", period: flat }',
    '              - { from: "08:00", to: "11:00", period: peak }',
    '              - { from: "11:00", to: "18:00", period: flat }',
    '              - { from: "18:00", to: "23:00", period: peak }',
    '              - { from: "23:00", to: "24:00", period: valley }',
    '',
  ].join('\n');
  const sitePath = join(dir, 'site.yaml');
  writeFileSync(sitePath, site);
  const paymentsPath = join(dir, 'payments.csv');
  writeFileSync(paymentsPath, ['time,account,amount,reference', ...Array.from({ length: tenants }, (_, i) => `2026-10-05T10:00:00+08:00,A${i + 1},500.00,P${i + 1}`), ''].join('\n'));

  // Register values in milli-Wh so that sub-Wh power per minute accumulates exactly.
  const ids = ['M0', 'C-ELEV', 'C-LOBBY', ...Array.from({ length: tenants }, (_, i) => `T${i + 1}`)];
  const reg = new Float64Array(meters).fill(0);
  for (let i = 0; i < meters; i++) reg[i] = (1000 + i * 37) * 1_000_000;
  const basePowerW = Array.from({ length: meters }, (_, i) => (i < 3 ? 5000 + i * 1000 : 1000 + ((i * 7919) % 19000)));
  const readingsPath = join(dir, 'readings.csv');
  const fd = openSync(readingsPath, 'w');
  writeSync(fd, 'time,meter,kwh\n');
  const t0 = Date.UTC(2026, 8, 30, 16, 0, 0); // 2026-10-01T00:00:00+08:00
  let written = 0;
  let buf: string[] = [];
  for (let m = 0; m < minutes; m++) {
    const local = new Date(t0 + m * 60_000 + 8 * 3_600_000).toISOString().slice(0, 19);
    const time = `${local}+08:00`;
    const hour = Number(local.slice(11, 13));
    const shape = hour >= 8 && hour < 22 ? 3 : 1;
    let tenantSum = 0;
    for (let i = 3; i < meters; i++) {
      const mwh = Math.floor((basePowerW[i] * shape * 1000) / 60); // milli-Wh per minute
      if (m > 0) reg[i] += mwh;
      tenantSum += mwh;
    }
    if (m > 0) {
      reg[1] += Math.floor((basePowerW[1] * 1000) / 60);
      reg[2] += Math.floor((basePowerW[2] * 1000) / 60);
      reg[0] += Math.floor(tenantSum * 1.02) + Math.floor(((basePowerW[1] + basePowerW[2]) * 1000) / 60);
    }
    for (let i = 0; i < meters; i++) {
      const wh = Math.floor(reg[i] / 1000);
      buf.push(`${time},${ids[i]},${Math.floor(wh / 1000)}.${String(wh % 1000).padStart(3, '0')}\n`);
    }
    written += meters;
    if (buf.length >= 50_000) {
      writeSync(fd, buf.join(''));
      buf = [];
    }
  }
  if (buf.length) writeSync(fd, buf.join(''));
  closeSync(fd);
  return { site: sitePath, readings: readingsPath, payments: paymentsPath, rows: written, meters, minutes };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [dir = '.run/tmp/bench-month', rows, tenants] = process.argv.slice(2);
  const g = generateMonth(dir, rows ? Number(rows) : undefined, tenants ? Number(tenants) : undefined);
  process.stderr.write(`${JSON.stringify(g)}\n`);
}
