import type { Command } from 'commander';

interface CollectOpts {
  site: string;
  spool?: string;
  test?: boolean;
  meter?: string[];
  pollInterval?: string;
  spoolMaxMb?: string;
  format?: string;
  timeSyncAt: string;
  timeSync: boolean;
  relay?: boolean;
  queuePrefix?: string;
  keyPrefix?: string;
}

export function registerCollect(program: Command): void {
  program
    .command('collect')
    .description('poll the meters of a site file into InfluxDB through a durable local spool')
    .requiredOption('--site <file>', 'site file (YAML)')
    .option('--spool <dir>', 'spool directory (default .run/spool/<site id>)')
    .option('--test', 'poll every meter once and print the samples on stdout (a table; --format lp for line protocol); write nowhere; exit 1 if a meter could not be read')
    .option('--format <table|lp>', 'with --test: a readable table, or the line protocol the collector would write', 'table')
    .option('--meter <ids...>', 'only these meters')
    .option('--poll-interval <ms>', "override every meter's poll interval (ms)")
    .option('--time-sync-at <HH:MM>', 'local time of the daily DL/T 645 clock check and broadcast time sync', '03:30')
    .option('--no-time-sync', 'no DL/T 645 clock checks or broadcast time sync')
    .option('--spool-max-mb <n>', 'bound of the spool: past it new samples are refused and spool_full is raised', '256')
    .option('--relay', "carry out the workers' relay commands (prepaid enforcement) on this collector's buses; needs SUBMETER_REDIS_URL and the control secrets (docs/enforcement.md)")
    .option('--queue-prefix <p>', 'BullMQ prefix of the workers (with --relay)', 'bull')
    .option('--key-prefix <p>', "Redis key prefix of the workers: with --relay, and with SUBMETER_REDIS_URL set, the API's site reload (published there) reloads the collector too", 'submeter')
    .action(async (opts: CollectOpts) => {
      const { loadSiteFile } = await import('../../lib/site-file.ts');
      const { createLogger } = await import('../../lib/logger.ts');
      const { sampleLine } = await import('../../influx/lines.ts');
      const site = loadSiteFile(opts.site);
      const log = createLogger('collector');
      if (opts.test) {
        if (opts.format !== 'table' && opts.format !== 'lp') throw Object.assign(new Error(`--format: expected table or lp, got ${JSON.stringify(opts.format)}`), { exitCode: 2 });
        const { collectOnce } = await import('../../collector/index.ts');
        const { samples, errors } = await collectOnce(site, { ...(opts.meter ? { meters: opts.meter } : {}), log });
        const { siteMultiplier } = await import('../../collector/index.ts');
        const multiplier = siteMultiplier(() => site);
        if (opts.format === 'lp') {
          process.stdout.write(samples.map((s) => sampleLine(site.id, s, multiplier(s.meter, s.time)) + '\n').join(''));
          for (const [meter, err] of Object.entries(errors)) process.stderr.write(`submeter collect --test: ${meter}: ${err}\n`);
        } else {
          const { sampleTable } = await import('../../collector/index.ts');
          process.stdout.write(sampleTable(samples, errors, multiplier));
        }
        if (Object.keys(errors).length > 0) {
          process.stderr.write(`submeter collect --test: ${Object.keys(errors).length} of ${samples.length + Object.keys(errors).length} meters could not be read\n`);
          process.exitCode = 1;
        }
        return;
      }
      let pollIntervalMs: number | undefined;
      if (opts.pollInterval !== undefined) {
        pollIntervalMs = Number(opts.pollInterval);
        if (!Number.isInteger(pollIntervalMs) || pollIntervalMs <= 0) throw Object.assign(new Error(`--poll-interval: must be a positive whole number of ms, got ${JSON.stringify(opts.pollInterval)}`), { exitCode: 2 });
      }
      if (!/^([01]\d|2[0-3]):[0-5]\d$/.test(opts.timeSyncAt)) throw Object.assign(new Error(`--time-sync-at: expected a local time HH:MM, got ${JSON.stringify(opts.timeSyncAt)}`), { exitCode: 2 });
      const spoolMaxMb = Number(opts.spoolMaxMb ?? '256');
      if (!(spoolMaxMb > 0) || !Number.isFinite(spoolMaxMb)) throw Object.assign(new Error(`--spool-max-mb: must be a positive number, got ${JSON.stringify(opts.spoolMaxMb)}`), { exitCode: 2 });
      const { readEnv } = await import('../../lib/env.ts');
      const { startCollector } = await import('../../collector/index.ts');
      const env = readEnv();
      const collector = await startCollector({
        site,
        // Edits reach the running collector (file watch, SIGHUP, and the API's reload when a
        // Redis URL is configured): e.g. a replaced meter's new address.
        siteFile: opts.site,
        ...(process.env.SUBMETER_REDIS_URL ? { reloadChannel: { redisUrl: env.SUBMETER_REDIS_URL, keyPrefix: opts.keyPrefix ?? 'submeter' } } : {}),
        spoolDir: opts.spool ?? `.run/spool/${site.id}`,
        influx: { url: env.SUBMETER_INFLUX_URL, db: env.SUBMETER_INFLUX_DB, ...(env.SUBMETER_INFLUX_TOKEN ? { token: env.SUBMETER_INFLUX_TOKEN } : {}) },
        ...(opts.meter ? { meters: opts.meter } : {}),
        ...(pollIntervalMs ? { pollIntervalMs } : {}),
        spool: { maxBytes: Math.round(spoolMaxMb * 1024 * 1024) },
        timeSyncAt: opts.timeSync ? opts.timeSyncAt : false,
        log,
        ...(opts.relay ? { relay: { redisUrl: env.SUBMETER_REDIS_URL, queuePrefix: opts.queuePrefix, keyPrefix: opts.keyPrefix } } : {}),
      });
      const hup = () => void collector.reload();
      process.on('SIGHUP', hup);
      await new Promise<void>((resolve) => {
        const stop = (sig: string) => {
          log.info({ signal: sig }, 'stopping');
          resolve();
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
      process.off('SIGHUP', hup);
      await collector.stop();
    });
}
