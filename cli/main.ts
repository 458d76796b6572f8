import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { BillingInputError, SiteFileError } from '../core/index.ts';
import { commands } from './commands/index.ts';
import { storeError } from './store-errors.ts';

/**
 * The `submeter` command. Command output goes to stdout; diagnostics and logs to stderr.
 * Each subcommand lives in cli/commands/<name>.ts and is loaded only when used.
 */
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command('submeter')
  .description('prepaid sub-metering and time-of-use billing')
  .version(version, '-V, --version', 'print the version of submeter')
  .showHelpAfterError()
  .exitOverride();

for (const c of commands) c(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  // Bad input (site file, readings, payments): exit 2 with file, line and field.
  if (err instanceof SiteFileError || err instanceof BillingInputError) {
    process.stderr.write(`submeter: ${err.message}\n`);
    process.exit(2);
  }
  const e = storeError(err) as Error & { exitCode?: number };
  process.stderr.write(`submeter: ${e.message ?? String(e)}\n`);
  if (process.env.SUBMETER_DEBUG) process.stderr.write(`${e.stack}\n${e.cause instanceof Error ? `cause: ${e.cause.stack}\n` : ''}`);
  process.exit(e.exitCode ?? 1);
}
