import type { Command } from 'commander';

/**
 * `submeter final-statement`: the final statement of an account that moved out (billing.md
 * section 11, rule 8) from readings and payments files, as JSON (the API serves the same
 * from the live pipeline, also as CSV and zh/en HTML).
 */
export function registerFinalStatement(program: Command): void {
  program
    .command('final-statement')
    .description('final statement of an account with a move_out: charges to the move-out instant, balance, deposit, refund or amount due (JSON)')
    .requiredOption('--site <file>', 'site file (YAML)')
    .requiredOption('--readings <file>', 'readings CSV: time,meter,kwh')
    .option('--payments <file>', 'payments CSV: time,account,amount,reference[,kind]')
    .requiredOption('--account <id>', 'the account that moved out')
    .action(async (opts: { site: string; readings: string; payments?: string; account: string }) => {
      const { computeFinalStatement, finalStatementJson } = await import('../../core/index.ts');
      const { loadSiteFile } = await import('../../lib/site-file.ts');
      const { readReadingsFile, readPaymentsFile } = await import('./bill.ts');
      const site = loadSiteFile(opts.site);
      const account = site.accounts.find((a) => a.id === opts.account);
      if (!account) throw Object.assign(new Error(`--account: no account ${JSON.stringify(opts.account)} in ${opts.site}`), { exitCode: 2 });
      if (account.moveOut === undefined) throw Object.assign(new Error(`--account: ${opts.account} has no move_out in ${opts.site}: no final statement`), { exitCode: 2 });
      const store = await readReadingsFile(site, opts.readings, opts.site);
      const payments = opts.payments ? await readPaymentsFile(opts.payments, site) : [];
      const out = finalStatementJson(computeFinalStatement(site, store, payments, opts.account));
      await new Promise<void>((resolve, reject) => process.stdout.write(out, (err) => (err ? reject(err) : resolve())));
    });
}
