import { z } from 'zod';
import { decimalFrom } from '../decimal.ts';
import { parseRfc3339 } from '../readings/rfc3339.ts';
import { isLocalDate } from '../tou/local-date.ts';
import { dateProblem } from '../date-range.ts';
import { PERIODS } from '../tou/schedule.ts';
import { durationMs } from './duration.ts';
import { enforcementSchema } from './enforcement-schema.ts';

/**
 * The site file's shape (billing.md section 1, site.example.yaml). Structure only: every
 * object is strict (unknown keys are errors); cross-references, duplicate ids and TOU
 * coverage are checked afterwards in validate.ts, so that each error names its key path.
 */

const id = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/, 'must be 1-64 characters of letters, digits, _ . : - (starting with a letter or digit)');

/** A decimal written as a quoted string or a YAML number, with at most `places` decimals. */
const decimalText = (places: number, opts: { min?: number; max?: number; lt?: number } = {}) =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    const d = decimalFrom(v);
    if (!d) {
      ctx.addIssue({ code: 'custom', message: `must be a decimal number, got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    if (d.decimalPlaces() > places) {
      ctx.addIssue({ code: 'custom', message: `must have at most ${places} decimal places, got ${d.toString()}` });
      return z.NEVER;
    }
    if (opts.min !== undefined && d.lt(opts.min)) {
      ctx.addIssue({ code: 'custom', message: `must be at least ${opts.min}, got ${d.toString()}` });
      return z.NEVER;
    }
    if (opts.max !== undefined && d.gt(opts.max)) {
      ctx.addIssue({ code: 'custom', message: `must be at most ${opts.max}, got ${d.toString()}` });
      return z.NEVER;
    }
    if (opts.lt !== undefined && d.gte(opts.lt)) {
      ctx.addIssue({ code: 'custom', message: `must be below ${opts.lt}, got ${d.toString()}` });
      return z.NEVER;
    }
    return d.toString();
  });

/** A local date in the supported range (core/date-range.ts). */
const localDate = z.string({ error: 'must be a local date YYYY-MM-DD (quote it if your YAML tool turns it into a timestamp)' }).superRefine((v, ctx) => {
  const problem = dateProblem(v);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

// Durations live in duration.ts (shared with the enforcement block).
export { durationMs };

const hhmm = z.string().regex(/^([01]\d|2[0-4]):[0-5]\d$/, 'must be a wall-clock time HH:MM (24:00 allowed as an end)');

export const MODBUS_MAPS = ['sdm630', 'sdm120', 'dtsu666', 'ddsu666', 'adw300', 'dds238'] as const;
/**
 * Maps whose meter has a load relay (collector/inputs/modbus/maps.ts `relay`; a test holds
 * the two lists equal). The core cannot import the collector, and a meter's `relay` key
 * must be refused at load time when its map has none.
 */
export const MODBUS_RELAY_MAPS: readonly ModbusMapName[] = ['dds238'];
export type ModbusMapName = (typeof MODBUS_MAPS)[number];

const serial = {
  /** Device path, e.g. /dev/ttyUSB0. Meters with the same port share one RS485 bus. */
  port: z.string().min(1),
  data_bits: z.union([z.literal(7), z.literal(8)]).optional(),
  stop_bits: z.union([z.literal(1), z.literal(2)]).optional(),
  timeout_ms: z.number().int().positive().max(60_000).optional(),
};

const modbusTcp = z.strictObject({
  protocol: z.literal('modbus-tcp'),
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(502),
  unit: z.number().int().min(0).max(255),
  map: z.enum(MODBUS_MAPS),
  timeout_ms: z.number().int().positive().max(60_000).optional(),
});

const modbusRtu = z.strictObject({
  protocol: z.literal('modbus-rtu'),
  ...serial,
  baud: z.number().int().positive().default(9600),
  parity: z.enum(['none', 'even', 'odd']).default('none'),
  unit: z.number().int().min(1).max(247),
  map: z.enum(MODBUS_MAPS),
});

const dlt645 = z.strictObject({
  protocol: z.literal('dlt645'),
  ...serial,
  baud: z.number().int().positive().default(2400),
  // DL/T 645 meters are 8E1 on the wire (protocols.md); PTYs in tests may need `none`.
  parity: z.enum(['none', 'even', 'odd']).default('even'),
  address: z.string().regex(/^\d{12}$/, 'must be the 12-digit meter address as a quoted string, e.g. "000000001102"'),
  /** Which of the meter's tariff registers 1..4 holds which TOU period (a meter setting). */
  tariffs: z
    .strictObject({ sharp: z.number().int().min(1).max(63).optional(), peak: z.number().int().min(1).max(63).optional(), flat: z.number().int().min(1).max(63).optional(), valley: z.number().int().min(1).max(63).optional() })
    .optional(),
  /** The collector's daily broadcast time sync reaches this meter (docs/dlt645.md, "Clock"). */
  time_sync: z.boolean().default(true),
  /** A meter clock further off than this raises the clock alarm (meter_health clock_ok = false). */
  max_clock_drift: durationMs.default(60_000),
});

export const connectionSchema = z.discriminatedUnion('protocol', [modbusTcp, modbusRtu, dlt645], {
  error: (iss) => (iss.code === 'invalid_union' ? 'protocol must be one of modbus-tcp, modbus-rtu, dlt645' : undefined),
});

/**
 * An instant of the site's life (billing.md section 11): RFC 3339 with an offset, or a
 * local date YYYY-MM-DD meaning local midnight starting that date. Checked here for shape;
 * turned into epoch ms in validate.ts, which knows the site's time zone.
 */
export const instantText = z
  .string({ error: 'must be an RFC 3339 time with an offset (2026-10-15T14:37:00+08:00) or a local date YYYY-MM-DD (quote it)' })
  .superRefine((v, ctx) => {
    if (!(isLocalDate(v) || typeof parseRfc3339(v) === 'number')) {
      ctx.addIssue({ code: 'custom', message: 'must be an RFC 3339 time with an offset (2026-10-15T14:37:00+08:00) or a local date YYYY-MM-DD' });
      return;
    }
    // Only dates of the supported range (core/date-range.ts), like every other date of the file.
    const problem = dateProblem(v.slice(0, 10));
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/**
 * A register value in kWh read exactly to the Wh from the YAML text (load.ts hands these
 * keys over as the text written, so `1234.56` is never a binary float): integer Wh.
 */
const registerKwh = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const text = String(v).trim();
  const m = /^(\d{1,10})(?:\.(\d{1,3}))?$/.exec(text);
  if (!m) {
    ctx.addIssue({ code: 'custom', message: `must be a non-negative kWh register value with at most 3 decimals (whole Wh), got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return Number(m[1]) * 1000 + Number((m[2] ?? '').padEnd(3, '0'));
});

/** CT ratio x PT ratio (倍率): every register and power figure of the meter is multiplied by it. */
const multiplier = z.number().int('must be a whole number (CT ratio x PT ratio, e.g. 200/5 = 40)').min(1).max(1_000_000);

/** A meter replaced in place (or its CT swapped) at `at` (billing.md section 11). */
export const meterChangeSchema = z.strictObject({
  at: instantText,
  /** The old register at `at` (read off the old meter, or estimated: then `estimated: true`). */
  final_kwh: registerKwh,
  /** The new register at `at`. */
  initial_kwh: registerKwh,
  /** The new meter's serial number (recorded in the quality entry and statements). */
  serial: z.string().min(1).max(64).optional(),
  /** The new meter's address for the collector: DL/T 645 12 digits (quoted), or a Modbus unit id. */
  address: z.union([z.string().regex(/^\d{12}$/, 'must be the 12-digit DL/T 645 address as a quoted string'), z.number().int().min(0).max(255)]).optional(),
  /** The multiplier from `at` on (a CT swap); unchanged when absent. */
  multiplier: multiplier.optional(),
  /** final_kwh was typed by hand because the old meter could not be read. */
  estimated: z.boolean().default(false),
});

export const meterSchema = z.strictObject({
  id,
  role: z.enum(['master', 'tenant', 'common']),
  name: z.string().optional(),
  account: id.optional(),
  /** Tenant meters: successive occupants (billing.md section 11), instead of `account`. */
  accounts: z.array(id).min(1).optional(),
  multiplier: multiplier.default(1),
  meter_changes: z.array(meterChangeSchema).default([]),
  pool: id.optional(),
  max_kw: decimalText(3, { min: 0.001 }).default('2000'),
  register_modulus_kwh: z.number().int().min(1).max(9_000_000_000).default(1_000_000),
  max_gap: durationMs.default(3_600_000),
  /** How often the collector reads this meter (not part of billing). */
  poll_interval: durationMs.default(60_000),
  connection: connectionSchema.optional(),
  /**
   * The meter's load relay for prepaid enforcement (issue 13, docs/enforcement.md):
   * `plain` = DL/T 645 control (1CH) with a plaintext password level 02/04, or the Modbus
   * map's relay register; `esam` = a DL/T 645 meter that demands ESAM-encrypted control,
   * which submeter reports as unsupported and never sends plaintext to. Absent: no relay.
   */
  relay: z.enum(['plain', 'esam']).optional(),
});

export const accountSchema = z.strictObject({
  id,
  name: z.string().optional(),
  area_m2: decimalText(4, { min: 0 }).default('0'),
  tariff: id,
  opening_balance: decimalText(2).default('0'),
  /** Occupancy [move_in, move_out) (billing.md section 11); absent = always. */
  move_in: instantText.optional(),
  move_out: instantText.optional(),
  low_balance: decimalText(2).optional(),
  low_balance_hours: z.number().positive().optional(),
  /** Where the workers' notifier tells the tenant directly (issue 4). */
  contact: z
    .strictObject({ email: z.email().optional(), webhook: z.url({ protocol: /^https?$/ }).optional() })
    .optional(),
});

const lossMethod = z.enum(['area', 'consumption', 'equal']);

export const poolSchema = z.strictObject({
  id,
  name: z.string().optional(),
  method: lossMethod,
  accounts: z.array(id).min(1).optional(),
});

const periodSpan = z.strictObject({ from: hhmm, to: hhmm, period: z.enum(PERIODS) });

const scheduleEntry = z.strictObject({
  months: z.array(z.number().int().min(1).max(12)).min(1).optional(),
  days: z.array(z.enum(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun', 'holiday'])).min(1).optional(),
  periods: z.array(periodSpan).min(1),
});

const price = decimalText(6, { min: 0 });

const tariffVersion = z.strictObject({
  effective_from: localDate,
  prices: z.strictObject({ sharp: price.optional(), peak: price.optional(), flat: price.optional(), valley: price.optional(), deep_valley: price.optional() }),
  schedule: z.array(scheduleEntry).min(1),
});

export const tariffSchema = z.strictObject({
  id,
  name: z.string().optional(),
  versions: z.array(tariffVersion).min(1),
});

/** Top-up amounts are money in the site currency, 2 decimals, positive. */
const topupMoney = decimalText(2, { min: 0.01, max: 1_000_000 });

export const topupSchema = z.strictObject({
  providers: z.array(z.enum(['wechat', 'alipay', 'stripe'])).min(1),
  presets: z.array(topupMoney).min(1).max(8).default(['50', '100', '200']),
  min: topupMoney.default('10'),
  max: topupMoney.default('5000'),
  /** How long an order may be paid; also sent to the provider as the order's expiry. */
  expiry: durationMs.default(15 * 60_000),
  /** An order still unpaid this long after creation is queried from its provider. */
  query_after: durationMs.default(3 * 60_000),
  /** Local time of the daily statement reconciliation (providers publish yesterday's bill after about 10:00). */
  reconcile_at: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a local time HH:MM (00:00-23:59)').default('10:30'),
  /** Public base URL the providers' notifications reach (https in production); default: the API's own address. */
  public_url: z.url({ protocol: /^https?$/ }).optional(),
});

export const siteFileSchema = z.strictObject({
  site: z.strictObject({
    id,
    name: z.string().optional(),
    timezone: z.string().refine(isTimeZone, { message: 'must be an IANA time zone such as Asia/Shanghai' }),
    currency: z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code such as CNY').default('CNY'),
    holidays: z.array(localDate).default([]),
    /** Who bears the energy of vacant units (billing.md section 11): an ordinary account. */
    landlord_account: id.optional(),
    /**
     * The first local day the site bills (issue 11): payments dated before it are refused.
     * Default: the earliest effective_from of any tariff version.
     */
    first_day: localDate.optional(),
    /** Whom tenants call about their balance or a top-up; shown on the tenant page (issue 11). */
    contact: z.strictObject({ name: z.string().min(1).max(100).optional(), phone: z.string().regex(/^[0-9+()\- ]{3,30}$/, 'must be a phone number: digits, spaces, + - ( )').optional(), email: z.email().optional() }).optional(),
  }),
  meters: z.array(meterSchema).min(1),
  accounts: z.array(accountSchema).default([]),
  pools: z.array(poolSchema).default([]),
  loss: z
    .strictObject({ normal_rate: decimalText(6, { min: 0, lt: 1 }).default('0'), method: lossMethod.default('consumption') })
    .default({ normal_rate: '0', method: 'consumption' }),
  settlement: z.strictObject({ interval: z.literal('day') }).default({ interval: 'day' }),
  tariffs: z.array(tariffSchema).default([]),
  /**
   * What the grid charges for the master meter (issue 3, recovery reconciliation): a tariff
   * id from `tariffs`, and the markup cap over its flat price above which a tenant's
   * average price is flagged (0.10 = 10 %).
   */
  utility: z.strictObject({ tariff: id, markup_cap: decimalText(6, { min: 0 }).default('0') }).optional(),
  /** Prepaid enforcement: the relay cut-off policy (issue 13, docs/enforcement.md). Absent: dry-run with the defaults. */
  enforcement: enforcementSchema.optional(),
  /** Online top-up (issue 14, docs/topup.md); credentials never here: environment or secrets file. */
  topup: topupSchema.optional(),
});

export type SiteFile = z.output<typeof siteFileSchema>;
export type SiteFileInput = z.input<typeof siteFileSchema>;
export type MeterConnection = z.output<typeof connectionSchema>;

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return tz.length > 0;
  } catch {
    return false;
  }
}
