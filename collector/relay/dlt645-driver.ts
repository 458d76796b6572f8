import { zoneOf } from '../../core/index.ts';
import type { Meter } from '../../core/index.ts';
import type { BusTransport, SerialBus, SerialSettings } from '../bus/index.ts';
import { serialSettingsOf } from '../bus/index.ts';
import { MeterReadError } from '../input.ts';
import { decodeFrame, frameCheck, parseReadReply } from '../inputs/dlt645/codec.ts';
import type { CodecError, Frame, MeterDateTime } from '../inputs/dlt645/codec.ts';
import { ACTION_TEXT, controlRequest, decodeStatusWord3, describeStatusWord3, DI_STATUS_WORD_3, parseControlReply, statusWord3Request } from '../inputs/dlt645/control.ts';
import type { ControlAction } from '../inputs/dlt645/control.ts';
import { DLT645_DEFAULT_TIMEOUT_MS } from '../inputs/dlt645/input.ts';
import type { CommandOutcome, RelayCommand, RelayDriver, RelayReadback, RelayResources } from './types.ts';

const ACTION: Record<RelayCommand, ControlAction> = { trip: 'trip', close: 'closeNow', 'close-permit': 'closePermit', 'protect-on': 'protectOn', 'protect-off': 'protectOff' };

type Dlt645Connection = Extract<NonNullable<Meter['connection']>, { protocol: 'dlt645' }>;

/**
 * DL/T 645 relay control: 1CH with the meter's plaintext password and a deadline, and the
 * read-back of status word 3, each one priority transaction on the meter's bus.
 */
export class Dlt645RelayDriver implements RelayDriver {
  readonly meter: Meter;
  private readonly address: string;
  private readonly bus: SerialBus;
  private readonly settings: SerialSettings;
  private readonly timeoutMs: number;
  private readonly res: RelayResources;

  constructor(meter: Meter, res: RelayResources) {
    const c = meter.connection as Dlt645Connection;
    this.meter = meter;
    this.address = c.address;
    this.bus = res.buses.get(c.port);
    this.settings = serialSettingsOf(c);
    this.timeoutMs = c.timeout_ms ?? DLT645_DEFAULT_TIMEOUT_MS;
    this.res = res;
  }

  /** The deadline N3..N8: now plus the validity, as the meter's wall clock (site zone) shows it. */
  deadline(): MeterDateTime {
    const now = (this.res.now ?? Date.now)();
    const wall = new Date(zoneOf(this.res.site.timezone).wall(now) + (this.res.commandValiditySeconds ?? 300) * 1000);
    return { year: wall.getUTCFullYear(), month: wall.getUTCMonth() + 1, day: wall.getUTCDate(), hour: wall.getUTCHours(), minute: wall.getUTCMinutes(), second: wall.getUTCSeconds() };
  }

  async send(command: RelayCommand): Promise<CommandOutcome> {
    const secret = this.res.secrets.forMeter(this.meter.id);
    if (!secret) throw new MeterReadError(this.meter.id, 'config', `no DL/T 645 control password for meter ${this.meter.id}`, false);
    const action = ACTION[command];
    const request = controlRequest(this.address, { password: secret.password, operator: secret.operator, action, deadline: this.deadline() });
    return this.bus.transact(
      this.meter.id,
      this.settings,
      async (t) => {
        const frame = await this.exchange(t, request, (f) => parseControlReply(f, this.address));
        const r = parseControlReply(frame, this.address);
        if (!r.ok) throw new MeterReadError(this.meter.id, 'protocol', r.error.message);
        if (r.value.accepted) return { accepted: true, text: `meter ${this.address} accepted ${ACTION_TEXT[action]}` };
        return { accepted: false, reasons: r.value.refusal.reasons, raw: r.value.refusal.raw, text: `meter ${this.address} refused ${ACTION_TEXT[action]}: ${r.value.refusal.text}` };
      },
      { priority: true },
    );
  }

  async readState(): Promise<RelayReadback> {
    const request = statusWord3Request(this.address);
    return this.bus.transact(
      this.meter.id,
      this.settings,
      async (t) => {
        // A read may be re-asked once after a timeout (RS485 noise); a command never is.
        let frame: Frame | undefined;
        for (let attempt = 0; attempt < 2 && !frame; attempt++) {
          try {
            frame = await this.exchange(t, request, (f) => parseReadReply(f, this.address, DI_STATUS_WORD_3));
          } catch (err) {
            if (attempt === 1 || !(err instanceof MeterReadError) || (err.kind !== 'timeout' && err.kind !== 'crc')) throw err;
          }
        }
        const r = parseReadReply(frame!, this.address, DI_STATUS_WORD_3);
        if (!r.ok) throw new MeterReadError(this.meter.id, r.error.kind === 'meter-error' ? 'exception' : 'protocol', `status word 3: ${r.error.message}`);
        const s = decodeStatusWord3(r.value.payload);
        if (!s.ok) throw new MeterReadError(this.meter.id, 'protocol', `status word 3: ${s.error.message}`);
        return { state: s.value.relayOpen ? 'open' : 'closed', commandTrip: s.value.commandTrip, protect: s.value.protect, raw: s.value.raw, text: describeStatusWord3(s.value) };
      },
      { priority: true },
    );
  }

  /**
   * Writes a request and returns the first frame that answers it; frames that do not (a
   * late reply, another meter, our own request echoed by the adapter) are skipped while
   * the timeout runs.
   */
  private async exchange(t: BusTransport, request: Uint8Array, answers: (f: Frame) => { ok: boolean; error?: CodecError }): Promise<Frame> {
    t.flush();
    await t.write(request);
    const deadline = performance.now() + this.timeoutMs;
    for (;;) {
      const left = Math.max(1, Math.round(deadline - performance.now()));
      const bytes = await t.read(frameCheck, left);
      const f = decodeFrame(bytes);
      if (!f.ok) throw new MeterReadError(this.meter.id, 'crc', `corrupt DL/T 645 frame: ${f.error.message}`);
      const r = answers(f.value);
      if (!r.ok && r.error?.kind === 'unexpected-reply') continue;
      return f.value;
    }
  }
}
