import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { sampleLine } from '../influx/lines.ts';
import { breakReadingsLog, LOG_ENTRY_MAX_READINGS, parseLoggedReadings, readingsLogKey, ReadingsLogWriter } from './readings-log.ts';
import { createRedis, deleteMatching } from './redis.ts';

const REDIS_URL = process.env.SUBMETER_REDIS_URL ?? 'redis://127.0.0.1:6389';

/** The chain the rollup trusts (workers/readings-cursor.ts): every entry names its writer's previous one, or says it cannot. */
describe('ReadingsLogWriter (real Redis)', () => {
  const prefix = `t-rlogw-${randomBytes(4).toString('hex')}`;
  const redis = createRedis(REDIS_URL, { maxRetriesPerRequest: 0 });
  redis.on('error', () => undefined);
  afterAll(async () => {
    await deleteMatching(redis, `${prefix}:*`);
    redis.disconnect();
  });
  const entries = async (site: string) =>
    (await redis.xrange(readingsLogKey(prefix, site), '-', '+')).map(([id, f]) => {
      const o: Record<string, string> = { id };
      for (let i = 0; i < f.length; i += 2) o[f[i]] = f[i + 1];
      return o;
    });

  it('chains entries in call order; a break queued behind appends is not undone by them; a failed append breaks the chain', async () => {
    const w = new ReadingsLogWriter(redis, prefix);
    const line = (meter: string, time: number, wh: number, site = 's1') => sampleLine(site, { meter, time, wh, tariffWh: { 1: 7 } });
    // Not awaited one by one: the writer orders them.
    void w.written('s1', [line('T1', 1000, 5), 'health,site=s1 up=1i 1000', line('T2', 1000, 9)].join('\n'));
    void w.written('s1', line('T1', 2000, 6));
    void w.broken('s1');
    await w.written('s1', line('T1', 3000, 7));
    const [a, b, c] = await entries('s1');
    expect(a.prev).toBe('new');
    expect(parseLoggedReadings(a.r)).toEqual([
      ['T1', 1000, 5, 7, undefined, undefined, undefined],
      ['T2', 1000, 9, 7, undefined, undefined, undefined],
    ]);
    expect(b.prev).toBe(a.id);
    expect(c.prev).toBe('?');
    expect(new Set([a.w, b.w, c.w]).size).toBe(1);

    // Redis away for one append: maybe written, maybe not, so the next cannot vouch.
    const flaky = createRedis(REDIS_URL, { maxRetriesPerRequest: 0 });
    flaky.on('error', () => undefined);
    await flaky.ping();
    const f = new ReadingsLogWriter(flaky, prefix);
    await f.written('s2', line('T1', 1000, 5, 's2'));
    flaky.disconnect();
    await f.written('s2', line('T1', 2000, 6, 's2'));
    await flaky.connect();
    await flaky.ping();
    await f.written('s2', line('T1', 3000, 7, 's2'));
    flaky.disconnect();
    const [x, y] = await entries('s2');
    expect(x.prev).toBe('new');
    expect(y.prev).toBe('?');
    expect(parseLoggedReadings(y.r)).toEqual([['T1', 3000, 7, 7, undefined, undefined, undefined]]);
  });

  it('a body it cannot read breaks the chain; an import breaks it for every reader', async () => {
    const w = new ReadingsLogWriter(redis, prefix);
    await w.written('s3', sampleLine('s3', { meter: 'T1', time: 1000, wh: 5 }));
    await w.written('s3', 'reading,site=s3 wh=5i 2000');
    await w.written('s3', sampleLine('s3', { meter: 'T1', time: 3000, wh: 6 }));
    await breakReadingsLog(redis, prefix, 's3');
    const e = await entries('s3');
    expect(e.map((x) => x.prev)).toEqual(['new', '?', '?']);
    expect(e[2].r).toBe('');
  });

  it("a backlog's batch (more than LOG_ENTRY_MAX_READINGS readings) is not logged: the next entry says so", async () => {
    const w = new ReadingsLogWriter(redis, prefix);
    const lines = (n: number, from: number) => Array.from({ length: n }, (_, i) => sampleLine('s4', { meter: `T${i % 50}`, time: from + i, wh: i })).join('\n');
    await w.written('s4', lines(10, 1000));
    await w.written('s4', lines(LOG_ENTRY_MAX_READINGS + 1, 2000));
    await w.written('s4', lines(LOG_ENTRY_MAX_READINGS, 9000));
    const e = await entries('s4');
    expect(e.map((x) => x.prev)).toEqual(['new', '?']);
    expect(parseLoggedReadings(e[1].r)).toHaveLength(LOG_ENTRY_MAX_READINGS);
  });
});
