import { createServer, request } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A fault injector in front of a real InfluxDB (like toxiproxy, for one fault): a plain HTTP
 * reverse proxy that can hold `POST /write` requests. A held write has been sent by the
 * client, which times out waiting; on release it reaches InfluxDB all the same, exactly
 * like a write that was in flight when the client gave up. Queries always pass.
 */
export interface FaultProxy {
  readonly url: string;
  /** Writes from now on wait until release(). */
  holdWrites(): void;
  /**
   * Writes wait until release() from the one after the first whose body `match`es on: a
   * process is stopped at an exact point of its work (e.g. after its first settled day),
   * whatever the machine's load.
   */
  holdWritesAfter(match: (body: string) => boolean): void;
  /** Sends every held write on (the clients may long have given up) and stops holding; resolves when InfluxDB answered them all. */
  release(): Promise<void>;
  /** Number of writes held right now. */
  held(): number;
  close(): Promise<void>;
}

export async function faultProxy(upstream: string): Promise<FaultProxy> {
  const target = new URL(upstream);
  let holding = false;
  let holdAfter: ((body: string) => boolean) | undefined;
  const queue: (() => Promise<void>)[] = [];

  const forward = (req: IncomingMessage, body: Buffer, res: ServerResponse | undefined) =>
    new Promise<void>((resolve) => {
      const up = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host, 'content-length': String(body.length) } }, (ur) => {
        const chunks: Buffer[] = [];
        ur.on('data', (c: Buffer) => chunks.push(c));
        ur.on('end', () => {
          if (res && !res.destroyed && !res.headersSent) {
            res.writeHead(ur.statusCode ?? 502, ur.headers);
            res.end(Buffer.concat(chunks));
          }
          resolve();
        });
      });
      up.on('error', () => {
        if (res && !res.destroyed && !res.headersSent) res.writeHead(502).end();
        resolve();
      });
      up.end(body);
    });

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const write = req.method === 'POST' && req.url?.startsWith('/write');
      if (holding && write) queue.push(() => forward(req, body, res));
      else {
        if (write && holdAfter?.(body.toString('utf8'))) {
          holdAfter = undefined;
          holding = true;
        }
        void forward(req, body, res);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    holdWrites() {
      holding = true;
    },
    holdWritesAfter(match) {
      holdAfter = match;
    },
    async release() {
      holding = false;
      holdAfter = undefined;
      const all = queue.splice(0);
      await Promise.all(all.map((f) => f()));
    },
    held: () => queue.length,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
    },
  };
}
