import type { Command } from 'commander';

interface SiteOpt {
  site?: string;
  /** A demo run's state (`submeter demo --db`): its site file and the API's key prefix. */
  db?: string;
}

/**
 * `submeter token create|list|revoke`: API bearer tokens. The secret is printed once on
 * stdout (nothing else goes there) and only its sha256 is stored; every change is written
 * to the same audit log as the API's manager actions, with the OS user as the actor.
 */
export function registerToken(program: Command): void {
  const token = program.command('token').description('API bearer tokens (stored hashed; the secret is shown once)');

  const open = async (opts: SiteOpt) => {
    const { loadSiteFile } = await import('../../lib/site-file.ts');
    const { readEnv } = await import('../../lib/env.ts');
    const { createRedis } = await import('../../lib/redis.ts');
    const { RedisTokenStore } = await import('../../api/index.ts');
    const { RedisAuditLog } = await import('../../api/index.ts');
    const { userInfo } = await import('node:os');
    const { checkDemoDb, demoDir, demoPrefixes } = await import('./demo-prefixes.ts');
    let siteFile = opts.site;
    let prefix: string | undefined;
    if (opts.db) {
      // The demo's API keeps its tokens under its own prefix: a token made here works there.
      checkDemoDb(opts.db);
      prefix = demoPrefixes(opts.db).api;
      siteFile ??= `${demoDir(process.cwd(), opts.db)}/site.yaml`;
    }
    if (!siteFile) throw Object.assign(new Error('give --site <file> (or --db <name> for a demo run)'), { exitCode: 2 });
    const site = loadSiteFile(siteFile);
    const redis = createRedis(readEnv().SUBMETER_REDIS_URL, { maxRetriesPerRequest: 3, lazyConnect: true });
    await redis.connect();
    const audit = new RedisAuditLog(redis, prefix);
    const actor = `cli:${userInfo().username}`;
    return { site, redis, store: new RedisTokenStore(redis, prefix), log: (action: string, target: string, detail: Record<string, unknown>) => audit.append({ time: new Date().toISOString(), site: site.id, actor, action, target, detail }) };
  };
  const siteOptions = (c: Command) => c.option('--site <file>', 'site file (YAML)').option('--db <name>', "a demo run (`submeter demo --db`): its site file and the demo API's tokens");

  siteOptions(token.command('create').description('create a token and print it once on stdout'))
    .requiredOption('--role <role>', 'manager | viewer | tenant')
    .option('--account <id>', 'tenant tokens: the one account it may read')
    .option('--label <text>', 'a note for the token list (who holds it)')
    .action(async (opts: SiteOpt & { role: string; account?: string; label?: string }) => {
      const { validateNewToken } = await import('../../api/index.ts');
      const { site, redis, store, log } = await open(opts);
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

  siteOptions(token.command('list').description('list tokens of the site (ids, roles, accounts; never the secrets)'))
    .action(async (opts: SiteOpt) => {
      const { site, redis, store } = await open(opts);
      try {
        for (const r of await store.list(site.id)) process.stdout.write(`${JSON.stringify(r)}\n`);
      } finally {
        redis.disconnect();
      }
    });

  siteOptions(token.command('revoke').description('revoke a token by id'))
    .requiredOption('--id <id>', 'token id (from create or list)')
    .action(async (opts: SiteOpt & { id: string }) => {
      const { site, redis, store, log } = await open(opts);
      try {
        if (!(await store.revoke(site.id, opts.id))) throw Object.assign(new Error(`no token ${opts.id} on site ${site.id}`), { exitCode: 3 });
        await log('token.revoke', opts.id, {});
        process.stderr.write(`token ${opts.id} revoked\n`);
      } finally {
        redis.disconnect();
      }
    });
}
