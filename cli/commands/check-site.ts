import type { Command } from 'commander';

export function registerCheckSite(program: Command): void {
  program
    .command('check-site')
    .description('validate a site file and print a summary (exit 2 with every problem if invalid)')
    .requiredOption('--site <file>', 'site file (YAML)')
    .action(async (opts: { site: string }) => {
      const { loadSiteFile } = await import('../../lib/site-file.ts');
      const site = loadSiteFile(opts.site);
      const roles = { master: 0, tenant: 0, common: 0 };
      for (const m of site.meters) roles[m.role]++;
      process.stdout.write(
        `${opts.site}: site ${site.id} (${site.timezone}): ${site.meters.length} meters (${roles.master} master, ${roles.tenant} tenant, ${roles.common} common), ${site.accounts.length} accounts, ${site.pools.length} pools, ${site.tariffs.length} tariffs\n`,
      );
    });
}
