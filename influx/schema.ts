/**
 * Every InfluxDB measurement, tag and field name submeter writes or reads, in one place
 * (style.md practice 8). The collector, workers, API and the Grafana dashboards import
 * these; nobody retypes a name.
 *
 * Types are fixed per measurement (protocols.md, InfluxDB): energy is integer Wh
 * (`wh=1234i`), money integer fen; a tag and a field never share a name (InfluxDB 3).
 */
export const M = {
  /** Raw meter samples from the collector or an import. tags: site, meter; fields: wh (cumulative import register, Wh, integer), w, v, a, pf, hz, per-tariff registers wh_t1..wh_t4, per-phase v_l1..v_l3, a_l1..a_l3, w_l1..w_l3 (three-phase meters, floats), source (string, `frozen` for a meter's daily frozen register read back after a gap; absent on live reads). */
  reading: 'reading',
  /** Per-meter health from the collector. tags: site, meter; fields: ok (bool), errors, consecutive_errors, latency_ms, last_seen, last_error; DL/T 645 meters also clock_drift_s (float s, meter clock minus the collector's), clock_ok (bool, within the meter's max_clock_drift) and clock_max_drift_s (float s), on their own points. */
  meterHealth: 'meter_health',
  /** Collector process state. tags: site, host; fields: spool_bytes, spool_samples, spool_full (bool), spool_refused, written. */
  collector: 'collector',
  /** 15-minute TOU buckets per meter. tags: site, meter, period, role (master|tenant|common), account (tenant meters only); fields: wh. role and account let Grafana sum today's energy per role and per account without the site file. */
  touBucket: 'tou_bucket',
  /** Settlement charge lines per day. tags: site, account, kind, pool, period; fields: wh, fen, price. */
  charge: 'charge',
  /** Live balance per account (billing.md section 5, shares included). tags: site, account; fields: account_name (the account's name from the site file, string, so Grafana can show it beside the id), balance_fen (live balance, integer fen), cost_rate_fen_h (cost per hour incl. shares, integer fen), hours_left (float h, rounded down to 0.1; absent when nothing was spent in 24 h), low_balance_fen, provisional_fen (provisional charges of all unsettled days, integer fen), spent_24h_fen (charges of the trailing 24 h cells, integer fen), and for the dashboards w (account's power now, W, float), price (account's price now, CNY/kWh, float: display only), period_now (TOU period now, string), cost_today_fen (provisional charges of the current local day, own + shares, integer fen), low_balance_hours (the account's low_balance_hours, float h; absent when the account has none). */
  balance: 'balance',
  /** Events: alerts and data-quality flags. tags: site, kind, account, meter; fields: detail, value. */
  event: 'event',
  /** Daily site summary. tags: site, period; fields: master_wh, tenant_wh, common_wh, loss_wh, loss_allocated_wh, loss_abnormal_wh, loss_normal_rate (the site's loss.normal_rate, float, so Grafana can draw the cap), vacant_wh (sites with a landlord account), utility_fen (what the utility charges for the master's energy of the cell, integer fen, billing.md section 8; only for sites with a `utility` key). */
  siteDay: 'site_day',
  /** Recorded payments (workers/payments.ts), the durable ledger. tags: site, account, reference, kind (refund, deposit or transfer; absent for a plain payment, so older points are payments); fields: fen (integer). Time = the payment's instant. */
  payment: 'payment',
  /**
   * What a verifiable statement shows per meter and settled day, written by the settlement
   * (issue 10). tags: site, meter; time = the day's local midnight; fields: start_wh and
   * end_wh (the register at the day's first and last covered instant, Wh, interpolated by
   * billing.md section 3, modulo the register modulus), start_ms and end_ms (those
   * instants, epoch ms: the day's bounds when the readings cover them), start_estimated and
   * end_estimated (bool: interpolated across an interval longer than max_gap), wh (the
   * meter's energy that day).
   */
  meterDay: 'meter_day',
  /**
   * A tenant meter at a move-in or move-out inside a settled day (billing.md section 11),
   * written by the settlement. tags: site, meter; time = the move instant; fields:
   * register_wh (the raw register then, Wh, interpolated by section 3), estimated (bool:
   * across an interval longer than max_gap), wh_before (the meter's energy of that day
   * before the instant, primary Wh: an occupant's part of the day is a difference of two).
   */
  meterMark: 'meter_mark',
  /** A meter's energy per settled day and period (issue 10). tags: site, meter, period; time = local midnight; fields: wh, gap_wh (the part spread over intervals longer than max_gap that cross a cell boundary or a move of the meter's occupant: an estimate, billing.md amendment 11). */
  meterCell: 'meter_cell',
  /**
   * How a settled day-period cell divided a pool's energy or the allocatable loss
   * (issue 10, billing.md section 4). tags: site, kind (common | loss), pool (common only),
   * period; time = local midnight; fields: wh (energy divided), basis (string: area,
   * consumption or equal, equal also when all weights were 0; landlord when no member was
   * there, billing.md section 11), members (integer), weight_total (integer: area in
   * 10^-4 m2, Wh, or one per member; x seconds when prorated), cell_s (prorated divisions
   * only: the cell's length in s).
   */
  shareBasis: 'share_basis',
  /** An account's weights on a settled day (issue 10). tags: site, account; time = local midnight; fields: area_weight (integer, area_m2 x 10^4), pools (string: the pools it shared, comma-separated). */
  accountDay: 'account_day',
  /**
   * An account there for only part of a settled day-period cell (billing.md section 11, a
   * move-in or move-out that day). tags: site, account, period; time = local midnight;
   * fields: occupied_s (integer seconds of the cell it occupied; its prorated weight is
   * area x occupied_s, or occupied_s for equal). Cells without a point: the whole cell.
   */
  accountCell: 'account_cell',
  /** Worker queue state, per queue, written by the workers every minute. tags: site, queue; fields: lag_ms (integer ms from the newest input to its effect; queue `settlement`: how long the oldest due day has waited past its due time, 0 when every due day is settled), waiting (integer jobs), failed (integer jobs). */
  worker: 'worker',
  /** Prepaid enforcement per account, every enforcement cycle (issue 13). tags: site, account; fields: wanted (integer 1 = power on, 0 = off: what the policy wants), state (integer 1 closed, 0 open as read back from the meters; absent while unknown), mismatch (integer 1 when the read-back disagrees with what was commanded past the read-back window), mode (string off|dry-run|on), decision (string: the policy's reason), deferred (string: why a due trip waits, or ""), restore_fen (integer fen to pay to get power back), warning (string none|warning|final), pending (integer relay commands queued or running). */
  relay: 'relay',
} as const;

export const T = {
  site: 'site',
  meter: 'meter',
  account: 'account',
  period: 'period',
  kind: 'kind',
  pool: 'pool',
  host: 'host',
  /** tou_bucket: the meter's role in the site file (master, tenant, common). */
  role: 'role',
  /** worker: the BullMQ queue name. */
  queue: 'queue',
  /** payment: the payer's unique reference. */
  reference: 'reference',
  /** charge: 0 for a day's first settlement, 1, 2, ... for adjustment lines after a settled day changed. */
  rev: 'rev',
} as const;

export const F = {
  wh: 'wh',
  w: 'w',
  v: 'v',
  a: 'a',
  pf: 'pf',
  hz: 'hz',
  /** DL/T 645 meters' own per-tariff registers 1..4 (Wh), kept beside our computed buckets. */
  whTariff: (n: 1 | 2 | 3 | 4) => `wh_t${n}` as const,
  /** reading: phase n's voltage (V, float), three-phase meters. `v` is the mean of the live phases. */
  vPhase: (n: 1 | 2 | 3) => `v_l${n}` as const,
  /** reading: phase n's current (A, float). `a` is the sum over the live phases. */
  aPhase: (n: 1 | 2 | 3) => `a_l${n}` as const,
  /** reading: phase n's active power (W, float), where the meter reports it. */
  wPhase: (n: 1 | 2 | 3) => `w_l${n}` as const,
  /** reading: `frozen` on a meter's daily frozen register read back after a gap (string); absent on live reads. */
  source: 'source',
  ok: 'ok',
  errors: 'errors',
  consecutiveErrors: 'consecutive_errors',
  latencyMs: 'latency_ms',
  lastError: 'last_error',
  /** meter_health: epoch ms of the meter's last successful read (integer). */
  lastSeen: 'last_seen',
  /** meter_health: the meter's clock minus the collector's, seconds (float), from the daily clock check (DL/T 645). */
  clockDriftS: 'clock_drift_s',
  /** meter_health: the meter's clock is within its max_clock_drift (bool); false raises the clock alarm. */
  clockOk: 'clock_ok',
  /** meter_health: the meter's max_clock_drift, seconds (float), beside each clock check. */
  clockMaxDriftS: 'clock_max_drift_s',
  spoolBytes: 'spool_bytes',
  spoolSamples: 'spool_samples',
  spoolFull: 'spool_full',
  /** collector: samples refused since start because the spool was full (integer). */
  spoolRefused: 'spool_refused',
  written: 'written',
  fen: 'fen',
  price: 'price',
  balanceFen: 'balance_fen',
  costRateFenH: 'cost_rate_fen_h',
  hoursLeft: 'hours_left',
  lowBalanceFen: 'low_balance_fen',
  /** balance: the account's low_balance_hours setting (float hours); written only for accounts that have one. */
  lowBalanceHours: 'low_balance_hours',
  detail: 'detail',
  value: 'value',
  /** balance: the TOU period in force now (string, e.g. 'peak'); not named period, which is a tag elsewhere. */
  periodNow: 'period_now',
  /** balance: today's not yet settled cost, integer fen. */
  costTodayFen: 'cost_today_fen',
  /** site_day: the site's loss.normal_rate (float ratio, e.g. 0.03). */
  lossNormalRate: 'loss_normal_rate',
  /** worker: integer ms from the newest input to its effect. */
  lagMs: 'lag_ms',
  /** worker: integer jobs waiting. */
  waiting: 'waiting',
  /** worker: integer jobs failed. */
  failed: 'failed',
  /** charge adjustments: why a settled day changed (late or corrected readings). */
  reason: 'reason',
  /** balance: provisional charges of all unsettled days, integer fen. */
  provisionalFen: 'provisional_fen',
  /** balance: charges of the trailing 24 h cells, integer fen. */
  spent24hFen: 'spent_24h_fen',
  /** meter_day: register (Wh) and instant (ms) of the day's first and last covered instant, and whether each was interpolated across a gap. */
  startWh: 'start_wh',
  startMs: 'start_ms',
  startEstimated: 'start_estimated',
  endWh: 'end_wh',
  endMs: 'end_ms',
  endEstimated: 'end_estimated',
  /** meter_mark: the raw register at the instant, Wh. */
  registerWh: 'register_wh',
  /** meter_mark: interpolated across an interval longer than max_gap. */
  estimated: 'estimated',
  /** meter_mark: the meter's energy of the day before the instant, Wh. */
  whBefore: 'wh_before',
  /** meter_cell: Wh spread over intervals longer than max_gap. */
  gapWh: 'gap_wh',
  /** share_basis: the weights used (area, consumption, equal). */
  basis: 'basis',
  members: 'members',
  weightTotal: 'weight_total',
  /** share_basis, prorated divisions (billing.md section 11): the cell's length, integer s (weights are x occupied seconds). */
  cellS: 'cell_s',
  /** account_cell: seconds of the cell the account occupied. */
  occupiedS: 'occupied_s',
  /** account_day: area_m2 x 10^4 (the area weight). */
  areaWeight: 'area_weight',
  /** account_day: comma-separated pool ids. */
  pools: 'pools',
  /** relay: 1 = the policy wants power on, 0 = off (integer). */
  wanted: 'wanted',
  /** relay: 1 = the relay reads back closed, 0 = open (integer). */
  state: 'state',
  /** relay: 1 = read-back disagrees with the command past the read-back window (integer). */
  mismatch: 'mismatch',
  /** relay: enforcement mode of the account (string). */
  mode: 'mode',
  /** relay: the policy's reason code (string). */
  decision: 'decision',
  /** relay: why a due trip waits (string, "" when none). */
  deferred: 'deferred',
  /** relay: fen to pay to get power back (integer). */
  restoreFen: 'restore_fen',
  /** relay: warning level none|warning|final (string). */
  warning: 'warning',
  /** relay: relay commands queued or running (integer). */
  pending: 'pending',
  masterWh: 'master_wh',
  tenantWh: 'tenant_wh',
  commonWh: 'common_wh',
  lossWh: 'loss_wh',
  lossAllocatedWh: 'loss_allocated_wh',
  lossAbnormalWh: 'loss_abnormal_wh',
  /** site_day, sites with a landlord account: tenant energy of vacant units (integer Wh, billing.md section 11). */
  vacantWh: 'vacant_wh',
  /** reading: the meter's multiplier (CT x PT) the collector had in force, integer, written when it is not 1; the raw registers stay raw (billing.md section 11). */
  multiplier: 'multiplier',
  /** site_day: the utility's charge for the master's energy of the cell, integer fen (billing.md section 8). */
  utilityFen: 'utility_fen',
  /** balance: the account's name (string), for display beside the id. */
  accountName: 'account_name',
} as const;
