import type { Command } from 'commander';

export function registerCheckSite(program: Command): void {
  program
    .command('check-site')
    .description('validate a site file and print a summary (exit 2 with every problem if invalid); with --against, what the change re-settles')
    .requiredOption('--site <file>', 'site file (YAML)')
    .option('--against <old>', 'the site file in force now: print each change and the settled days it touches (billing.md section 11)')
    .action(async (opts: { site: string; against?: string }) => {
      const { loadSiteFile } = await import('../../lib/site-file.ts');
      const site = loadSiteFile(opts.site);
      const roles = { master: 0, tenant: 0, common: 0 };
      for (const m of site.meters) roles[m.role]++;
      process.stdout.write(
        `${opts.site}: site ${site.id} (${site.timezone}): ${site.meters.length} meters (${roles.master} master, ${roles.tenant} tenant, ${roles.common} common), ${site.accounts.length} accounts, ${site.pools.length} pools, ${site.tariffs.length} tariffs\n`,
      );
      if (opts.against === undefined) return;
      const { diffSites, describeChanges } = await import('../../core/index.ts');
      const diff = diffSites(loadSiteFile(opts.against), site);
      if (diff.refused) throw Object.assign(new Error(`${opts.site} cannot replace ${opts.against} in a running pipeline: ${diff.refused}`), { exitCode: 2 });
      const lines = describeChanges(diff);
      process.stdout.write(lines.length === 0 ? `against ${opts.against}: no change touches a settled day\n` : `against ${opts.against}: the workers will settle again (revision lines with these reasons):\n${lines.map((l) => `  ${l}\n`).join('')}`);
    });
}
