import type { Command } from 'commander';
import type { BillingInputOptions } from './bill.ts';

/**
 * `submeter reconcile`: the master meter's utility cost against what tenants are charged,
 * each tenant's average price and the markup-cap flag (docs/billing.md section 8).
 * Exits 3 when a tenant is over the cap, so a cron job can alert on it.
 */
export function registerReconcile(program: Command): void {
  program
    .command('reconcile')
    .description("recovery reconciliation: utility cost of the master meter vs tenant charges, average prices, markup-cap flags (needs the site's utility key)")
    .requiredOption('--site <file>', 'site file (YAML) with utility: { tariff, markup_cap }')
    .requiredOption('--readings <file>', 'readings CSV: time,meter,kwh (any order)')
    .option('--payments <file>', 'payments CSV (balances do not change the reconciliation)')
    .requiredOption('--from <date>', 'first local date (YYYY-MM-DD)')
    .requiredOption('--to <date>', 'local date after the last one (YYYY-MM-DD)')
    .option('--format <format>', 'json (for scripts) or table (for people)', 'json')
    .action(async (opts: BillingInputOptions & { format: string }) => {
      if (opts.format !== 'json' && opts.format !== 'table') throw Object.assign(new Error(`--format: must be json or table, got ${JSON.stringify(opts.format)}`), { exitCode: 2 });
      const { loadBillingInputs } = await import('./bill.ts');
      const { settleRange, billFromSettlement, reconcile, Dec } = await import('../../core/index.ts');
      const { site, store, payments } = await loadBillingInputs(opts);
      if (!site.utility) throw Object.assign(new Error(`${opts.site}: utility: missing; add utility: { tariff: <tariff id>, markup_cap: 0.1 } to reconcile`), { exitCode: 2 });
      const settled = settleRange(site, store, opts.from, opts.to);
      const result = reconcile(settled, billFromSettlement(settled, payments));
      const { reconcileTable } = await import('../table.ts');
      process.stdout.write(opts.format === 'table' ? reconcileTable(result) : `${JSON.stringify(result, null, 2)}\n`);
      const over = result.accounts.filter((a) => a.over_cap);
      if (over.length > 0) {
        process.stderr.write(`submeter: ${over.length} account(s) above the cap (what the utility would charge for their own energy mix x ${new Dec(1).plus(result.markup_cap).toString()}): ${over.map((a) => `${a.account} ${a.amount} > ${a.cap_amount}`).join(', ')}\n`);
        process.exitCode = 3;
      }
    });
}
