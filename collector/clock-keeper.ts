import type { Site } from '../core/index.ts';
import { zoneOf } from '../core/index.ts';
import type { MeterClockCheck } from '../influx/meter-clock.ts';
import type { Logger } from '../lib/logger.ts';
import type { BusRegistry, SerialSettings } from './bus/index.ts';
import { describeSettings, serialSettingsOf } from './bus/index.ts';
import type { MeterInput } from './input.ts';
import { broadcastTimeSync } from './inputs/dlt645/time-sync.ts';

export interface ClockKeeperOptions {
  readonly site: Site;
  /** The meters' inputs, or a function giving those in force now (the collector's change on a site reload). */
  readonly inputs: readonly MeterInput[] | (() => readonly MeterInput[]);
  readonly buses: BusRegistry;
  readonly now: () => number;
  /** Where each check goes (the collector appends a meter_health line to its spool). */
  readonly report: (check: MeterClockCheck) => Promise<void>;
  /**
   * Local wall time of the daily check and broadcast sync, HH:MM. Away from midnight (the
   * meters' day freeze, which the standard protects from time changes) and, in the usual
   * Chinese TOU layouts, inside the night valley. @defaultValue '03:30'
   */
  readonly syncAt?: string;
  readonly log?: Logger;
}

type Dlt645Conn = Extract<NonNullable<MeterInput['meter']['connection']>, { protocol: 'dlt645' }>;

/**
 * Keeps DL/T 645 meter clocks right (issue 16): once at start a check only, then daily at
 * `syncAt` a check of every meter's clock against ours followed by one broadcast time sync
 * per bus and serial setting. A meter further off than its `max_clock_drift` raises the
 * clock alarm (meter_health clock_ok = false). A meter off by more than the +-5 min a
 * broadcast may correct stays off, and alarmed, until someone sets it by hand.
 */
export class ClockKeeper {
  private readonly opts: ClockKeeperOptions;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;

  constructor(opts: ClockKeeperOptions) {
    this.opts = opts;
    if (opts.syncAt !== undefined && !/^([01]\d|2[0-3]):[0-5]\d$/.test(opts.syncAt)) throw new Error(`time sync at: expected HH:MM, got ${JSON.stringify(opts.syncAt)}`);
  }

  /** The DL/T 645 meters whose clocks it keeps, now. */
  private get meters(): { input: MeterInput; conn: Dlt645Conn }[] {
    const inputs = typeof this.opts.inputs === 'function' ? this.opts.inputs() : this.opts.inputs;
    return inputs.filter((i) => i.readClock && i.meter.connection?.protocol === 'dlt645').map((input) => ({ input, conn: input.meter.connection as Dlt645Conn }));
  }

  get size(): number {
    return this.meters.length;
  }

  /** Checks every meter's clock; with `sync`, then broadcasts the time on each bus. */
  async run(sync: boolean): Promise<MeterClockCheck[]> {
    const { log, report } = this.opts;
    const checks: MeterClockCheck[] = [];
    for (const { input, conn } of this.meters) {
      try {
        const c = await input.readClock!();
        const ok = Math.abs(c.errorMs) <= conn.max_clock_drift;
        const check = { meter: input.meter.id, time: c.at, errorMs: c.errorMs, ok, boundMs: conn.max_clock_drift };
        checks.push(check);
        await report(check);
        if (!ok) log?.warn({ meter: input.meter.id, driftS: c.errorMs / 1000, boundS: conn.max_clock_drift / 1000 }, 'meter clock off by more than its max_clock_drift');
      } catch (err) {
        // A meter that does not answer now is the poller's business (meter_health ok=false).
        log?.debug({ meter: input.meter.id, err: (err as Error).message }, 'clock check failed');
      }
    }
    if (sync) await this.broadcast();
    return checks;
  }

  /** One broadcast per (bus, serial settings) that has a meter with time_sync on. */
  async broadcast(): Promise<number> {
    const zone = zoneOf(this.opts.site.timezone);
    const groups = new Map<string, { port: string; settings: SerialSettings }>();
    for (const { conn } of this.meters) {
      if (!conn.time_sync) continue;
      const settings = serialSettingsOf(conn);
      groups.set(`${conn.port}|${describeSettings(settings)}`, { port: conn.port, settings });
    }
    for (const g of groups.values()) {
      await broadcastTimeSync(this.opts.buses.get(g.port), g.settings, zone, this.opts.now);
      this.opts.log?.info({ port: g.port, settings: describeSettings(g.settings) }, 'DL/T 645 broadcast time sync sent');
    }
    return groups.size;
  }

  /** A check soon after start (`firstCheckMs`), then the daily check and sync at `syncAt`. */
  start(firstCheckMs = 5_000): void {
    // Without DL/T 645 meters now it still keeps its schedule: a site reload may add some.
    const schedule = (ms: number, sync: boolean) => {
      this.timer = setTimeout(() => {
        this.running = this.run(sync)
          .catch((err: Error) => this.opts.log?.error({ err: err.message }, 'clock keeper failed'))
          .finally(() => {
            if (!this.stopped) schedule(this.msUntilNextSync(), true);
          });
      }, ms);
      this.timer.unref?.();
    };
    schedule(firstCheckMs, false);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** Real ms until the next `syncAt` in the site's zone. */
  msUntilNextSync(): number {
    const zone = zoneOf(this.opts.site.timezone);
    const [h, m] = (this.opts.syncAt ?? '03:30').split(':').map(Number);
    const now = Date.now();
    const wall = zone.wall(now);
    let target = Math.floor(wall / 86_400_000) * 86_400_000 + (h * 60 + m) * 60_000;
    if (target <= wall) target += 86_400_000;
    return Math.max(1000, zone.firstInstantAtOrAfter(target) - now);
  }
}
