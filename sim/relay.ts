/**
 * The load relay of a simulated meter (issue 13): open contacts really stop the load, so
 * the energy register stops rising and power and current read 0 until it closes again.
 *
 * The load model integrates each meter's power from its epoch whatever the relay does;
 * the relay keeps the outages (open intervals) and the meter shows the model's energy
 * minus what the model accrued during them. That is exact at any instant, in or out of
 * order, because it only asks the model for its own integral at the interval ends.
 *
 * Modelled like State Grid prepaid meters: a command state (trip / close / close
 * permitted) and the contacts, which follow the command unless the relay is stuck; a
 * protect (保电) flag that makes the meter refuse trips; close permitted leaves the
 * contacts open until someone presses the meter's button.
 */

export type RelayAction = 'trip' | 'close-now' | 'close-permit' | 'protect-on' | 'protect-off';

export interface RelayState {
  /** Contacts closed: power flows. */
  readonly closed: boolean;
  /** The last command was a trip (status word 3 bit 6). */
  readonly commandTrip: boolean;
  /** Close permitted and waiting for the button. */
  readonly closePermitted: boolean;
  readonly protect: boolean;
  /** Injected fault: the contacts do not move whatever the command. */
  readonly stuck: boolean;
}

export type RelayCommandResult = { readonly ok: true } | { readonly ok: false; readonly reason: 'trip-while-protected' };

export class SimRelay {
  private contactsClosed = true;
  private commandTrip = false;
  private closePermitted = false;
  private protectOn = false;
  stuck = false;
  /**
   * Contacts move this many real milliseconds after a command (a meter's trip delay,
   * 跳闸延时): the command state changes at once, the power later. @defaultValue 0
   */
  delayMs = 0;
  /** Control frames (DL/T 645 1C) and relay writes (Modbus) this meter received, answered or not. */
  controlFrames = 0;
  /** Commands that changed the contacts. */
  switches = 0;
  /**
   * Open intervals of the contacts, [from, to) in simulated epoch ms, with the model's
   * cumulative energy at both ends (taken when the contacts moved, so reads never make
   * the model replay history); `to` undefined while open.
   */
  private readonly outages: { from: number; fromWh: number; to?: number; toWh?: number }[] = [];
  /** The model's cumulative energy (Wh) at an instant; set by the meter that owns the relay. */
  private readonly totalAt: (t: number) => number;
  /** Simulated clock, for moves that happen after `delayMs`. */
  private readonly now: () => number;
  private pending: { timer: NodeJS.Timeout; close: boolean } | undefined;

  constructor(totalAt: (t: number) => number = () => 0, now: () => number = Date.now) {
    this.totalAt = totalAt;
    this.now = now;
  }

  state(): RelayState {
    return { closed: this.contactsClosed, commandTrip: this.commandTrip, closePermitted: this.closePermitted, protect: this.protectOn, stuck: this.stuck };
  }

  /** Carries out a command at simulated time `t`. Protected meters refuse trips (State Grid: 跳闸失败(保电)). */
  command(action: RelayAction, t: number): RelayCommandResult {
    switch (action) {
      case 'protect-on':
        this.protectOn = true;
        // A trip pending on a protected meter is lifted: 保电 means the power stays on.
        this.move(true, t);
        this.commandTrip = false;
        this.closePermitted = false;
        return { ok: true };
      case 'protect-off':
        this.protectOn = false;
        return { ok: true };
      case 'trip':
        if (this.protectOn) return { ok: false, reason: 'trip-while-protected' };
        this.commandTrip = true;
        this.closePermitted = false;
        this.move(false, t);
        return { ok: true };
      case 'close-now':
        this.commandTrip = false;
        this.closePermitted = false;
        this.move(true, t);
        return { ok: true };
      case 'close-permit':
        this.commandTrip = false;
        // Contacts already closed stay closed; open ones wait for the button.
        this.closePermitted = !this.contactsClosed;
        return { ok: true };
    }
  }

  /** The tenant presses the meter's button: closes a relay whose close was permitted. */
  pressButton(t: number): boolean {
    if (!this.closePermitted) return false;
    this.closePermitted = false;
    this.move(true, t);
    return this.contactsClosed;
  }

  /** Whether the contacts were closed at simulated time `t`. */
  closedAt(t: number): boolean {
    for (const o of this.outages) if (t >= o.from && (o.to === undefined || t < o.to)) return false;
    return true;
  }

  /**
   * Energy the model accrued while the contacts were open, up to `t`; `totalWhAtT` is the
   * model's cumulative energy at `t` (the caller has it already).
   */
  missingWh(t: number, totalWhAtT: number): number {
    let wh = 0;
    for (const o of this.outages) {
      if (o.from >= t) break;
      wh += o.to !== undefined && o.to <= t ? o.toWh! - o.fromWh : totalWhAtT - o.fromWh;
    }
    return wh;
  }

  /**
   * Moves the contacts now if a command's delayed move is pending; false if none was. A
   * test holds the contacts with a long `delayMs` and lets them move at the moment it
   * chooses (before or after a process that reads them back is killed).
   */
  finishMove(): boolean {
    const p = this.pending;
    if (!p) return false;
    clearTimeout(p.timer);
    this.pending = undefined;
    this.moveNow(p.close, this.now());
    return true;
  }

  private move(close: boolean, t: number): void {
    if (this.pending) {
      clearTimeout(this.pending.timer);
      this.pending = undefined;
    }
    if (this.delayMs > 0) {
      const timer = setTimeout(() => {
        this.pending = undefined;
        this.moveNow(close, this.now());
      }, this.delayMs);
      timer.unref?.();
      this.pending = { timer, close };
      return;
    }
    this.moveNow(close, t);
  }

  private moveNow(close: boolean, t: number): void {
    if (this.stuck || close === this.contactsClosed) return;
    this.switches++;
    this.contactsClosed = close;
    if (!close) this.outages.push({ from: t, fromWh: this.totalAt(t) });
    else {
      const open = this.outages[this.outages.length - 1];
      if (open && open.to === undefined) {
        open.to = Math.max(open.from, t);
        open.toWh = this.totalAt(open.to);
      }
    }
  }
}
