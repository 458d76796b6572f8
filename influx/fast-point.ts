import { escape } from '@influxdata/influxdb-client';

/**
 * The subset of `Point` (@influxdata/influxdb-client) the line builders use, producing
 * byte for byte what `Point.toLineProtocol()` produces (fast-point.test.ts checks that
 * on random points, escaping included; the escaping functions are the library's own).
 *
 * Why: the collector builds a line per sample and per health record on its hot path.
 * `Point` keeps tags and fields in dictionaries, sorts their keys on every line and
 * scans every name for characters to escape: about 1.4 us per reading line, the largest
 * CPU cost of ingest through the spool (bench/ingest.bench.ts). Here names and values
 * sit in small arrays kept in order as they are added, and a name is passed to the
 * escaper only when it holds a character that needs it.
 */
export class FastPoint {
  private readonly name: string;
  private readonly tagKeys: string[] = [];
  private readonly tagValues: string[] = [];
  private readonly fieldKeys: string[] = [];
  private readonly fieldValues: string[] = [];
  private time: string | undefined;

  constructor(measurement: string) {
    this.name = measurement;
  }

  tag(name: string, value: string): this {
    put(this.tagKeys, this.tagValues, name, value);
    return this;
  }

  /** Point.intField for a number: `${Math.floor(v)}i`, refusing NaN and values past int64. */
  intField(name: string, value: number): this {
    if (Number.isNaN(value) || value <= -9223372036854776e3 || value >= 9223372036854776e3) throw new Error(`invalid integer value for field '${name}': '${value}'!`);
    put(this.fieldKeys, this.fieldValues, name, `${Math.floor(value)}i`);
    return this;
  }

  /** Point.floatField for a number: String(v), refusing NaN and infinities. */
  floatField(name: string, value: number): this {
    if (!Number.isFinite(value)) throw new Error(`invalid float value for field '${name}': ${value}`);
    put(this.fieldKeys, this.fieldValues, name, String(value));
    return this;
  }

  booleanField(name: string, value: boolean): this {
    put(this.fieldKeys, this.fieldValues, name, value ? 'T' : 'F');
    return this;
  }

  stringField(name: string, value: string | undefined | null): this {
    if (value !== null && value !== undefined) put(this.fieldKeys, this.fieldValues, name, escape.quoted(String(value)));
    return this;
  }

  /** Epoch number in the write's precision (as Point: floored), or a Date (as Point: ns). */
  timestamp(value: number | Date): this {
    this.time = value instanceof Date ? `${value.getTime()}000000` : String(Math.floor(value));
    return this;
  }

  /** The line, or undefined without a measurement name or fields (as Point). */
  toLineProtocol(): string | undefined {
    if (!this.name) return undefined;
    let fields = '';
    for (let i = 0; i < this.fieldKeys.length; i++) {
      const k = this.fieldKeys[i];
      if (!k) continue;
      if (fields.length > 0) fields += ',';
      fields += `${escapeTag(k)}=${this.fieldValues[i]}`;
    }
    if (fields.length === 0) return undefined;
    let tags = '';
    for (let i = 0; i < this.tagKeys.length; i++) {
      const k = this.tagKeys[i];
      const v = this.tagValues[i];
      if (k && v) tags += `,${escapeTag(k)}=${escapeTag(v)}`;
    }
    const name = MEASUREMENT_SPECIAL.test(this.name) ? escape.measurement(this.name) : this.name;
    // Point without a timestamp stamps the current time in ns; every line we write carries
    // its own time (re-sends overwrite), so that case is a bug to surface, not to copy.
    if (this.time === undefined) throw new Error(`line of ${this.name} has no timestamp`);
    return `${name}${tags} ${fields} ${this.time}`;
  }
}

const TAG_SPECIAL = /[, =\n\r\t]/;
const MEASUREMENT_SPECIAL = /[, \n\r\t]/;

/** A tag key or value, or a field key, escaped as Point escapes it (untouched when nothing needs it). */
export function escapeTag(s: string): string {
  return TAG_SPECIAL.test(s) ? escape.tag(s) : s;
}

/**
 * Sets key = value keeping `keys` sorted as `Array.prototype.sort()` orders strings (UTF-16
 * code units), which is the order Point writes tags and fields in. A key set twice keeps
 * the last value, as in Point's dictionary. Lines have a handful of keys: insertion into
 * a small sorted array beats sorting at the end.
 */
function put(keys: string[], values: string[], key: string, value: string): void {
  let i = keys.length;
  while (i > 0 && keys[i - 1] > key) i--;
  if (i > 0 && keys[i - 1] === key) {
    values[i - 1] = value;
    return;
  }
  // Shift the tail by hand: Array.prototype.splice costs more than the whole line.
  for (let j = keys.length; j > i; j--) {
    keys[j] = keys[j - 1];
    values[j] = values[j - 1];
  }
  keys[i] = key;
  values[i] = value;
}
