import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InfluxV1 } from '../influx/client.ts';
import { M } from '../influx/schema.ts';
import { startCollector } from './collector.ts';
import { Spool } from './spool/index.ts';
import { freePort, startPymodbusTcp } from './test-support/pymodbus.ts';
import type { PymodbusServer } from './test-support/pymodbus.ts';
import { privateInflux } from '../test/private-servers.ts';
import { REPO, runCli, siteYaml, writeSite } from './test-support/site.ts';
import { tempDir } from './test-support/socat.ts';

const SHARED_INFLUX = process.env.SUBMETER_INFLUX_URL ?? 'http://127.0.0.1:8096';

let server: PymodbusServer;
beforeAll(async () => {
  server = await startPymodbusTcp({
    13: { fc: 4, floats: { 0: 230, 2: 230, 4: 230, 0x34: 1000, 0x48: 12345.67 } },
    11: { fc: 3, floats: { 0x2006: 2300, 0x2012: 5000, 0x401e: 42.5 } },
  });
});
afterAll(async () => server?.stop());

const meters = (port: number, interval = '1s') => [
  `{ id: M1, role: master, poll_interval: ${interval}, connection: { protocol: modbus-tcp, host: 127.0.0.1, port: ${port}, unit: 13, map: sdm630, timeout_ms: 500 } }`,
  `{ id: M2, role: common, pool: p, poll_interval: ${interval}, connection: { protocol: modbus-tcp, host: 127.0.0.1, port: ${port}, unit: 11, map: dtsu666, timeout_ms: 500 } }`,
];

describe('submeter collect --test', () => {
  it('--format lp prints one line of line protocol per meter and writes nowhere', async () => {
    const { path } = writeSite(tempDir('site'), siteYaml('t1', meters(server.port!)));
    const r = await runCli(['collect', '--site', path, '--test', '--format', 'lp']);
    expect(r.stderr).not.toMatch(/could not be read/);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^reading,meter=M1,site=t1 a=0,a_l1=0,a_l2=0,a_l3=0,hz=0,pf=0,v=230,v_l1=230,v_l2=230,v_l3=230,w=1000,w_l1=0,w_l2=0,w_l3=0,wh=12345670i \d{13}$/);
    expect(lines[1]).toMatch(/^reading,meter=M2,site=t1 .*w=500,.*wh=42500i \d{13}$/);
  });

  it('prints a readable table by default: kWh, power, volts per meter', async () => {
    const { path } = writeSite(tempDir('site'), siteYaml('t1', meters(server.port!)));
    const r = await runCli(['collect', '--site', path, '--test']);
    expect(r.code, r.stderr).toBe(0);
    const [head, m1, m2] = r.stdout.trim().split('\n');
    expect(head).toMatch(/^meter +kWh +W +V +A/);
    expect(m1).toMatch(/^M1 +12345\.670 +1000\.0 +230\.0 /);
    expect(m2).toMatch(/^M2 +42\.500 +500\.0 +230\.0 /);
    expect(r.stdout).not.toMatch(/^reading,/m);
  });

  it('exits non-zero naming the meter that could not be read', async () => {
    const dead = await freePort();
    const { path } = writeSite(tempDir('site'), siteYaml('t2', [...meters(server.port!).slice(0, 1), `{ id: GONE, role: common, pool: p, connection: { protocol: modbus-tcp, host: 127.0.0.1, port: ${dead}, unit: 1, map: sdm630, timeout_ms: 300 } }`]));
    const lp = await runCli(['collect', '--site', path, '--test', '--format', 'lp']);
    expect(lp.code).toBe(1);
    expect(lp.stdout.trim().split('\n')).toHaveLength(1);
    expect(lp.stderr).toMatch(/GONE: connection: .*ECONNREFUSED/);
    expect(lp.stderr).toMatch(/1 of 2 meters could not be read/);
    const table = await runCli(['collect', '--site', path, '--test']);
    expect(table.code).toBe(1);
    expect(table.stdout).toMatch(/^GONE +NOT READ: connection: .*ECONNREFUSED/m);
    expect(table.stderr).toMatch(/1 of 2 meters could not be read/);
  });
});

async function countReadings(influx: InfluxV1): Promise<Record<string, number>> {
  const rows = await influx.query(`SELECT count(wh) AS n FROM ${M.reading} GROUP BY meter`);
  return Object.fromEntries(rows.map((r) => [String(r.meter), Number(r.n)]));
}

describe('store and forward', () => {
  it('loses and duplicates nothing while its InfluxDB is killed mid-run and restarted', async () => {
    const influxd = await privateInflux();
    const influx = new InfluxV1({ url: influxd.url, db: 'collect', timeoutMs: 1000 });
    const { site } = writeSite(tempDir('site'), siteYaml('t3', meters(server.port!, '1s')));
    const collector = await startCollector({ site, spoolDir: join(tempDir('spool'), 's'), influx, pollIntervalMs: 40, stateIntervalMs: 200, forwarder: { retryBaseMs: 50, retryMaxMs: 300, idleMs: 50 } });
    try {
      await new Promise((r) => setTimeout(r, 700));
      await influxd.stop('SIGKILL');
      // Polling goes on into the spool while the database is away.
      const before = collector.spool.stats().lines;
      await new Promise((r) => setTimeout(r, 1500));
      expect(collector.spool.stats().lines).toBeGreaterThan(before);
      expect(collector.forwarder.stats().failing).toBeGreaterThan(0);
      await influxd.start();
      await new Promise((r) => setTimeout(r, 500));
      await collector.stop();
      // stop() leaves unacknowledged lines in the spool; a second run drains them.
      const health = collector.health();
      const collected = Object.fromEntries(health.meters.map((m) => [m.meter, m.reads - m.errors]));
      // Enough reads to mean something even when a loaded CI machine polls slowly.
      expect(collected.M1).toBeGreaterThan(3);
      const again = await startCollector({ site, spoolDir: collector.spool.dir, influx, meters: [], forwarder: { idleMs: 20 } });
      expect(await again.drained(20_000)).toBe(true);
      await again.stop();
      expect(await countReadings(influx)).toEqual(collected);
      // The spool and the meter health made it too.
      const [h] = await influx.query(`SELECT count(ok) AS n FROM ${M.meterHealth} WHERE meter = 'M1'`);
      expect(Number(h.n)).toBe(health.meters.find((m) => m.meter === 'M1')!.reads);
      const [c] = await influx.query(`SELECT max(spool_samples) AS n FROM ${M.collector}`);
      expect(Number(c.n)).toBeGreaterThan(0);
    } finally {
      await collector.stop();
      await influxd.destroy();
    }
  });

  it('raises the spool-full alarm and counts refused samples when InfluxDB stays away', async () => {
    const { site } = writeSite(tempDir('site'), siteYaml('t5', meters(server.port!, '1s')));
    const dead = new InfluxV1({ url: `http://127.0.0.1:${await freePort()}`, db: 'x', timeoutMs: 300 });
    const alarms: string[] = [];
    const log = { error: (_o: unknown, msg: string) => alarms.push(msg), warn: () => {}, info: () => {}, debug: () => {} } as unknown as import('../lib/logger.ts').Logger;
    const collector = await startCollector({ site, spoolDir: join(tempDir('spool'), 's'), influx: dead, pollIntervalMs: 10, spool: { maxBytes: 4000 }, forwarder: { retryBaseMs: 50 }, log });
    try {
      for (let i = 0; i < 100 && !collector.health().spool.full; i++) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 200));
      const h = collector.health();
      expect(h.spool.full).toBe(true);
      expect(h.spool.refused).toBeGreaterThan(0);
      expect(h.spool.bytes).toBeLessThanOrEqual(4000);
      expect(alarms.filter((m) => /spool full/.test(m))).toHaveLength(1);
      // The meters themselves are fine: a full spool is not a meter fault.
      expect(h.meters.every((m) => m.errors === 0)).toBe(true);
    } finally {
      await collector.stop();
    }
  });

  it('survives SIGKILL of the collector process: every spooled sample arrives exactly once', async () => {
    const influx = new InfluxV1({ url: SHARED_INFLUX, db: `t_collect_${randomBytes(4).toString('hex')}` });
    await influx.createDatabase();
    const dir = tempDir('sigkill');
    const { path } = writeSite(dir, siteYaml('t4', meters(server.port!, '1s')));
    const spoolDir = join(dir, 'spool');
    try {
      // Run 1: InfluxDB unreachable, so everything stays in the spool; killed mid-flight.
      const deadPort = await freePort();
      const p = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'cli/main.ts'), 'collect', '--site', path, '--spool', spoolDir, '--poll-interval', '20'], {
        cwd: REPO,
        env: { ...process.env, SUBMETER_INFLUX_URL: `http://127.0.0.1:${deadPort}`, SUBMETER_INFLUX_DB: influx.db, SUBMETER_LOG_LEVEL: 'silent' },
        stdio: 'ignore',
      });
      const exited = new Promise<void>((r) => p.once('exit', () => r()));
      // Wait until the child has spooled a fair amount (polled through a second Spool view would race; poll the dir size).
      const { readdirSync, statSync } = await import('node:fs');
      const spooled = () => {
        try {
          return readdirSync(spoolDir).filter((f) => f.endsWith('.seg')).reduce((n, f) => n + statSync(join(spoolDir, f)).size, 0);
        } catch {
          return 0;
        }
      };
      for (let i = 0; i < 600 && spooled() < 6000; i++) await new Promise((r) => setTimeout(r, 50));
      p.kill('SIGKILL');
      await exited;
      expect(spooled()).toBeGreaterThan(0);

      // What run 1 made durable: read the spool as recovery sees it (torn tail cut).
      const view = await Spool.open(spoolDir);
      const lines = (await view.peek(1_000_000))?.lines ?? [];
      await view.close();
      const expected: Record<string, number> = {};
      for (const l of lines) {
        const m = /^reading,meter=([^,]+),/.exec(l);
        if (m) expected[m[1]] = (expected[m[1]] ?? 0) + 1;
      }
      expect(expected.M1).toBeGreaterThan(5);
      const lastTime = Math.max(...lines.map((l) => Number(l.slice(l.lastIndexOf(' ') + 1))));

      // Run 2: the same spool, InfluxDB up, no meters: it must forward run 1's lines.
      const p2 = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'cli/main.ts'), 'collect', '--site', path, '--spool', spoolDir, '--meter', 'NONE'], {
        cwd: REPO,
        env: { ...process.env, SUBMETER_INFLUX_URL: SHARED_INFLUX, SUBMETER_INFLUX_DB: influx.db, SUBMETER_LOG_LEVEL: 'silent' },
        stdio: 'ignore',
      });
      const exited2 = new Promise<void>((r) => p2.once('exit', () => r()));
      let got: Record<string, number> = {};
      for (let i = 0; i < 300; i++) {
        const rows = await influx.query(`SELECT count(wh) AS n FROM ${M.reading} WHERE time <= ${lastTime}ms GROUP BY meter`).catch(() => []);
        got = Object.fromEntries(rows.map((r) => [String(r.meter), Number(r.n)]));
        if (got.M1 === expected.M1 && got.M2 === expected.M2) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      p2.kill('SIGTERM');
      await exited2;
      expect(got).toEqual(expected);
    } finally {
      await influx.dropDatabase();
    }
  }, 60_000);
});
