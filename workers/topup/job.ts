import { UnrecoverableError } from 'bullmq';
import type { TopupProviders } from '../../lib/topup/index.ts';
import type { WorkerContext } from '../context.ts';
import type { TopupJob } from '../queues.ts';
import { TopupService } from './service.ts';

/** One TopupService per site with a topup block, on the workers' Redis, InfluxDB and clock. */
export function topupServices(ctx: WorkerContext, providers: ReadonlyMap<string, TopupProviders>): Map<string, TopupService> {
  const out = new Map<string, TopupService>();
  for (const [id, site] of ctx.sites) {
    const p = providers.get(id);
    if (site.topup && p) out.set(id, new TopupService({ site: () => site, influx: ctx.influx, redis: ctx.redis, keyPrefix: ctx.keyPrefix, providers: p, now: () => ctx.now(), log: ctx.log }));
  }
  return out;
}

/** The `topup` queue: the pending-order poll, or the statement reconciliation of each provider (or one). */
export async function processTopup(services: ReadonlyMap<string, TopupService>, job: TopupJob): Promise<unknown> {
  const svc = services.get(job.site);
  if (!svc) throw new UnrecoverableError(`topup: site ${job.site} has no topup block or no providers in this worker`);
  if (job.kind === 'pending') return svc.pollPending();
  const providers = job.provider ? [job.provider] : svc.providers();
  const out = [];
  for (const p of providers) {
    const r = await svc.reconcile(p, job.date ?? svc.yesterday(p));
    out.push({ provider: p, date: r.date, credited: r.credited, alarms: r.alarms });
  }
  return out;
}
