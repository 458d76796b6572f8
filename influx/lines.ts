import { Point, escape } from '@influxdata/influxdb-client';
import { FastPoint, escapeTag } from './fast-point.ts';
import type { Sample } from './sample.ts';
import type { InfluxV1 } from './client.ts';
import { InfluxError } from './client.ts';
import { F, M, T } from './schema.ts';

/**
 * Samples and collector state as line protocol, built with `Point` from
 * @influxdata/influxdb-client (escaping of tags and strings is its job, not ours), or
 * on the per-read hot path with FastPoint, which writes exactly what Point writes.
 * Every line carries its own millisecond timestamp (write with precision `ms`), so a
 * line written twice lands on the same series and time and overwrites itself: re-sends
 * after a crash never duplicate (InfluxDB keeps one point per series and timestamp).
 */

/**
 * A `reading` line: energy as integer Wh (`wh=1234i`), instantaneous values as floats, all
 * raw as the meter reported them. `multiplier` (billing.md section 11: the CT x PT ratio the
 * collector had in force) is recorded beside them when it is not 1; billing multiplies by
 * the site file's effective-dated one.
 *
 * Byte for byte what Point (and FastPoint) write for these tags and fields (lines.test.ts
 * checks it against Point on random samples), built without a Point: this runs once per
 * sample on the collector's hot path, and a FastPoint per sample (four arrays, a sorted
 * insert per field, an escape test per name) was the largest CPU cost of the sink in
 * bench/ingest.bench.ts. The measurement and tags are escaped once per site and meter
 * (readingPrefix); the fields are written in Point's order by hand (READING_FIELD_ORDER).
 */
export function sampleLine(site: string, s: Sample, multiplier = 1): string {
  // Fields in Point's order (READING_FIELD_ORDER, checked at load); each written only if present.
  const ph = s.phases;
  let f = '';
  if (s.a !== undefined) f += K.a + floatValue(F.a, s.a);
  if (ph) f += phaseFields(ph, 'a');
  if (s.hz !== undefined) f += K.hz + floatValue(F.hz, s.hz);
  if (multiplier !== 1) f += K.multiplier + intValue(F.multiplier, multiplier);
  if (s.pf !== undefined) f += K.pf + floatValue(F.pf, s.pf);
  // An empty source is left out, as before.
  if (s.source) f += K.source + escape.quoted(s.source);
  if (s.v !== undefined) f += K.v + floatValue(F.v, s.v);
  if (ph) f += phaseFields(ph, 'v');
  if (s.w !== undefined) f += K.w + floatValue(F.w, s.w);
  if (ph) f += phaseFields(ph, 'w');
  // wh is always written.
  f += K.wh + intValue(F.wh, s.wh);
  const t = s.tariffWh;
  if (t) {
    for (const n of TARIFFS) {
      const wh = t[n];
      if (wh !== undefined) f += K.whTariff[n - 1] + intValue(F.whTariff(n), wh);
    }
  }
  // f starts with the first field's comma.
  return `${readingPrefix(site, s.meter)} ${f.slice(1)} ${Math.floor(s.time)}`;
}

const TARIFFS = [1, 2, 3, 4] as const;
const PHASES = [1, 2, 3] as const;
/** `,name=` of every reading field, the name escaped as Point escapes it. */
const key = (name: string) => `,${escapeTag(name)}=`;
const K = {
  a: key(F.a),
  hz: key(F.hz),
  multiplier: key(F.multiplier),
  pf: key(F.pf),
  source: key(F.source),
  v: key(F.v),
  w: key(F.w),
  wh: key(F.wh),
  whTariff: TARIFFS.map((n) => key(F.whTariff(n))),
  phase: { a: PHASES.map((n) => key(F.aPhase(n))), v: PHASES.map((n) => key(F.vPhase(n))), w: PHASES.map((n) => key(F.wPhase(n))) },
};
const PHASE_NAME = { a: F.aPhase, v: F.vPhase, w: F.wPhase } as const;

/** Phase n's `q` fields (v_l1.., a_l1.., w_l1..) of the first three phases. */
function phaseFields(ph: NonNullable<Sample['phases']>, q: 'a' | 'v' | 'w'): string {
  let f = '';
  for (let i = 0; i < 3 && i < ph.length; i++) {
    const value = ph[i]?.[q];
    if (value !== undefined) f += K.phase[q][i] + floatValue(PHASE_NAME[q]((i + 1) as 1 | 2 | 3), value);
  }
  return f;
}

/**
 * The order sampleLine writes fields in must be Point's (its keys sorted as
 * `Array.prototype.sort()` sorts strings): checked once at load, so renaming a field in
 * schema.ts cannot silently produce lines Point would not (lines.test.ts compares whole lines).
 */
const READING_FIELD_ORDER = [F.a, ...PHASES.map(F.aPhase), F.hz, F.multiplier, F.pf, F.source, F.v, ...PHASES.map(F.vPhase), F.w, ...PHASES.map(F.wPhase), F.wh, ...TARIFFS.map(F.whTariff)];
if (READING_FIELD_ORDER.join('\n') !== [...READING_FIELD_ORDER].sort().join('\n')) throw new Error(`sampleLine writes reading fields out of Point's order: ${READING_FIELD_ORDER.join(', ')}`);

/** Point.intField: `${Math.floor(v)}i`, refusing NaN and values past int64 (FastPoint.intField). */
function intValue(name: string, value: number): string {
  if (Number.isNaN(value) || value <= -9223372036854776e3 || value >= 9223372036854776e3) throw new Error(`invalid integer value for field '${name}': '${value}'!`);
  return `${Math.floor(value)}i`;
}

/** Point.floatField: String(v), refusing NaN and infinities (FastPoint.floatField). */
function floatValue(name: string, value: number): string {
  if (!Number.isFinite(value)) throw new Error(`invalid float value for field '${name}': ${value}`);
  return String(value);
}

/** `reading,meter=..,site=..` per site and meter (tags in Point's order, empty values left out as Point does). */
const prefixes = new Map<string, Map<string, string>>();
/** Bound on cached prefixes (an import of many meters must not grow it without limit). */
const PREFIX_CACHE_MAX = 10_000;
let prefixCount = 0;

function readingPrefix(site: string, meter: string): string {
  let bySite = prefixes.get(site);
  const hit = bySite?.get(meter);
  if (hit !== undefined) return hit;
  if (prefixCount >= PREFIX_CACHE_MAX) {
    prefixes.clear();
    prefixCount = 0;
    bySite = undefined;
  }
  const tags = ([[T.site, site], [T.meter, meter]] as const).filter(([k, v]) => k && v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const name = MEASUREMENT_SPECIAL.test(M.reading) ? escape.measurement(M.reading) : M.reading;
  const prefix = name + tags.map(([k, v]) => `,${escapeTag(k)}=${escapeTag(v)}`).join('');
  if (!bySite) prefixes.set(site, (bySite = new Map()));
  bySite.set(meter, prefix);
  prefixCount++;
  return prefix;
}

const MEASUREMENT_SPECIAL = /[, \n\r\t]/;

/** What a sample must satisfy before it may enter the spool (bad input is kept out, never written). */
export function sampleProblem(s: Sample): string | undefined {
  if (typeof s.meter !== 'string' || s.meter === '') return 'meter is empty';
  if (!Number.isSafeInteger(s.time) || s.time <= 0) return `time ${s.time} is not an epoch millisecond`;
  if (!Number.isSafeInteger(s.wh) || s.wh < 0) return `wh ${s.wh} is not a non-negative integer`;
  for (const k of ['w', 'v', 'a', 'pf', 'hz'] as const) {
    const v = s[k];
    if (v !== undefined && !Number.isFinite(v)) return `${k} ${v} is not a finite number`;
  }
  for (const [i, ph] of (s.phases ?? []).entries()) {
    for (const k of ['v', 'a', 'w'] as const) {
      const v = ph[k];
      if (v !== undefined && !Number.isFinite(v)) return `${k}_l${i + 1} ${v} is not a finite number`;
    }
  }
  return undefined;
}

export interface MeterHealth {
  readonly meter: string;
  /** Epoch ms of this health record. */
  readonly time: number;
  /** The last read succeeded. */
  readonly ok: boolean;
  /** Failed reads since the collector started. */
  readonly errors: number;
  readonly consecutiveErrors: number;
  /** Duration of the last successful read, ms. */
  readonly latencyMs?: number;
  /** Epoch ms of the last successful read. */
  readonly lastSeen?: number;
  readonly lastError?: string;
}

/** A `meter_health` line, one per read: FastPoint like sampleLine. */
export function healthLine(site: string, h: MeterHealth): string {
  const p = new FastPoint(M.meterHealth).tag(T.site, site).tag(T.meter, h.meter).booleanField(F.ok, h.ok).intField(F.errors, h.errors).intField(F.consecutiveErrors, h.consecutiveErrors);
  if (h.latencyMs !== undefined) p.floatField(F.latencyMs, h.latencyMs);
  if (h.lastSeen !== undefined) p.intField(F.lastSeen, h.lastSeen);
  if (h.lastError !== undefined) p.stringField(F.lastError, h.lastError.slice(0, 500));
  return p.timestamp(h.time).toLineProtocol()!;
}

export interface CollectorState {
  readonly host: string;
  readonly time: number;
  /** Bytes of the spool not yet acknowledged by InfluxDB. */
  readonly spoolBytes: number;
  /** Lines in the spool not yet acknowledged. */
  readonly spoolSamples: number;
  /** The spool reached its size bound: new samples are refused until it drains. */
  readonly spoolFull: boolean;
  /** Lines acknowledged by InfluxDB since start. */
  readonly written: number;
  /** Samples refused since start because the spool was full. */
  readonly refused: number;
}

export function collectorLine(site: string, c: CollectorState): string {
  return new Point(M.collector)
    .tag(T.site, site)
    .tag(T.host, c.host)
    .intField(F.spoolBytes, c.spoolBytes)
    .intField(F.spoolSamples, c.spoolSamples)
    .booleanField(F.spoolFull, c.spoolFull)
    .intField(F.written, c.written)
    .intField(F.spoolRefused, c.refused)
    .timestamp(c.time)
    .toLineProtocol()!;
}

export interface LineBatcherOptions {
  /** Lines per write request. @defaultValue 5000 (InfluxDB's recommended batch size) */
  readonly batchLines?: number;
  /** Attempts per batch on retryable faults (5xx, network), with back-off. @defaultValue 5 */
  readonly attempts?: number;
  /** First back-off, doubling per attempt. @defaultValue 200 */
  readonly backoffMs?: number;
}

/**
 * Batching writer for one-shot loads (import, backfill): lines are queued, written in
 * batches of `batchLines` with precision ms, retrying retryable faults with back-off.
 * The long-running collector does not use it: it writes from its spool, which keeps
 * lines across restarts.
 */
export class LineBatcher {
  private readonly influx: InfluxV1;
  private readonly batchLines: number;
  private readonly attempts: number;
  private readonly backoffMs: number;
  private buffer: string[] = [];
  /** Lines InfluxDB has acknowledged. */
  written = 0;

  constructor(influx: InfluxV1, opts: LineBatcherOptions = {}) {
    this.influx = influx;
    this.batchLines = opts.batchLines ?? 5000;
    this.attempts = opts.attempts ?? 5;
    this.backoffMs = opts.backoffMs ?? 200;
    if (!(this.batchLines >= 1)) throw new Error('LineBatcher: batchLines must be >= 1');
    if (!(this.attempts >= 1)) throw new Error('LineBatcher: attempts must be >= 1');
  }

  /** Queues lines; writes full batches before returning. */
  async push(...lines: string[]): Promise<void> {
    for (const l of lines) this.buffer.push(l);
    while (this.buffer.length >= this.batchLines) await this.writeBatch(this.buffer.splice(0, this.batchLines));
  }

  /** Writes whatever is queued. */
  async flush(): Promise<void> {
    while (this.buffer.length > 0) await this.writeBatch(this.buffer.splice(0, this.batchLines));
  }

  private async writeBatch(lines: string[]): Promise<void> {
    await writeWithRetry(this.influx, lines, this.attempts, this.backoffMs);
    this.written += lines.length;
  }
}

/** One write with retries on retryable InfluxErrors; a non-retryable one (bad data) is thrown at once. */
export async function writeWithRetry(influx: InfluxV1, lines: readonly string[], attempts: number, backoffMs: number): Promise<void> {
  for (let i = 1; ; i++) {
    try {
      await influx.write(lines, 'ms');
      return;
    } catch (err) {
      if (!(err instanceof InfluxError) || !err.retryable || i >= attempts) throw err;
      await new Promise((r) => setTimeout(r, backoffMs * 2 ** (i - 1)));
    }
  }
}
