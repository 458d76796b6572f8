import { createServer } from 'node:net';
import type { AddressInfo, Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MeterReadError } from '../../input.ts';
import { ModbusTcpPool } from './tcp-pool.ts';

/**
 * The pool's one-request-in-flight queue per endpoint, against a scripted Modbus TCP
 * server: register i of unit u reads u * 100 + start + i; unit 99 answers exception 02.
 */
let server: Server | undefined;
let seen: number[] = [];
afterEach(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
  seen = [];
});

async function serve(): Promise<number> {
  server = createServer((socket) => {
    let buf = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 12) {
        const req = buf.subarray(0, 12);
        buf = buf.subarray(12);
        const unit = req[6];
        seen.push(unit);
        const start = req.readUInt16BE(8);
        const count = req.readUInt16BE(10);
        if (unit === 99) {
          socket.write(Buffer.from([req[0], req[1], 0, 0, 0, 3, unit, req[7] | 0x80, 2]));
          continue;
        }
        const out = Buffer.alloc(9 + 2 * count);
        req.copy(out, 0, 0, 4);
        out.writeUInt16BE(3 + 2 * count, 4);
        out[6] = unit;
        out[7] = req[7];
        out[8] = 2 * count;
        for (let i = 0; i < count; i++) out.writeUInt16BE(unit * 100 + start + i, 9 + 2 * i);
        socket.write(out);
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

describe('ModbusTcpPool', () => {
  it('runs the tasks of one endpoint one at a time in arrival order; a failed one does not hold up the rest', async () => {
    const port = await serve();
    const pool = new ModbusTcpPool();
    try {
      const reads = [1, 2, 99, 3].map((unit) => pool.read(`M${unit}`, '127.0.0.1', port, unit, 4, 10, 2, 1000).then((r) => r, (e: unknown) => e));
      const [a, b, failed, c] = await Promise.all(reads);
      expect([a, b, c]).toEqual([[110, 111], [210, 211], [310, 311]]);
      expect(failed).toBeInstanceOf(MeterReadError);
      expect((failed as MeterReadError).kind).toBe('exception');
      expect(seen).toEqual([1, 2, 99, 3]);
    } finally {
      await pool.close();
    }
  });

  it("starts the next task before the finished task's caller resumes (the next request is on the wire while a reply is decoded)", async () => {
    const port = await serve();
    const pool = new ModbusTcpPool();
    const order: string[] = [];
    try {
      const first = pool.exclusive('127.0.0.1', port, async (read) => read('M1', 1, 4, 0, 2, 1000)).then((r) => {
        order.push('first caller resumed');
        return r;
      });
      const second = pool.exclusive('127.0.0.1', port, async (read) => {
        order.push('second task started');
        return read('M2', 2, 4, 0, 2, 1000);
      });
      expect(await Promise.all([first, second])).toEqual([[100, 101], [200, 201]]);
      expect(order).toEqual(['second task started', 'first caller resumed']);
    } finally {
      await pool.close();
    }
  });

  it('close waits for the task in flight, then refuses new reads', async () => {
    const port = await serve();
    const pool = new ModbusTcpPool();
    const inFlight = pool.read('M1', '127.0.0.1', port, 1, 4, 0, 1, 1000);
    await pool.close();
    expect(await inFlight).toEqual([100]);
    const err = await pool.read('M1', '127.0.0.1', port, 1, 4, 0, 1, 1000).catch((e: unknown) => e);
    expect((err as MeterReadError).kind).toBe('connection');
  });
});
