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

describe('compressed answers', () => {
  /** A relay to the real server that records what each query asked for and what came back. */
  async function relay(): Promise<{ url: string; seen: { asked: string | undefined; got: string | undefined }[]; close(): Promise<void> }> {
    const { createServer, request } = await import('node:http');
    const target = new URL(url);
    const seen: { asked: string | undefined; got: string | undefined }[] = [];
    const server = createServer((req, res) => {
      const up = request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
        seen.push({ asked: req.headers['accept-encoding'], got: r.headers['content-encoding'] });
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      req.pipe(up);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    return { url: `http://127.0.0.1:${port}`, seen, close: () => new Promise((r) => server.close(() => r())) };
  }

  it('a loopback server is asked for plain answers (InfluxDB gzips them when asked), a remote one for gzip; either reads the same', async () => {
    const r = await relay();
    try {
      const plain = new InfluxV1({ url: r.url, db: '_internal' });
      const gz = new InfluxV1({ url: r.url, db: '_internal', compressAnswers: true });
      const a = await plain.queryRaw('SHOW DATABASES', { db: null });
      const b = await gz.queryRaw('SHOW DATABASES', { db: null });
      expect(a).toEqual(b);
      expect(r.seen).toEqual([
        { asked: 'identity', got: undefined },
        { asked: expect.stringContaining('gzip'), got: 'gzip' },
      ]);
    } finally {
      await r.close();
    }
  });
});
