import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseSiteYaml } from '../core/site/index.ts';
import { InfluxV1 } from '../influx/client.ts';
import { F, M, T } from '../influx/schema.ts';
import { dlt645Handler } from '../sim/dlt645/handler.ts';
import { startSimulator } from '../sim/simulator.ts';
import { openPtyPair } from '../sim/test-support.ts';
import { startCollector } from './collector.ts';
import { tempDir } from './test-support/socat.ts';

/**
 * The wiring of issue 16's outage fill in the real collector: `startCollector` keeps each
 * meter's last read beside the spool, and a collector started again after three simulated
 * days reads the DL/T 645 meter's freezes back through its poller and forwards them to
 * InfluxDB marked source=frozen, before the live reading.
 */
const HOUR = 3_600_000;
const DAY0 = Date.UTC(2026, 2, 1, 16); // 2026-03-02 00:00 Asia/Shanghai
const influx = new InfluxV1({ url: process.env.SUBMETER_INFLUX_URL ?? 'http://127.0.0.1:8096', db: `t_restart_gap_${randomBytes(4).toString('hex')}` });

afterAll(async () => {
  await influx.dropDatabase().catch(() => undefined);
});

async function until(check: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
}

describe('startCollector across a restart', () => {
  it('saves last-seen times and fills a 3-day gap from the meter freezes', async () => {
    const pty = await openPtyPair();
    let now = DAY0 + 10 * HOUR;
    const site = parseSiteYaml(`
site: { id: restart, timezone: Asia/Shanghai }
meters:
  - { id: M0, role: master, connection: { protocol: dlt645, port: ${JSON.stringify(pty.a)}, parity: none, address: "000000000001", timeout_ms: 2000 } }
tariffs: []
`);
    const sim = await startSimulator({ site, now: () => now, epoch: DAY0 - HOUR, serial: pty.b, tcp: false, serialProtocols: [dlt645Handler({ site })] });
    const spoolDir = join(tempDir('restart-gap'), 'spool');
    const opts = { site, spoolDir, influx, now: () => now, pollIntervalMs: 100_000, stateIntervalMs: 100_000, timeSyncAt: false as const, forwarder: { idleMs: 20 } };
    // stop() waits for the poll in progress (freezes included) to reach the spool; a
    // collector without meters then drains the spool into InfluxDB.
    const drain = async () => {
      const d = await startCollector({ ...opts, meters: [] });
      expect(await d.drained(20_000)).toBe(true);
      await d.stop();
    };
    try {
      const first = await startCollector(opts);
      await until(() => first.health().meters[0]?.reads > 0, 10_000);
      await first.stop();
      await drain();
      const saved = JSON.parse(readFileSync(join(spoolDir, 'last-seen.json'), 'utf8')) as Record<string, number>;
      expect(saved).toEqual({ M0: DAY0 + 10 * HOUR });

      now += 3 * 24 * HOUR; // the collector was down for three days; the meter kept counting
      const second = await startCollector(opts);
      await until(() => second.health().meters[0]?.reads > 0, 10_000);
      await second.stop();
      await drain();

      const rows = await influx.query(`SELECT "${F.wh}", "${F.source}" FROM "${M.reading}" WHERE "${T.meter}" = 'M0'`);
      const frozen = rows.filter((r) => r.source === 'frozen').map((r) => Number(r.time));
      expect(frozen).toEqual([1, 2, 3].map((d) => DAY0 + d * 24 * HOUR));
      expect(rows.map((r) => Number(r.time))).toEqual([DAY0 + 10 * HOUR, ...frozen, now]);
      expect(existsSync(join(spoolDir, 'last-seen.json'))).toBe(true);
    } finally {
      await sim.stop();
      await pty.close();
    }
  }, 60_000);
});
