import type { Command } from 'commander';

/**
 * `submeter workers`: runs the rollup, settlement, balance, alert and notify workers for
 * one or more sites until SIGINT/SIGTERM (then finishes the jobs in flight). Start it on
 * as many machines as needed: they share the queues (docs/scaling.md). SMTP for tenant
 * emails from SUBMETER_SMTP_HOST, SUBMETER_SMTP_PORT, SUBMETER_SMTP_FROM (and
 * SUBMETER_SMTP_USER / SUBMETER_SMTP_PASS); without a host, email contacts are skipped.
 */
export function registerWorkers(program: Command): void {
  program
    .command('workers')
    .description('run the live pipeline: TOU rollup, daily settlement, balances, alerts, notifications')
    .requiredOption('--site <file...>', 'site file(s) (YAML)')
    .option('--queues <list>', 'comma-separated queues this process works on (rollup,settlement,balance,alerts,notify)')
    .option('--concurrency <n>', 'jobs in flight per queue', '2')
    .option('--no-schedulers', 'do not create or update the schedulers (another process does)')
    .action(async (opts: { site: string[]; queues?: string; concurrency: string; schedulers: boolean }) => {
      const { z } = await import('zod');
      const { loadSiteFile } = await import('../../lib/site-file.ts');
      const { readEnv } = await import('../../lib/env.ts');
      const { startWorkers } = await import('../../workers/index.ts');
      const { QUEUE } = await import('../../workers/index.ts');
      const env = readEnv();
      const sites = opts.site.map((f) => loadSiteFile(f));
      const names = Object.values(QUEUE) as string[];
      const queues = opts.queues?.split(',').map((q) => q.trim());
      for (const q of queues ?? []) if (!names.includes(q)) throw Object.assign(new Error(`--queues: unknown queue ${JSON.stringify(q)} (known: ${names.join(', ')})`), { exitCode: 2 });
      const concurrency = Number(opts.concurrency);
      if (!Number.isInteger(concurrency) || concurrency < 1) throw Object.assign(new Error(`--concurrency must be a positive integer, got ${opts.concurrency}`), { exitCode: 2 });
      const smtp = z
        .object({
          SUBMETER_SMTP_HOST: z.string().min(1),
          SUBMETER_SMTP_PORT: z.coerce.number().int().min(1).max(65535).default(25),
          SUBMETER_SMTP_FROM: z.string().includes('@').default('submeter@localhost'),
          SUBMETER_SMTP_USER: z.string().optional(),
          SUBMETER_SMTP_PASS: z.string().optional(),
        })
        .safeParse(process.env);
      const running = await startWorkers({
        sites,
        // Edits reach the running workers (file watch, SIGHUP, the API's reload route).
        siteFiles: opts.site,
        redisUrl: env.SUBMETER_REDIS_URL,
        influx: { url: env.SUBMETER_INFLUX_URL, db: env.SUBMETER_INFLUX_DB, token: env.SUBMETER_INFLUX_TOKEN },
        queues: queues as never,
        concurrency,
        schedulers: opts.schedulers,
        notifier: smtp.success
          ? {
              smtp: {
                host: smtp.data.SUBMETER_SMTP_HOST,
                port: smtp.data.SUBMETER_SMTP_PORT,
                from: smtp.data.SUBMETER_SMTP_FROM,
                auth: smtp.data.SUBMETER_SMTP_USER ? { user: smtp.data.SUBMETER_SMTP_USER, pass: smtp.data.SUBMETER_SMTP_PASS ?? '' } : undefined,
              },
            }
          : {},
      });
      const hup = () => void running.reloadSites().then((r) => process.stderr.write(r.map((x) => `submeter workers: ${x.file}: ${x.outcome}${x.reasons.length ? `: ${x.reasons.join('; ')}` : ''}\n`).join('')));
      process.on('SIGHUP', hup);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      process.off('SIGHUP', hup);
      await running.close();
    });
}
