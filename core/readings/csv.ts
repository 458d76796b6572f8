import { TARIFF_REGISTERS } from '../types.ts';
import type { TariffRegisterWh } from '../types.ts';
import { parseFixed } from '../units.ts';
import { parseRfc3339 } from './rfc3339.ts';

/**
 * Readings and payments CSV (billing.md section 1), one line at a time so that callers
 * can stream files of any size and name the line themselves. Nothing here throws on bad
 * data: a bad line returns a CsvFieldError naming the field.
 */

/** One meter reading: the cumulative active import register, in whole Wh. */
export interface ReadingRow {
  /** Epoch milliseconds (RFC 3339 time truncated to whole ms). */
  readonly time: number;
  readonly meter: string;
  /** Cumulative import register in Wh (kwh rounded half-up to whole Wh). */
  readonly wh: number;
  /**
   * The meter's tariff registers read with it (optional columns `kwh_t1`..`kwh_t4`, Wh like
   * `wh`); absent when the row has none. They bill a gap (billing.md section 2 rule 5).
   */
  readonly tariffWh?: TariffRegisterWh;
}

/**
 * What a ledger line is (billing.md section 11): a top-up (`payment`, the default), money
 * paid back (`refund`, negative), a `deposit` held apart from the prepaid balance (negative
 * when returned), or one side of a balance `transfer` between two accounts (two rows, one
 * reference, opposite amounts).
 */
export const PAYMENT_KINDS = ['payment', 'refund', 'deposit', 'transfer'] as const;
export type PaymentKind = (typeof PAYMENT_KINDS)[number];

/** One payment (billing.md section 1); `reference` is unique per payment. */
export interface PaymentRow {
  readonly time: number;
  readonly account: string;
  /** Amount in fen (2 decimals; may be negative for a refund or correction). */
  readonly fen: number;
  readonly reference: string;
  /** @defaultValue 'payment' */
  readonly kind?: PaymentKind;
}

/** The sign each kind allows (billing.md section 11), or a reason the amount does not fit it. */
export function paymentKindProblem(kind: PaymentKind, fen: number): string | undefined {
  if (kind === 'refund' && !(fen < 0)) return 'a refund is money paid back: a negative amount';
  if ((kind === 'deposit' || kind === 'transfer') && fen === 0) return `a ${kind} needs a non-zero amount`;
  return undefined;
}

/** What is wrong with one line; the caller adds the file and line number. */
export interface CsvFieldError {
  readonly field: string;
  readonly message: string;
}

export type CsvResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: CsvFieldError };

/** Column positions of a header line. */
export interface CsvHeader {
  readonly columns: readonly string[];
  /** Position of each column by name. */
  readonly index: Readonly<Record<string, number>>;
}

export const READING_COLUMNS = ['time', 'meter', 'kwh'] as const;
/** Optional readings columns: the meter's tariff registers 1..4 in kWh (billing.md section 1). */
export const READING_TARIFF_COLUMNS = ['kwh_t1', 'kwh_t2', 'kwh_t3', 'kwh_t4'] as const;
export const PAYMENT_COLUMNS = ['time', 'account', 'amount', 'reference'] as const;

/** Splits one CSV line (RFC 4180 quoting: "a,b" and "" inside quotes). */
export function splitCsvLine(line: string): string[] {
  if (line.endsWith('\r')) line = line.slice(0, -1);
  if (!line.includes('"')) return line.split(',');
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"') {
        if (line[i + 1] === '"') {
          cur += '"';
          i++;
        } else quoted = false;
      } else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

function parseHeader(line: string, required: readonly string[]): CsvResult<CsvHeader> {
  const columns = splitCsvLine(line.replace(/^\uFEFF/, '')).map((c) => c.trim().toLowerCase());
  const index: Record<string, number> = {};
  columns.forEach((c, i) => {
    if (!(c in index)) index[c] = i;
  });
  for (const r of required) {
    if (!(r in index)) return { ok: false, error: { field: r, message: `header has no '${r}' column (need ${required.join(',')})` } };
  }
  return { ok: true, value: { columns, index } };
}

export const parseReadingsHeader = (line: string): CsvResult<CsvHeader> => parseHeader(line, READING_COLUMNS);
export const parsePaymentsHeader = (line: string): CsvResult<CsvHeader> => parseHeader(line, PAYMENT_COLUMNS);

/** Largest register we read exactly: 10^10 kWh keeps Wh far inside 2^53. */
const MAX_KWH_DIGITS = 10;

/**
 * A cumulative register in kWh as text to whole Wh: more than 3 decimals round half-up
 * (billing.md section 1), i.e. up when the 4th decimal is 5 or more.
 */
export function kwhToWh(text: string): number | string {
  const m = /^(\d+)(?:\.(\d+))?$/.exec(text);
  if (!m) return `must be a non-negative decimal number of kWh, got ${JSON.stringify(text)}`;
  const int = m[1].replace(/^0+(?=\d)/, '');
  if (int.length > MAX_KWH_DIGITS) return `is too large (${text} kWh)`;
  const frac = m[2] ?? '';
  const wh = Number(int) * 1000 + Number(frac.slice(0, 3).padEnd(3, '0'));
  return frac.length > 3 && frac.charCodeAt(3) >= 53 /* '5' */ ? wh + 1 : wh;
}

/** One readings line against its header. Blank lines are the caller's to skip. */
export function parseReadingLine(line: string, header: CsvHeader): CsvResult<ReadingRow> {
  const f = splitCsvLine(line);
  const { time: ti, meter: mi, kwh: ki } = header.index;
  const timeText = (f[ti] ?? '').trim();
  const meter = (f[mi] ?? '').trim();
  const kwhText = (f[ki] ?? '').trim();
  const missing = f[ti] === undefined ? 'time' : f[mi] === undefined ? 'meter' : f[ki] === undefined ? 'kwh' : undefined;
  if (missing) return { ok: false, error: { field: missing, message: `missing (line has ${f.length} of ${header.columns.length} columns)` } };
  const time = parseRfc3339(timeText);
  if (typeof time === 'string') return { ok: false, error: { field: 'time', message: `${JSON.stringify(timeText)} ${time}` } };
  if (meter === '') return { ok: false, error: { field: 'meter', message: 'is empty' } };
  const wh = kwhToWh(kwhText);
  if (typeof wh === 'string') return { ok: false, error: { field: 'kwh', message: wh } };
  // The optional tariff registers: an empty field is a register not read.
  let tariffWh: Partial<Record<1 | 2 | 3 | 4, number>> | undefined;
  for (const n of TARIFF_REGISTERS) {
    const col = READING_TARIFF_COLUMNS[n - 1];
    const at = header.index[col];
    const text = at === undefined ? '' : (f[at] ?? '').trim();
    if (text === '') continue;
    const r = kwhToWh(text);
    if (typeof r === 'string') return { ok: false, error: { field: col, message: r } };
    (tariffWh ??= {})[n] = r;
  }
  return { ok: true, value: tariffWh ? { time, meter, wh, tariffWh } : { time, meter, wh } };
}

/** One payments line against its header. Amounts have at most 2 decimals (fen). */
export function parsePaymentLine(line: string, header: CsvHeader): CsvResult<PaymentRow> {
  const f = splitCsvLine(line);
  const get = (c: string) => (f[header.index[c]] ?? '').trim();
  const missing = PAYMENT_COLUMNS.find((c) => f[header.index[c]] === undefined);
  if (missing) return { ok: false, error: { field: missing, message: `missing (line has ${f.length} of ${header.columns.length} columns)` } };
  const timeText = get('time');
  const time = parseRfc3339(timeText);
  if (typeof time === 'string') return { ok: false, error: { field: 'time', message: `${JSON.stringify(timeText)} ${time}` } };
  const account = get('account');
  if (account === '') return { ok: false, error: { field: 'account', message: 'is empty' } };
  const amountText = get('amount');
  const fen = parseFixed(amountText, 2);
  if (fen === undefined) return { ok: false, error: { field: 'amount', message: `must be a decimal amount with at most 2 decimals, got ${JSON.stringify(amountText)}` } };
  const reference = get('reference');
  if (reference === '') return { ok: false, error: { field: 'reference', message: 'is empty (every payment needs a unique reference)' } };
  // The optional kind column (billing.md section 11); empty or absent is a payment.
  const kindText = header.index.kind !== undefined ? get('kind').toLowerCase() : '';
  if (kindText === '' || kindText === 'payment') return { ok: true, value: { time, account, fen, reference } };
  if (!(PAYMENT_KINDS as readonly string[]).includes(kindText)) return { ok: false, error: { field: 'kind', message: `must be one of ${PAYMENT_KINDS.join(', ')}, got ${JSON.stringify(kindText)}` } };
  const kind = kindText as PaymentKind;
  const problem = paymentKindProblem(kind, fen);
  if (problem) return { ok: false, error: { field: 'amount', message: problem } };
  return { ok: true, value: { time, account, fen, reference, kind } };
}
