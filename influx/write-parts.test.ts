import { randomBytes } from 'node:crypto';
import { createServer, connect } from 'node:net';
import type { Server, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InfluxError, InfluxV1 } from './client.ts';

/**
 * InfluxV1.writeParts (the forwarder's write: node:http, keep-alive, parts joined by
 * `\n`) against the real server: what lands, how failures are classed, and a kept-alive
 * connection the server closed under it (through a TCP relay that can drop it).
 */
const url = process.env.SUBMETER_INFLUX_URL ?? 'http://127.0.0.1:8096';
const db = `t_parts_${randomBytes(4).toString('hex')}`;
const influx = new InfluxV1({ url, db });

/** A TCP relay to InfluxDB that can drop the next request it sees on a connection it already served. */
function relay(target: URL): Promise<{ port: number; connections: () => number; dropNextOnReused: () => void; close: () => Promise<void> }> {
  let connections = 0;
  let drop = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    connections++;
    let served = false;
    const upstream = connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    client.on('data', (d) => {
      if (served && drop) {
        // The server closed the idle connection just as the client reused it: no answer.
        drop = false;
        client.destroy();
        upstream.destroy();
        return;
      }
      upstream.write(d);
    });
    upstream.on('data', (d) => {
      served = true;
      client.write(d);
    });
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as { port: number }).port,
        connections: () => connections,
        dropNextOnReused: () => void (drop = true),
        close: () =>
          new Promise<void>((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      }),
    ),
  );
}

describe('InfluxV1.writeParts', () => {
  beforeAll(async () => {
    expect(await influx.ping()).toBe(true);
    await influx.createDatabase();
  });
  afterAll(async () => influx.dropDatabase());

  it('writes the parts joined by newlines, Buffers and strings alike, non-ASCII included', async () => {
    await influx.writeParts([Buffer.from('wp,meter=电1 wh=1i 1000\nwp,meter=电1 wh=2i 2000'), 'wp,meter=T2 wh=3i 1000', Buffer.from('wp,meter=T2 wh=4i 2000')], 'ms');
    const rows = await influx.query('SELECT wh, meter FROM wp ORDER BY time');
    expect(rows.map((r) => [r.meter, r.time, r.wh]).sort()).toEqual([['T2', 1000, 3], ['T2', 2000, 4], ['电1', 1000, 1], ['电1', 2000, 2]].sort());
  });

  it('classes bad data as not retryable and a missing database as retryable, as write does', async () => {
    const bad = await influx.writeParts(['wp,meter=x wh=notanumber 1']).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(InfluxError);
    expect((bad as InfluxError).retryable).toBe(false);
    expect((bad as InfluxError).status).toBe(400);
    const missing = await new InfluxV1({ url, db: `t_absent_${randomBytes(4).toString('hex')}` }).writeParts(['wp wh=1i 1']).catch((e: unknown) => e);
    expect((missing as InfluxError).status).toBe(404);
    expect((missing as InfluxError).retryable).toBe(true);
  });

  it('reports a refused connection as retryable and certainly not sent', async () => {
    const err = await new InfluxV1({ url: 'http://127.0.0.1:1', db: 'x', timeoutMs: 500 }).writeParts(['m f=1i 1']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InfluxError);
    expect((err as InfluxError).retryable).toBe(true);
    expect((err as InfluxError).notSent).toBe(true);
  });

  it('keeps one connection alive across writes, and sends again on a new one when the kept one was closed under it', async () => {
    const r = await relay(new URL(url));
    const via = new InfluxV1({ url: `http://127.0.0.1:${r.port}`, db });
    try {
      await via.writeParts(['ka wh=1i 1000']);
      await via.writeParts(['ka wh=2i 2000']);
      expect(r.connections()).toBe(1);
      r.dropNextOnReused();
      await via.writeParts(['ka wh=3i 3000']);
      expect(r.connections()).toBe(2);
      const rows = await influx.query('SELECT wh FROM ka ORDER BY time');
      expect(rows.map((x) => x.wh)).toEqual([1, 2, 3]);
    } finally {
      await r.close();
    }
  });
});
