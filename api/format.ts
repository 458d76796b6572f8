import { Dec, parseFixed } from '../core/index.ts';

export { kwhText, moneyText } from '../core/index.ts';

/** A price field as the workers write it (decimal text, or a number read through its shortest text) to 6 places. */
export function priceText(value: unknown): string {
  return new Dec(typeof value === 'number' ? String(value) : String(value ?? '0')).toFixed(6, Dec.ROUND_HALF_UP);
}

/** Money text with at most 2 decimals to integer fen, exactly (no binary fractions). */
export function parseMoneyFen(text: string): number | undefined {
  return parseFixed(text, 2);
}

/** An integer field from InfluxDB (integers come back as JSON numbers, exact below 2^53); 0 when absent. */
export function int(v: unknown): number {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  if (typeof v === 'number' && Number.isFinite(v)) return Math.round(v);
  return 0;
}
