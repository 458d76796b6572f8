/**
 * Integer units and their text forms (billing.md "Units" and section 6): energy in whole
 * Wh, money in whole fen, prices in micro-CNY/kWh. Plain numbers while products stay below
 * 2^53, BigInt beyond; never binary fractions.
 */

const SAFE = Number.MAX_SAFE_INTEGER;

/**
 * round_half_up(num / den) for integers num >= 0, den > 0. Exact: uses Number arithmetic
 * when 2*num + den is a safe integer, BigInt otherwise.
 */
export function divRoundHalfUp(num: number, den: number): number {
  const x = 2 * num + den;
  const y = 2 * den;
  if (x <= SAFE && y <= SAFE) return floorDivSafe(x, y);
  return Number((2n * BigInt(num) + BigInt(den)) / (2n * BigInt(den)));
}

/** floor(a / b) for safe integers a >= 0, b > 0, corrected for the rounding of a / b. */
export function floorDivSafe(a: number, b: number): number {
  let q = Math.floor(a / b);
  const r = a - q * b;
  if (r < 0) q--;
  else if (r >= b) q++;
  return q;
}

/** round_half_up(a * b / den) for non-negative integers (BigInt when a * b is not safe). */
export function mulDivRoundHalfUp(a: number, b: number, den: number): number {
  const p = a * b;
  if (p <= SAFE) return divRoundHalfUp(p, den);
  return Number((2n * BigInt(a) * BigInt(b) + BigInt(den)) / (2n * BigInt(den)));
}

/** floor(a * b / den) for non-negative integers (BigInt when a * b is not safe). */
export function mulDivFloor(a: number, b: number, den: number): number {
  const p = a * b;
  if (p <= SAFE) return floorDivSafe(p, den);
  return Number((BigInt(a) * BigInt(b)) / BigInt(den));
}

/** Fixed-point text of an integer count of 10^-places units: fixed(-1234, 3) = "-1.234". */
export function fixed(units: number, places: number): string {
  const neg = units < 0;
  const s = String(neg ? -units : units).padStart(places + 1, '0');
  const text = places === 0 ? s : `${s.slice(0, s.length - places)}.${s.slice(s.length - places)}`;
  return neg ? `-${text}` : text;
}

/** kWh with exactly 3 decimals from integer Wh (billing.md section 6). */
export const kwhText = (wh: number): string => fixed(wh, 3);
/** Money with exactly 2 decimals from integer fen. */
export const moneyText = (fen: number): string => fixed(fen, 2);
/** Price with exactly 6 decimals from integer micro-CNY/kWh. */
export const priceText = (micro: number): string => fixed(micro, 6);

const DECIMAL = /^(-?)(\d+)(?:\.(\d+))?$/;

/**
 * Parses decimal text with at most `places` decimals into integer units of 10^-places,
 * exactly (no binary fractions). Returns undefined if the text is not such a decimal.
 */
export function parseFixed(text: string, places: number): number | undefined {
  const m = DECIMAL.exec(text.trim());
  if (!m) return undefined;
  const frac = m[3] ?? '';
  if (frac.length > places) return undefined;
  const v = Number(m[2] + frac.padEnd(places, '0'));
  if (!Number.isSafeInteger(v)) return undefined;
  return m[1] === '-' && v !== 0 ? -v : v;
}

/** A site price (decimal text, <= 6 decimals, validated by the site schema) in micro-CNY/kWh. */
export function priceMicro(text: string): number {
  const v = parseFixed(text, 6);
  if (v === undefined) throw new RangeError(`not a price with at most 6 decimals: ${text}`);
  return v;
}

/** Money text (<= 2 decimals) in fen. */
export function moneyFen(text: string): number {
  const v = parseFixed(text, 2);
  if (v === undefined) throw new RangeError(`not a money amount with at most 2 decimals: ${text}`);
  return v;
}

/**
 * billing.md section 4: a charge is round_half_up(kWh x price, 2). With wh in Wh and the
 * price in micro-CNY/kWh, fen = round_half_up(wh * micro / 10^7).
 */
export function chargeFen(wh: number, micro: number): number {
  return mulDivRoundHalfUp(wh, micro, 10_000_000);
}

/** Byte-order string comparison (billing.md section 4 and 6 tie-breaks and sorting). */
export function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
