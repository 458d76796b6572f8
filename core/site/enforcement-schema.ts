import { z } from 'zod';
import { decimalFrom } from '../decimal.ts';
import { durationMs as duration } from './duration.ts';

/**
 * The site file's `enforcement` block (issue 13, docs/enforcement.md): the prepaid
 * cut-off policy, site-wide with per-account overrides. Every key is optional with a safe
 * default, so a site file without the block loads unchanged and runs in `dry-run`
 * (decide and log, send nothing).
 */

const hhmm = z.string().regex(/^([01]\d|2[0-4]):[0-5]\d$/, 'must be a wall-clock time HH:MM (24:00 allowed as an end)');
/** Money as a quoted decimal string or a YAML number, at most 2 places, as integer fen. */
const money = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const d = decimalFrom(v);
  if (!d || d.decimalPlaces() > 2) {
    ctx.addIssue({ code: 'custom', message: `must be an amount with at most 2 decimals, got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return d.mul(100).toNumber();
});

export const ENFORCEMENT_MODES = ['off', 'dry-run', 'on'] as const;

const window = z
  .strictObject({
    name: z.string().min(1).max(64).optional(),
    /** Local dates whose weekday (or holiday) is listed; all days when absent. */
    days: z.array(z.enum(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun', 'holiday'])).min(1).optional(),
    /** Start on a matching date; 00:00 when absent. A `to` at or before `from` ends on the next day. */
    from: hhmm.optional(),
    /** End; 24:00 when absent. */
    to: hhmm.optional(),
  })
  .superRefine((w, ctx) => {
    if (w.from !== undefined && w.to !== undefined && w.from === w.to) ctx.addIssue({ code: 'custom', path: ['to'], message: 'equals from: leave both out for a whole day' });
    if (w.from === '24:00') ctx.addIssue({ code: 'custom', path: ['from'], message: 'a window cannot start at 24:00' });
  });

const policyKeys = {
  mode: z.enum(ENFORCEMENT_MODES).optional(),
  /** Credit below zero before a trip: trip when balance + grace <= 0. */
  grace: money.optional(),
  /** Close again once the balance is above this (after a payment). */
  reconnect_above: money.optional(),
  /** Warn the tenant when the balance runs out within this many hours. */
  warn_hours: z.number().positive().max(24 * 31).optional(),
  /** Final warning this many hours before the balance runs out (and while a trip waits). */
  final_warning_hours: z.number().positive().max(24 * 31).optional(),
  /** Times when no trip is sent (nights, weekends, holidays). Replaces the default list. */
  protected_windows: z.array(window).optional(),
  /** How power comes back: `now` (1CH, 直接合闸) or `permit` (1BH: the tenant presses the meter's button). */
  close: z.enum(['now', 'permit']).optional(),
};

export const enforcementSchema = z.strictObject({
  ...policyKeys,
  /** Data older than this blocks trips: the balance point, a meter's last reading, the collector's state. */
  max_data_age: duration.optional(),
  /** A collector spool holding more samples than this (InfluxDB behind) blocks trips. */
  max_spool_samples: z.number().int().min(0).optional(),
  /** Relay commands per minute on one bus (serial port, or Modbus TCP host:port). */
  commands_per_minute: z.number().int().min(1).max(600).optional(),
  /** How long after a command the relay must read back the new state; a mismatch after it is an alarm. */
  readback: duration.optional(),
  /** DL/T 645 command deadline (N3..N8): the meter refuses a command this long after it was sent. */
  command_validity: duration.optional(),
  /** Per-account overrides, by account id; `protected: true` is 保电: never tripped. */
  accounts: z.record(z.string(), z.strictObject({ ...policyKeys, protected: z.boolean().optional() })).optional(),
});

export type EnforcementFile = z.output<typeof enforcementSchema>;
