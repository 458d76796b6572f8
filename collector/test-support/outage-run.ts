import type { Site } from '../../core/index.ts';
import { dlt645Handler } from '../../sim/dlt645/handler.ts';
import { startSimulator } from '../../sim/simulator.ts';
import { openPtyPair } from '../../sim/test-support.ts';
import { BusRegistry } from '../bus/index.ts';
import { createInput } from '../inputs/index.ts';
import { LastSeenStore } from '../last-seen.ts';
import { MeterPoller } from '../poller.ts';
import type { Sample } from '../sample.ts';
import { tempDir } from './socat.ts';

/**
 * One run of a site's DL/T 645 meters on the simulator (a fresh one each run, same seed
 * and epoch, so the same load), polled at the given instants by the collector's own
 * pollers on a PTY bus; the collector is "down" between `down[0]` and `down[1]` (no
 * request reaches the meters, which keep counting and freezing), then starts again from
 * what it saved (last-seen.json), so it reads the daily freezes back. Simulated time: the
 * simulator and the pollers share the clock the run sets. Returns every sample the
 * collector produced, in order (what it would spool).
 */
export async function outageRun(
  name: string,
  siteOn: (port: string) => Site,
  polls: readonly number[],
  opts: { down?: [number, number]; changes?: Record<string, number>; epoch: number; intervalMs: number; onPoll?: (t: number) => void },
): Promise<Sample[]> {
  const pty = await openPtyPair();
  let now = polls[0];
  const site = siteOn(pty.a);
  const sim = await startSimulator({ site, now: () => now, epoch: opts.epoch, serial: pty.b, tcp: false, serialProtocols: [dlt645Handler({ site })] });
  const dir = tempDir(`outage-${name}`);
  const samples: Sample[] = [];
  const { down, changes } = opts;
  try {
    let buses = new BusRegistry({ backoffBaseMs: 0, backoffMaxMs: 0 });
    let store = new LastSeenStore(dir);
    const pollers = () =>
      site.meters.map((m) => {
        // A meter change (billing.md section 11 rule 5) at the given instant, as the site file would declare it.
        const at = changes?.[m.id];
        const meter = at === undefined ? m : { ...m, changes: [{ at, finalWh: 0, initialWh: 0, multiplier: 1, estimated: false }] };
        const input = createInput(meter, { buses, tcp: undefined as never, timezone: site.timezone }, () => now);
        const sink = { sample: async (s: Sample) => void (samples.push(s), store.note(s.meter, s.time)), health: async () => undefined };
        return new MeterPoller({ input, intervalMs: opts.intervalMs, sink, now: () => now, lastSeen: store.get(m.id) });
      });
    let ps = pollers();
    for (const t of polls) {
      if (down && t > down[0] && ps.length) {
        // The collector stops: its state is saved, its bus closed.
        store.flush();
        await buses.closeAll();
        ps = [];
      }
      if (down && t >= down[1] && ps.length === 0) {
        // ... and starts again from what it saved.
        buses = new BusRegistry({ backoffBaseMs: 0, backoffMaxMs: 0 });
        store = new LastSeenStore(dir);
        ps = pollers();
      }
      if (ps.length === 0) continue;
      now = t;
      for (const p of ps) {
        const r = await p.pollOnce();
        if (r instanceof Error) throw new Error(`${name}: ${p.meter} at ${new Date(t).toISOString()}: ${r.message}`);
      }
      opts.onPoll?.(t);
    }
    await buses.closeAll();
  } finally {
    await sim.stop();
    await pty.close();
  }
  return samples;
}
