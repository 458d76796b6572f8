import { zoneOf } from '../core/index.ts';
import type { LocalDate, Site } from '../core/index.ts';
import { eventLine } from '../influx/event-lines.ts';
import { stampEventWrites } from './api-stamps.ts';
import { enqueueNotifications } from './balance.ts';
import type { WorkerContext } from './context.ts';

/**
 * Moving out produces a final statement (billing.md section 11, rule 8): once the day of an
 * account's last occupied instant is settled, its final statement is final. The settlement
 * says so with an event of kind `final_statement` at the move-out instant (deterministic
 * key: a re-run overwrites it) and tells the tenant through its contacts (one notify job
 * per event and channel, as for low balance). The statement itself is the API's
 * GET /api/v1/accounts/{account}/final-statement, computed by the core from the ledger.
 */
export async function announceFinalStatements(ctx: WorkerContext, site: Site, day: LocalDate): Promise<string[]> {
  const zone = zoneOf(site.timezone);
  const out = site.accounts.filter((a) => a.moveOut !== undefined && zone.dateOf(a.moveOut - 1) === day);
  for (const a of out) {
    const at = zone.format(a.moveOut!);
    const detail = `${a.id} moved out at ${at}: the final statement is ready (GET /api/v1/accounts/${a.id}/final-statement)`;
    await ctx.influx.write(eventLine(site.id, { kind: 'final_statement', account: a.id, detail, time: a.moveOut! }));
    await stampEventWrites(ctx.redis, ctx.keyPrefix, site.id, [a.id]); // the API's stored alerts (workers/api-stamps.ts)
    await enqueueNotifications(ctx, site, a, 'final_statement', a.moveOut!, `Final statement: ${site.name} ${a.id}`, `${a.name} (${a.id}): you moved out at ${at}. Your final electricity statement is ready: the charges up to then, your balance and deposit, and the refund or amount due.`);
    ctx.log.info({ site: site.id, account: a.id, moveOut: at }, 'final statement ready');
  }
  return out.map((a) => a.id);
}
