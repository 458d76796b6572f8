import type { Command } from 'commander';

interface CommonOpts {
  db?: string;
  redisPrefix?: string[];
}

/**
 * `submeter backup` / `submeter restore` (issue 16): a site's durable state (payments and
 * charges, statements and closed months, token hashes, the audit log, the site file, and
 * everything else it keeps in InfluxDB and Redis: lib/backup/registry.ts) in one archive,
 * and back into empty servers. InfluxDB and Redis come from the environment
 * (SUBMETER_INFLUX_URL/DB/TOKEN, SUBMETER_REDIS_URL), as for every other command.
 */
export function registerBackup(program: Command): void {
  const common = (c: Command) =>
    c
      .option('--db <name>', "a demo run's state (`submeter demo --db`): its database and key prefixes")
      .option('--redis-prefix <kind=prefix...>', 'key prefix of a kind when not the default (api=submeter:api:, workers=submeter)');

  common(
    program
      .command('backup')
      .description("write a site's durable state (InfluxDB and Redis) and its site file to one archive")
      .requiredOption('--site <file>', 'site file (YAML)')
      .option('--out <file>', 'archive to write (default submeter-<site>-<UTC time>.jsonl.gz)'),
  ).action(async (opts: CommonOpts & { site: string; out?: string }) => {
    const { readFileSync } = await import('node:fs');
    const { basename } = await import('node:path');
    const { loadSiteFile } = await import('../../lib/site-file.ts');
    const site = loadSiteFile(opts.site);
    const { influx, redis, prefixes } = await connect(opts);
    const { backupSite } = await import('../../lib/backup/site-backup.ts');
    const out = opts.out ?? `submeter-${site.id}-${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}Z.jsonl.gz`;
    try {
      const bar = await progress();
      const counts = await backupSite({ site: site.id, siteFile: { name: basename(opts.site), text: readFileSync(opts.site, 'utf8') }, influx, redis, prefixes, out, onProgress: bar.update });
      bar.stop();
      report('backup', counts);
      process.stdout.write(`${out}\n`);
    } finally {
      redis.disconnect();
    }
  });

  common(
    program
      .command('restore')
      .description('load a backup archive into empty servers (refuses a target that holds state of the site, unless --force)')
      .requiredOption('--archive <file>', 'archive written by submeter backup')
      .option('--site-out <file>', 'write the archived site file here (refuses to replace a different one unless --force)')
      .option('--force', 'overwrite state of the site already in the target'),
  ).action(async (opts: CommonOpts & { archive: string; siteOut?: string; force?: boolean }) => {
    const { existsSync, readFileSync, writeFileSync } = await import('node:fs');
    const { influx, redis, prefixes } = await connect(opts);
    const { restoreSite } = await import('../../lib/backup/site-backup.ts');
    try {
      const bar = await progress();
      const r = await restoreSite({ archive: opts.archive, influx, redis, prefixes, force: opts.force ?? false, onProgress: (what, n) => bar.update(what, n, n) });
      bar.stop();
      report(`restore of site ${r.site} (backup of ${r.created}) into InfluxDB ${influx.db}`, r.counts);
      if (opts.siteOut && r.siteFile) {
        if (existsSync(opts.siteOut) && readFileSync(opts.siteOut, 'utf8') !== r.siteFile.text && !opts.force) {
          throw Object.assign(new Error(`${opts.siteOut} exists and differs from the archived site file; pass --force to replace it`), { exitCode: 3 });
        }
        writeFileSync(opts.siteOut, r.siteFile.text);
        process.stderr.write(`site file ${r.siteFile.name} -> ${opts.siteOut}\n`);
      }
    } finally {
      redis.disconnect();
    }
  });
}

async function connect(opts: CommonOpts) {
  // The sections of the API and the workers register themselves on import.
  await import('../../api/index.ts');
  await import('../../workers/index.ts');
  const { readEnv } = await import('../../lib/env.ts');
  const { InfluxV1 } = await import('../../influx/client.ts');
  const { createRedis } = await import('../../lib/redis.ts');
  const { checkDemoDb, demoPrefixes, parsePrefixOptions } = await import('./demo-prefixes.ts');
  const env = readEnv();
  let db = env.SUBMETER_INFLUX_DB;
  let prefixes: Record<string, string> = {};
  if (opts.db) {
    checkDemoDb(opts.db);
    db = opts.db;
    const p = demoPrefixes(opts.db);
    prefixes = { api: p.api, workers: p.workers };
  }
  prefixes = { ...prefixes, ...parsePrefixOptions(opts.redisPrefix) };
  const influx = new InfluxV1({ url: env.SUBMETER_INFLUX_URL, db, token: env.SUBMETER_INFLUX_TOKEN, timeoutMs: 60_000 });
  // A single server or a Redis Cluster (SUBMETER_REDIS_URL with several nodes): a site's keys share one slot.
  const redis = createRedis(env.SUBMETER_REDIS_URL, { maxRetriesPerRequest: 3, lazyConnect: true });
  await redis.connect();
  return { influx, redis, prefixes };
}

/** A progress line on a terminal (long jobs show progress); silent otherwise. */
async function progress(): Promise<{ update: (what: string, done: number, total: number) => void; stop: () => void }> {
  if (!process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  return {
    update: (what, done, total) => process.stderr.write(`\r\x1b[K${what}: ${done}${total !== done ? `/${total}` : ''}`),
    stop: () => process.stderr.write('\r\x1b[K'),
  };
}

function report(what: string, counts: Record<string, number>): void {
  const parts = Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n.toLocaleString('en')}`);
  process.stderr.write(`${what}: ${parts.join(', ') || 'nothing'}\n`);
}
