import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Point } from '@influxdata/influxdb-client';
import { InfluxError, InfluxV1 } from './client.ts';
import { M } from './schema.ts';

const url = process.env.SUBMETER_INFLUX_URL ?? 'http://127.0.0.1:8096';
const influx = new InfluxV1({ url, db: `t_client_${randomBytes(4).toString('hex')}` });

describe('InfluxV1 against the real server', () => {
  beforeAll(async () => {
    expect(await influx.ping()).toBe(true);
    await influx.createDatabase();
  });
  afterAll(async () => influx.dropDatabase());

  it('writes integer Wh with Point and reads it back exactly', async () => {
    const big = 123_456_789_012; // above 2^32, below 2^53
    const line = new Point(M.reading).tag('site', 's 1').tag('meter', 'T,1').intField('wh', big).floatField('w', 1.5).timestamp(1_700_000_000_000).toLineProtocol();
    await influx.write([line!]);
    const rows = await influx.query(`SELECT wh, w FROM ${M.reading} WHERE meter = 'T,1'`);
    expect(rows).toEqual([{ time: 1_700_000_000_000, wh: big, w: 1.5 }]);
  });

  it('refuses a bad line as a non-retryable error', async () => {
    const err = await influx.write('reading,site=x wh=notanumber 1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InfluxError);
    expect((err as InfluxError).retryable).toBe(false);
  });

  it('reports a server that is away as retryable', async () => {
    const away = new InfluxV1({ url: 'http://127.0.0.1:1', db: 'x', timeoutMs: 500 });
    expect(await away.ping()).toBe(false);
    const err = await away.write('m f=1i 1').catch((e: unknown) => e);
    expect((err as InfluxError).retryable).toBe(true);
  });

  it('names the query in query errors', async () => {
    await expect(influx.query('SELECT FROM nowhere')).rejects.toThrow(/influx query/);
  });
});
