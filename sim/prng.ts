/**
 * Deterministic pseudo-random numbers for the load model. Stateless hashing instead of a
 * stream PRNG: the value for (seed, meter, slot) does not depend on which other values
 * were drawn before, so the live simulator, `simulateReadings` and a restarted process
 * all see the same load whatever order they evaluate it in.
 */

/** FNV-1a of a string: a stable 32-bit key per meter id (adding meters changes no other meter). */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** 32-bit mix of up to three integers (murmur3 finalizer over a combined key). */
export function hash3(a: number, b: number, c: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x7f4a7c15, 0xc2b2ae35) ^ Math.imul(c ^ 0x165667b1, 0x27d4eb2f);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Uniform in [0, 1) from (a, b, c). */
export function unit3(a: number, b: number, c: number): number {
  return hash3(a, b, c) / 4_294_967_296;
}

/** Uniform in [lo, hi) from (a, b, c). */
export function range3(a: number, b: number, c: number, lo: number, hi: number): number {
  return lo + (hi - lo) * unit3(a, b, c);
}
