import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InfluxV1 } from '../influx/client.ts';
import { siteReloadChannel } from '../lib/site-reload-channel.ts';
import { startCollector } from './collector.ts';
import type { Collector } from './collector.ts';
import { freePort } from './test-support/pymodbus.ts';
import { siteYaml, writeSite } from './test-support/site.ts';
import { tempDir } from './test-support/socat.ts';

/**
 * The API's reload route publishes the site id on the workers' Redis channel (billing.md
 * section 11 rule 9); the collector listens there too (issue 12 left it to file changes and
 * SIGHUP). The file watch is off here, so only the announcement can make it reload. Without
 * Redis, or with Redis unreachable, the collector runs and reloads as before.
 */

const REDIS = process.env.SUBMETER_REDIS_URL ?? 'redis://127.0.0.1:6389';
const influx = new InfluxV1({ url: process.env.SUBMETER_INFLUX_URL ?? 'http://127.0.0.1:8096', db: `t_reload_${randomBytes(4).toString('hex')}`, timeoutMs: 2000 });

let dead: number;
let redis: Redis;
beforeAll(async () => {
  dead = await freePort();
  redis = new Redis(REDIS, { maxRetriesPerRequest: 3 });
});
afterAll(async () => {
  redis?.disconnect();
  await influx.queryRaw(`DROP DATABASE ${influx.db}`).catch(() => undefined);
});

const MASTER = '{ id: M0, role: master }';
const meter = (id: string, unit = 1) => `{ id: ${id}, role: common, pool: p, poll_interval: 1h, connection: { protocol: modbus-tcp, host: 127.0.0.1, port: ${dead}, unit: ${unit}, map: sdm630, timeout_ms: 200 } }`;

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("the collector reloads on the API's reload announcement", () => {
  it('a changed file is taken up when this site is announced on Redis, not before, not for another site', async () => {
    const dir = tempDir('reload');
    const id = `rl${randomBytes(3).toString('hex')}`;
    const keyPrefix = `t-reload-${randomBytes(4).toString('hex')}`;
    const channel = siteReloadChannel(keyPrefix);
    const { path, site } = writeSite(dir, siteYaml(id, [MASTER, meter('M1')]));
    const collector: Collector = await startCollector({ site, siteFile: path, watchSiteFile: false, reloadChannel: { redisUrl: REDIS, keyPrefix }, spoolDir: join(dir, 'spool'), influx, stateIntervalMs: 60_000 });
    try {
      await until('the subscription', async () => Number(((await redis.pubsub('NUMSUB', channel)) as [string, number])[1]) >= 1);
      writeFileSync(path, siteYaml(id, [MASTER, meter('M1'), meter('M2', 2)]));
      await redis.publish(channel, 'another-site');
      await new Promise((r) => setTimeout(r, 300));
      expect(collector.health().meters.map((m) => m.meter)).toEqual(['M1']);
      await redis.publish(channel, id);
      await until('M2 polled after the announcement', () => collector.health().meters.length === 2);
      expect(collector.health().meters.map((m) => m.meter).sort()).toEqual(['M1', 'M2']);
    } finally {
      await collector.stop();
    }
    // Stopped: its subscription is gone.
    await until('the unsubscription', async () => Number(((await redis.pubsub('NUMSUB', channel)) as [string, number])[1]) === 0);
  });

  it('runs with Redis unreachable: starts, reloads on request (SIGHUP), stops', async () => {
    const dir = tempDir('reload');
    const id = `rl${randomBytes(3).toString('hex')}`;
    const { path, site } = writeSite(dir, siteYaml(id, [MASTER, meter('M1')]));
    const nowhere = `redis://127.0.0.1:${await freePort()}`;
    const collector = await startCollector({ site, siteFile: path, watchSiteFile: false, reloadChannel: { redisUrl: nowhere }, spoolDir: join(dir, 'spool'), influx, stateIntervalMs: 60_000 });
    try {
      writeFileSync(path, siteYaml(id, [MASTER, meter('M1'), meter('M2', 2)]));
      expect(await collector.reload()).toEqual({ outcome: 'applied', reasons: [] });
      expect(collector.health().meters).toHaveLength(2);
    } finally {
      await collector.stop();
    }
  });
});
