import { F, M, T } from './schema.ts';

/**
 * The billing fields of `reading` lines read back from line protocol as it was written to
 * InfluxDB (influx/lines.ts sampleLine, precision `ms`): the rollup takes a collector's
 * acknowledged batches from the site's readings log (lib/readings-log.ts) instead of asking
 * InfluxDB for them again (issue 15).
 *
 * Only what billing reads (workers/reading-series.ts READING_FIELDS): `wh` and the tariff
 * registers, each as InfluxDB keeps it, an integer field (`123i`). The line protocol
 * grammar (https://docs.influxdata.com/influxdb/v1/write_protocols/line_protocol_reference/):
 * measurement and tags up to the first unescaped space, fields up to the next one outside
 * a double-quoted string value, then the timestamp; `\` escapes `,`, ` `, `=` in names and
 * tag values and `"`, `\` in string field values.
 */
export interface ReadingRow {
  readonly site: string;
  readonly meter: string;
  /** Epoch ms (the write's precision). */
  readonly time: number;
  /** The total register (Wh), absent when the line has no integer `wh`. */
  readonly wh?: number;
  /** Tariff registers 1-4 (Wh) where present. */
  readonly reg: readonly (number | undefined)[];
}

const DIGITS = /^\d+$/;
const REG_FIELDS = [F.whTariff(1), F.whTariff(2), F.whTariff(3), F.whTariff(4)];

/** Integer field value `-?digits i` within int64's safe range, else undefined. */
const INT = /^-?\d+i$/;
function intValue(v: string): number | undefined {
  if (!INT.test(v)) return undefined;
  const n = Number(v.slice(0, -1));
  return Number.isSafeInteger(n) ? n : undefined;
}

/** name=value pairs separated by commas, no empty name or value (plain: no escapes, no quotes). */
const PLAIN_FIELDS = /^[^,=]+=[^,=]+(,[^,=]+=[^,=]+)*$/;

/** The integer value of field `name` in plain field text, if it is there and an integer. */
function plainField(text: string, name: string): number | undefined {
  let at = text.startsWith(`${name}=`) ? 0 : text.indexOf(`,${name}=`);
  if (at < 0) return undefined;
  if (at > 0) at++;
  const from = at + name.length + 1;
  const end = text.indexOf(',', from);
  return intValue(text.slice(from, end < 0 ? text.length : end));
}

/** Splits on `sep` outside escapes (and, for fields, outside quoted strings), unescaping names. */
function split(text: string, sep: string, quotes: boolean): string[] | undefined {
  const out: string[] = [];
  let cur = '';
  let inQuote = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\' && i + 1 < text.length) {
      // In a quoted string the escape stays (the value is not used); in names it goes.
      cur += inQuote ? c + text[i + 1] : text[i + 1];
      i++;
    } else if (quotes && c === '"') {
      inQuote = !inQuote;
      cur += c;
    } else if (c === sep && !inQuote) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  if (inQuote) return undefined;
  out.push(cur);
  return out;
}

function plainSections(line: string): [string, string, string] | undefined {
  const a = line.indexOf(' ');
  const b = line.indexOf(' ', a + 1);
  if (a < 0 || b < 0 || line.indexOf(' ', b + 1) >= 0) return undefined;
  return [line.slice(0, a), line.slice(a + 1, b), line.slice(b + 1)];
}

/** The three sections of a line: key (measurement and tags), fields, timestamp. */
function sections(line: string): [string, string, string] | undefined {
  let i = 0;
  // Key: up to the first unescaped space.
  while (i < line.length && line[i] !== ' ') i += line[i] === '\\' ? 2 : 1;
  const key = line.slice(0, i);
  let j = ++i;
  let inQuote = false;
  while (j < line.length && (inQuote || line[j] !== ' ')) {
    if (line[j] === '\\') j++;
    else if (line[j] === '"') inQuote = !inQuote;
    j++;
  }
  if (inQuote || j >= line.length) return undefined;
  return [key, line.slice(i, j), line.slice(j + 1)];
}

/**
 * The reading rows of a body of line protocol (other measurements skipped), or undefined
 * when a `reading` line cannot be read for certain (no site or meter tag, no timestamp, a
 * malformed field list): the caller then treats the batch as unknown.
 */
export function parseReadingLines(body: string): ReadingRow[] | undefined {
  const out: ReadingRow[] = [];
  const head = `${M.reading},`;
  for (const raw of body.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (!line.startsWith(head)) continue;
    // Without escapes or quoted strings (almost every line) the sections are at the spaces.
    const parts = line.indexOf('\\') < 0 && line.indexOf('"') < 0 ? plainSections(line) : sections(line);
    if (!parts) return undefined;
    const [key, fieldText, timeText] = parts;
    const tags = key.indexOf('\\') < 0 ? key.split(',') : split(key, ',', false);
    if (!tags || tags[0] !== M.reading) return undefined;
    let site: string | undefined;
    let meter: string | undefined;
    for (const t of tags.slice(1)) {
      const eq = t.indexOf('=');
      if (eq < 0) return undefined;
      const k = t.slice(0, eq);
      if (k === T.site) site = t.slice(eq + 1);
      else if (k === T.meter) meter = t.slice(eq + 1);
    }
    if (!DIGITS.test(timeText)) return undefined;
    const time = Number(timeText);
    if (!site || !meter || !Number.isSafeInteger(time)) return undefined;
    let wh: number | undefined;
    const reg: (number | undefined)[] = [undefined, undefined, undefined, undefined];
    if (fieldText.indexOf('\\') < 0 && fieldText.indexOf('"') < 0) {
      // Plain fields: look the five names up instead of splitting every field.
      if (!PLAIN_FIELDS.test(fieldText)) return undefined;
      wh = plainField(fieldText, F.wh);
      for (let r = 0; r < 4; r++) reg[r] = plainField(fieldText, REG_FIELDS[r]);
      out.push({ site, meter, time, ...(wh !== undefined ? { wh } : {}), reg });
      continue;
    }
    const fields = split(fieldText, ',', true);
    if (!fields) return undefined;
    for (const f of fields) {
      const eq = f.indexOf('=');
      if (eq <= 0) return undefined;
      // Only `wh` and `wh_t<n>` are read: the other fields are not looked at.
      if (f.charCodeAt(0) !== 119 /* w */ || f.charCodeAt(1) !== 104 /* h */) continue;
      const k = f.slice(0, eq);
      if (k === F.wh) wh = intValue(f.slice(eq + 1));
      else {
        const r = REG_FIELDS.indexOf(k as (typeof REG_FIELDS)[number]);
        if (r >= 0) reg[r] = intValue(f.slice(eq + 1));
      }
    }
    out.push({ site, meter, time, ...(wh !== undefined ? { wh } : {}), reg });
  }
  return out;
}
