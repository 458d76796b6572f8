import { Point } from '@influxdata/influxdb-client';
import { registerMeasurement } from '../lib/backup/registry.ts';
import type { InfluxV1 } from './client.ts';
import { InfluxError, quoteIdent, quoteString } from './client.ts';
import { M, T } from './schema.ts';

/**
 * A site's points out of InfluxDB and back (`submeter backup` / `restore`), through the v1
 * HTTP API every version shares. Points come back as line protocol with their field types
 * (SHOW FIELD KEYS: an integer stays `1234i`, so energy and money stay integers), their
 * tags and their millisecond timestamps (every writer of submeter writes ms).
 */

/** Every measurement submeter writes is part of a site's backup (derived ones too: the restored site is whole at once). */
const WHAT: Record<keyof typeof M, string> = {
  reading: 'meter readings (raw registers, incl. frozen ones read back after gaps)',
  meterHealth: 'per-meter health and clock checks from the collector',
  collector: 'collector spool state',
  touBucket: '15-minute TOU buckets per meter',
  charge: 'settlement charges, every revision (the ledger the balances are debited with)',
  balance: 'live balances',
  event: 'alerts and data-quality flags',
  siteDay: 'daily site summaries (settled days)',
  payment: 'payments (the ledger of credits)',
  worker: 'worker queue state',
  meterDay: "statement facts: each meter's start and end register per settled day",
  meterCell: "statement facts: each meter's energy and estimated part per settled day and period",
  shareBasis: 'statement facts: how each settled cell divided pools and the loss',
  accountDay: "statement facts: each account's weights per settled day",
  meterMark: "statement facts: a tenant meter's register at a move-in or move-out",
  accountCell: 'statement facts: the seconds of a cell an account occupied on a day with a move',
  relay: 'prepaid enforcement: wanted and read-back relay state per account',
};
for (const [k, measurement] of Object.entries(M)) registerMeasurement({ measurement, what: WHAT[k as keyof typeof M] ?? measurement });

type FieldType = 'integer' | 'float' | 'string' | 'boolean';

/** Field types of a measurement; a field written with two types in different shards keeps the first InfluxDB names. */
export async function fieldTypes(influx: InfluxV1, measurement: string): Promise<Map<string, FieldType>> {
  const rows = await influx.query(`SHOW FIELD KEYS FROM ${quoteIdent(measurement)}`);
  const out = new Map<string, FieldType>();
  for (const r of rows) if (!out.has(String(r.fieldKey))) out.set(String(r.fieldKey), String(r.fieldType) as FieldType);
  return out;
}

/** Query windows: dense series in days, sparse ones (a point per day or less) in months. */
const WINDOW_MS: Record<string, number> = { [M.reading]: 86_400_000, [M.meterHealth]: 86_400_000, [M.touBucket]: 7 * 86_400_000, [M.balance]: 86_400_000, [M.collector]: 7 * 86_400_000, [M.worker]: 7 * 86_400_000, [M.relay]: 86_400_000 };
const SPARSE_WINDOW_MS = 31 * 86_400_000;

async function edge(influx: InfluxV1, measurement: string, site: string, order: 'ASC' | 'DESC'): Promise<number | undefined> {
  const rows = await influx.query(`SELECT * FROM ${quoteIdent(measurement)} WHERE ${quoteIdent(T.site)} = ${quoteString(site)} ORDER BY time ${order} LIMIT 1`);
  return rows.length ? Number(rows[0].time) : undefined;
}

/** True when the database has any point of the site in the measurement (a missing database has none). */
export async function siteHasPoints(influx: InfluxV1, measurement: string, site: string): Promise<boolean> {
  try {
    return (await edge(influx, measurement, site, 'ASC')) !== undefined;
  } catch (err) {
    if (err instanceof InfluxError && /database not found/.test(err.message)) return false;
    throw err;
  }
}

/**
 * Streams every point of `site` in `measurement` as line protocol, oldest window first,
 * batch by batch (a year of 1-minute readings never sits in memory whole). Returns the
 * number of points.
 */
export async function exportSiteMeasurement(influx: InfluxV1, measurement: string, site: string, onLines: (lines: string[]) => Promise<void>, onWindow?: (done: number, total: number) => void): Promise<number> {
  const first = await edge(influx, measurement, site, 'ASC').catch((err: unknown) => {
    if (err instanceof InfluxError && /database not found/.test(err.message)) return undefined;
    throw err;
  });
  if (first === undefined) return 0;
  const last = (await edge(influx, measurement, site, 'DESC'))!;
  const types = await fieldTypes(influx, measurement);
  const step = WINDOW_MS[measurement] ?? SPARSE_WINDOW_MS;
  const windows = Math.floor((last - first) / step) + 1;
  let n = 0;
  for (let w = 0; w < windows; w++) {
    const a = first + w * step;
    const b = w === windows - 1 ? last + 1 : a + step;
    const [series = []] = await influx.queryRaw(`SELECT * FROM ${quoteIdent(measurement)} WHERE ${quoteIdent(T.site)} = ${quoteString(site)} AND time >= ${a}ms AND time < ${b}ms GROUP BY *`, { epoch: 'ms' });
    const lines: string[] = [];
    for (const s of series) {
      for (const row of s.values) {
        const p = new Point(measurement);
        for (const [k, v] of Object.entries(s.tags ?? {})) if (v !== '' && v !== null) p.tag(k, String(v));
        let fields = 0;
        s.columns.forEach((c, i) => {
          const v = row[i];
          if (c === 'time' || v === null || v === undefined) return;
          const t = types.get(c) ?? (typeof v === 'string' ? 'string' : typeof v === 'boolean' ? 'boolean' : 'float');
          if (t === 'integer') p.intField(c, Number(v));
          else if (t === 'float') p.floatField(c, Number(v));
          else if (t === 'boolean') p.booleanField(c, v === true || v === 'true');
          else p.stringField(c, String(v));
          fields++;
        });
        if (fields === 0) continue;
        lines.push(p.timestamp(Number(row[0])).toLineProtocol()!);
      }
    }
    if (lines.length) await onLines(lines);
    n += lines.length;
    onWindow?.(w + 1, windows);
  }
  return n;
}
