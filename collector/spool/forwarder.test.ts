import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InfluxV1 } from '../../influx/client.ts';
import { tempDir } from '../test-support/socat.ts';
import { Forwarder } from './forwarder.ts';
import { Spool } from './spool.ts';

const url = process.env.SUBMETER_INFLUX_URL ?? 'http://127.0.0.1:8096';
const line = (i: number) => `reading,meter=m,site=s wh=${i}i ${1_700_000_000_000 + i * 1000}`;

describe('Forwarder against the real InfluxDB', () => {
  it('creates a missing database, then delivers in order and empties the spool', async () => {
    const influx = new InfluxV1({ url, db: `t_fwd_${randomBytes(4).toString('hex')}` });
    const spool = await Spool.open(tempDir('fwd'));
    const fwd = new Forwarder(spool, influx, { batchLines: 100, retryBaseMs: 20, idleMs: 20, lingerMs: 0 });
    try {
      for (let i = 0; i < 10; i++) await spool.append(Array.from({ length: 50 }, (_, j) => line(i * 50 + j)));
      fwd.start();
      expect(await fwd.drained(20_000)).toBe(true);
      const rows = await influx.query('SELECT wh FROM reading');
      expect(rows.map((r) => r.wh)).toEqual(Array.from({ length: 500 }, (_, i) => i));
      expect(fwd.stats()).toMatchObject({ written: 500, rejected: 0, failing: 0 });
    } finally {
      await fwd.stop();
      await spool.close();
      await influx.dropDatabase();
    }
  });

  it('moves a batch InfluxDB refuses as bad data to rejected.lp and goes on', async () => {
    const influx = new InfluxV1({ url, db: `t_fwd_${randomBytes(4).toString('hex')}` });
    await influx.createDatabase();
    const dir = tempDir('fwd');
    const spool = await Spool.open(dir);
    const fwd = new Forwarder(spool, influx, { batchLines: 1, idleMs: 20, lingerMs: 0 });
    try {
      await spool.append([line(1)]);
      await spool.append(['reading,meter=m,site=s wh="text" 1700000002000']);
      await spool.append([line(3)]);
      fwd.start();
      expect(await fwd.drained(20_000)).toBe(true);
      expect(fwd.stats()).toMatchObject({ written: 2, rejected: 1 });
      const rejected = readFileSync(join(dir, 'rejected.lp'), 'utf8');
      expect(rejected).toMatch(/^# .*influx write rejected \(400\)/);
      expect(rejected).toContain('wh="text"');
      expect((await influx.query('SELECT wh FROM reading')).map((r) => r.wh)).toEqual([1, 3]);
    } finally {
      await fwd.stop();
      await spool.close();
      await influx.dropDatabase();
    }
  });
});
