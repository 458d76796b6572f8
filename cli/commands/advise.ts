import type { Command } from 'commander';
import { DEFAULT_SHIFT_SHARE } from '../../core/index.ts';
import type { BillingInputOptions } from './bill.ts';

/** `submeter advise`: load-shift advice per account (docs/billing.md section 9) as JSON on stdout. */
export function registerAdvise(program: Command): void {
  program
    .command('advise')
    .description('load-shift advice per account: energy by TOU period, typical day, saving if peak moved to valley, night base load')
    .requiredOption('--site <file>', 'site file (YAML)')
    .requiredOption('--readings <file>', 'readings CSV: time,meter,kwh (any order)')
    .requiredOption('--from <date>', 'first local date (YYYY-MM-DD)')
    .requiredOption('--to <date>', 'local date after the last one (YYYY-MM-DD)')
    .option('--shift-share <share>', 'share of sharp and peak energy assumed movable (0..1)', DEFAULT_SHIFT_SHARE)
    .option('--format <format>', 'json (for scripts) or table (for people)', 'json')
    .action(async (opts: BillingInputOptions & { shiftShare: string; format: string }) => {
      const { computeAdvice, shiftShareOf } = await import('../../core/index.ts');
      // The core validates the share (one rule); a bad one is a usage error (exit 2), before any file is read.
      try {
        shiftShareOf(opts.shiftShare);
      } catch (err) {
        throw Object.assign(new Error(`--${(err as Error).message}`), { exitCode: 2 });
      }
      if (opts.format !== 'json' && opts.format !== 'table') throw Object.assign(new Error(`--format: must be json or table, got ${JSON.stringify(opts.format)}`), { exitCode: 2 });
      const { loadBillingInputs } = await import('./bill.ts');
      const { site, store } = await loadBillingInputs(opts);
      const advice = computeAdvice(site, store, opts.from, opts.to, { shiftShare: opts.shiftShare });
      const { adviceTable } = await import('../table.ts');
      process.stdout.write(opts.format === 'table' ? adviceTable(advice, new Map(site.accounts.map((a) => [a.id, a.name]))) : `${JSON.stringify(advice, null, 2)}\n`);
    });
}
