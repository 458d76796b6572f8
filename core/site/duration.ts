import { z } from 'zod';

const DURATION = /^(\d+)(ms|s|m|h)$/;
const DURATION_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
/** Seconds as a number, or a string like `90s`, `15m`, `1h` (billing.md section 1); result in ms. */
export const durationMs = z.union([z.number(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') {
    if (!(v > 0) || !Number.isFinite(v) || !Number.isInteger(v * 1000)) {
      ctx.addIssue({ code: 'custom', message: `must be a positive number of seconds (whole milliseconds), got ${v}` });
      return z.NEVER;
    }
    return Math.round(v * 1000);
  }
  const m = DURATION.exec(v.trim());
  if (!m || Number(m[1]) <= 0) {
    ctx.addIssue({ code: 'custom', message: `must be a positive duration like 90s, 15m or 1h, got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return Number(m[1]) * DURATION_MS[m[2] as keyof typeof DURATION_MS];
});

