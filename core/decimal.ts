import { Decimal } from 'decimal.js';

/**
 * Decimal arithmetic for money and prices (billing.md, "Units"). One configured
 * constructor for the whole project: 40 significant digits, half-up rounding, no
 * exponent notation in toString.
 */
export const Dec = Decimal.clone({ precision: 40, rounding: Decimal.ROUND_HALF_UP, toExpNeg: -40, toExpPos: 40 });
export type Dec = InstanceType<typeof Dec>;

const DECIMAL_TEXT = /^-?\d+(\.\d+)?$/;

/**
 * Reads a price, amount or rate written as a quoted decimal string or a YAML number.
 * A number is read as the decimal its shortest text form shows (billing.md section 1):
 * String(0.03) is "0.03", so 0.03 is exactly 0.03, never 0.0299999...
 * Returns undefined when the value is not a plain decimal.
 */
export function decimalFrom(value: unknown): Dec | undefined {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return undefined;
    return new Dec(String(value));
  }
  if (typeof value === 'string' && DECIMAL_TEXT.test(value.trim())) return new Dec(value.trim());
  return undefined;
}
