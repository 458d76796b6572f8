import type { Command } from 'commander';

interface SiteOpt {
  site: string;
}

/**
 * `submeter token create|list|revoke`: API bearer tokens. The secret is printed once on
 * stdout (nothing else goes there) and only its sha256 is stored; every change is written
 * to the same audit log as the API's manager actions, with the OS user as the actor.
 */
export function registerToken(program: Command): void {
  const token = program.command('token').description('API bearer tokens (stored hashed; the secret is shown once)');

  const open = async (siteFile: string) => {
    const { loadSiteFile } = await import('../../lib/site-file.ts');
    const { readEnv } = await import('../../lib/env.ts');
    const { createRedis } = await import('../../lib/redis.ts');
    const { RedisTokenStore } = await import('../../api/index.ts');
    const { RedisAuditLog } = await import('../../api/index.ts');
    const { userInfo } = await import('node:os');
    const site = loadSiteFile(siteFile);
    const redis = createRedis(readEnv().SUBMETER_REDIS_URL, { maxRetriesPerRequest: 3, lazyConnect: true });
    await redis.connect();
    const audit = new RedisAuditLog(redis);
    const actor = `cli:${userInfo().username}`;
    return { site, redis, store: new RedisTokenStore(redis), log: (action: string, target: string, detail: Record<string, unknown>) => audit.append({ time: new Date().toISOString(), site: site.id, actor, action, target, detail }) };
  };

  token
    .command('create')
    .description('create a token and print it once on stdout')
    .requiredOption('--site <file>', 'site file (YAML)')
    .requiredOption('--role <role>', 'manager | viewer | tenant')
    .option('--account <id>', 'tenant tokens: the one account it may read')
    .option('--label <text>', 'a note for the token list (who holds it)')
    .action(async (opts: SiteOpt & { role: string; account?: string; label?: string }) => {
      const { validateNewToken } = await import('../../api/index.ts');
      const { site, redis, store, log } = await open(opts.site);
      try {
        const input = { site: site.id, role: opts.role as 'manager', account: opts.account, label: opts.label };
        const problem = validateNewToken(input);
        if (problem) throw Object.assign(new Error(problem), { exitCode: 2 });
        if (opts.account && !site.accounts.some((a) => a.id === opts.account)) throw Object.assign(new Error(`no account ${opts.account} in site ${site.id}`), { exitCode: 2 });
        const { token: secret, record } = await store.create(input);
        await log('token.create', record.id, { role: record.role, ...(record.account ? { account: record.account } : {}), ...(record.label ? { label: record.label } : {}) });
        process.stdout.write(`${secret}\n`);
        process.stderr.write(`token ${record.id}: ${record.role}${record.account ? ` ${record.account}` : ''} on ${site.id} (shown once; only its sha256 is stored)\n`);
      } finally {
        redis.disconnect();
      }
    });

  token
    .command('list')
    .description('list tokens of the site (ids, roles, accounts; never the secrets)')
    .requiredOption('--site <file>', 'site file (YAML)')
    .action(async (opts: SiteOpt) => {
      const { site, redis, store } = await open(opts.site);
      try {
        for (const r of await store.list(site.id)) process.stdout.write(`${JSON.stringify(r)}\n`);
      } finally {
        redis.disconnect();
      }
    });

  token
    .command('revoke')
    .description('revoke a token by id')
    .requiredOption('--site <file>', 'site file (YAML)')
    .requiredOption('--id <id>', 'token id (from create or list)')
    .action(async (opts: SiteOpt & { id: string }) => {
      const { site, redis, store, log } = await open(opts.site);
      try {
        if (!(await store.revoke(site.id, opts.id))) throw Object.assign(new Error(`no token ${opts.id} on site ${site.id}`), { exitCode: 3 });
        await log('token.revoke', opts.id, {});
        process.stderr.write(`token ${opts.id} revoked\n`);
      } finally {
        redis.disconnect();
      }
    });
}
