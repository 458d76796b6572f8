import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { InfluxV1 } from '../../influx/client.ts';
import { SITE_YAML } from '../../workers/testing/env.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const id = randomBytes(4).toString('hex');
const dir = `${root}.run/tmp/pay-cli-${id}`;
const siteId = `paycli-${id}`;
const db = `t_paycli_${id}`;
const influx = new InfluxV1({ url: process.env.SUBMETER_INFLUX_URL ?? 'http://127.0.0.1:8096', db });
const redisUrl = process.env.SUBMETER_REDIS_URL ?? 'redis://127.0.0.1:6389';

async function pay(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return payWith({}, ...args);
}

async function payWith(env: Record<string, string>, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [`${root}bin/submeter.js`, 'pay', '--site', `${dir}/site.yaml`, ...args], { env: { ...process.env, SUBMETER_INFLUX_DB: db, SUBMETER_REDIS_URL: redisUrl, ...env } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('submeter pay (real Redis and InfluxDB)', () => {
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}/site.yaml`, SITE_YAML.replace('id: wk-plaza', `id: ${siteId}`));
  afterAll(async () => {
    await influx.dropDatabase().catch(() => undefined);
    const r = new Redis(redisUrl);
    await r.del(`submeter:site:${siteId}:payments`);
    r.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  it('records once, repeats as duplicate, refuses a conflict with exit 3 and bad amounts with exit 2', async () => {
    const args = ['--account', 'A101', '--amount', '100.00', '--reference', 'R-1', '--time', '2026-10-05T10:00:00+08:00'];
    const first = await pay(...args);
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toEqual({ status: 'recorded', site: siteId, account: 'A101', amount: '100.00', reference: 'R-1', time: '2026-10-05T02:00:00.000Z' });
    expect(JSON.parse((await pay(...args)).stdout).status).toBe('duplicate');
    const conflict = await pay('--account', 'A101', '--amount', '100.50', '--reference', 'R-1', '--time', '2026-10-05T10:00:00+08:00');
    expect(conflict.code).toBe(3);
    expect(conflict.stderr).toMatch(/already used by 100\.00 to A101/);
    const bad = await pay('--account', 'A101', '--amount', '1.005', '--reference', 'R-2');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--amount must be a decimal with at most 2 places/);
    const rows = await influx.query('SELECT fen FROM payment');
    expect(rows.map((r) => r.fen)).toEqual([10_000]);
  }, 60_000);

  it('records a refund (negative) and a transfer (two ledger lines, one reference); a positive refund exits 2', async () => {
    const refund = await pay('--account', 'A101', '--amount', '-30.00', '--kind', 'refund', '--reference', 'RF-1', '--time', '2026-10-06T10:00:00+08:00');
    expect(refund.code).toBe(0);
    expect(JSON.parse(refund.stdout)).toMatchObject({ status: 'recorded', amount: '-30.00', kind: 'refund' });
    const transfer = await pay('--account', 'A101', '--amount', '20.00', '--kind', 'transfer', '--to', 'A102', '--reference', 'TR-1', '--time', '2026-10-06T11:00:00+08:00');
    expect(transfer.code).toBe(0);
    const lines = await influx.query(`SELECT fen FROM payment WHERE reference = 'TR-1' GROUP BY account, kind`);
    expect(lines.map((r) => [r.account, r.kind, r.fen])).toEqual([
      ['A101', 'transfer', -2000],
      ['A102', 'transfer', 2000],
    ]);
    const wrong = await pay('--account', 'A101', '--amount', '30.00', '--kind', 'refund', '--reference', 'RF-2');
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/a refund is money paid back: a negative amount/);
  }, 60_000);

  it('without --time, running the same payment again is a duplicate (issue 11), not a conflict', async () => {
    const args = ['--account', 'A102', '--amount', '20.00', '--reference', 'R-NOW'];
    const first = await pay(...args);
    expect(first.code, first.stderr).toBe(0);
    const again = await pay(...args);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ status: 'duplicate', time: JSON.parse(first.stdout).time });
  }, 60_000);

  it('refuses a time in the future or outside the supported dates with exit 2; a store that is down exits 1 without its text', async () => {
    const future = await pay('--account', 'A101', '--amount', '1.00', '--reference', 'R-F', '--time', '2100-01-01T00:00:00+08:00');
    expect(future.code).toBe(2);
    expect(future.stderr).toMatch(/payment time 2100-01-01T00:00:00\+08:00 is in the future/);
    const old = await pay('--account', 'A101', '--amount', '1.00', '--reference', 'R-O', '--time', '1500-01-01T00:00:00+08:00');
    expect(old.code).toBe(2);
    expect(old.stderr).toMatch(/--time .*outside the supported dates 2000-01-01 to 2199-12-31/);
    const down = await payWith({ SUBMETER_INFLUX_URL: 'http://127.0.0.1:9' }, '--account', 'A101', '--amount', '1.00', '--reference', 'R-D');
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/InfluxDB is unavailable/);
    expect(down.stderr).not.toMatch(/influx (write|query)|fetch failed|127\.0\.0\.1:9/);
  }, 60_000);
});
