import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from '../lib/redis.ts';
import { privateRedisCluster } from '../test/private-servers.ts';
import type { PrivateCluster } from '../test/private-servers.ts';
import { redisKeys } from './keys.ts';
import { queuePrefix } from './queues.ts';

/**
 * Redis Cluster (issue 15): a 3-primary cluster on loopback (Debian's redis-server in
 * cluster mode, `redis-cli --cluster create`, private ports and data under .run/tmp),
 * and the workers' own tests run on it unchanged, with SUBMETER_REDIS_URL listing the
 * nodes: the live pipeline (rollup, settlement, late data, payments' Lua), the queues
 * with real BullMQ workers and schedulers, payments, the one-job-per-site catch-up, and
 * the API's (its one-round-trip tenant read, the stamps of usage, alerts and advice, the lane).
 * Redis itself counts every error it answered (INFO errorstats): no CROSSSLOT may appear.
 */
const REPO = fileURLToPath(new URL('../', import.meta.url));
const ON_CLUSTER = ['workers/pipeline.test.ts', 'workers/queues.test.ts', 'workers/payments.test.ts', 'workers/catch-up.test.ts', 'api/api.test.ts', 'api/stored-usage.test.ts', 'api/tenant-lane.test.ts'];

let cluster: PrivateCluster;
beforeAll(async () => {
  cluster = await privateRedisCluster(3);
}, 60_000);
afterAll(async () => {
  await cluster?.destroy();
});

function vitest(files: readonly string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    // One worker: the parent run already uses the two cores.
    const p = spawn(process.execPath, [`${REPO}node_modules/vitest/vitest.mjs`, 'run', ...files, '--maxWorkers=1'], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    // Plain text, whatever the terminal: the output is matched below.
    p.once('exit', (code) => resolve({ code, out: out.replace(/\u001b\[[0-9;]*m/g, '') }));
  });
}

describe('on a 3-primary Redis Cluster', () => {
  it("puts a site's keys in one slot and spreads sites and queues over the primaries", async () => {
    const redis = createRedis(cluster.url);
    try {
      const slot = async (key: string) => Number(await redis.cluster('KEYSLOT', key));
      const keys = Object.values(redisKeys('submeter', 'plaza'));
      const slots = new Set(await Promise.all(keys.map(slot)));
      expect(slots.size).toBe(1);
      // Which primary serves a slot: CLUSTER SHARDS' slot ranges, one entry per primary.
      const shards = (await redis.cluster('SHARDS')) as unknown[][];
      const ranges = shards.map((s) => (s[1] as number[]).reduce<[number, number][]>((acc, x, i, a) => (i % 2 === 0 ? [...acc, [x, a[i + 1]]] : acc), []));
      const primaryOf = (sl: number) => ranges.findIndex((rs) => rs.some(([a, b]) => sl >= a && sl <= b));
      const sitePrimaries = new Set(await Promise.all(Array.from({ length: 30 }, (_, i) => slot(redisKeys('submeter', `site-${i}`).payments).then(primaryOf))));
      expect(sitePrimaries.size).toBe(3);
      const queues = ['rollup', 'settlement', 'balance', 'alerts', 'notify'] as const;
      const queuePrimaries = new Set(await Promise.all(queues.map((q) => slot(`${queuePrefix('bull', q)}:${q}:wait`).then(primaryOf))));
      expect(queuePrimaries.size).toBeGreaterThan(1);
    } finally {
      redis.disconnect();
    }
  });

  it('runs the pipeline, queue, payment, catch-up and API tests unchanged, with zero cross-slot errors', async () => {
    const r = await vitest(ON_CLUSTER, { ...process.env, SUBMETER_REDIS_URL: cluster.url, NO_COLOR: '1', FORCE_COLOR: '0' });
    expect(r.code, r.out.slice(-4000)).toBe(0);
    // Every file ran, on the cluster, and passed.
    for (const f of ON_CLUSTER) expect(r.out).toContain(f);
    expect(r.out).toMatch(new RegExp(`Test Files\\s+${ON_CLUSTER.length} passed \\(${ON_CLUSTER.length}\\)`));
    expect(r.out).not.toMatch(/\d+ (failed|skipped)/);
    const errors = await cluster.errorStats();
    expect(errors.CROSSSLOT ?? 0).toBe(0);
    // The client followed redirections (a real cluster), and the only errors Redis answered were those.
    expect(Object.keys(errors).filter((e) => e !== 'MOVED' && e !== 'ASK')).toEqual([]);
  }, 300_000);
});
