import type { Command } from 'commander';

export function registerImport(program: Command): void {
  program
    .command('import')
    .description('load a readings CSV (time,meter,kwh) into InfluxDB; bad rows are reported with line numbers and skipped')
    .requiredOption('--site <file>', 'site file (YAML)')
    .requiredOption('--readings <file>', 'readings CSV (billing.md section 1)')
    .option('--batch <rows>', 'rows per validated batch and write', '5000')
    .option('--no-resettle', 'do not ask the workers to settle the affected past days again')
    .option('--queue-prefix <prefix>', "the workers' BullMQ prefix", 'bull')
    .option('--key-prefix <prefix>', "the workers' Redis key prefix", 'submeter')
    .action(async (opts: { site: string; readings: string; batch: string; resettle: boolean; queuePrefix: string; keyPrefix: string }) => {
      const { statSync } = await import('node:fs');
      const { SingleBar, Presets } = (await import('cli-progress')).default;
      const { loadSiteFile } = await import('../../lib/site-file.ts');
      const { readEnv } = await import('../../lib/env.ts');
      const { InfluxV1 } = await import('../../influx/client.ts');
      const { importReadings } = await import('../../collector/index.ts');
      const batchRows = Number(opts.batch);
      if (!Number.isInteger(batchRows) || batchRows < 1) throw Object.assign(new Error(`--batch: must be a positive whole number, got ${JSON.stringify(opts.batch)}`), { exitCode: 2 });
      const site = loadSiteFile(opts.site);
      let size: number;
      try {
        size = statSync(opts.readings).size;
      } catch (err) {
        const { fileProblem } = await import('../../lib/site-file.ts');
        throw Object.assign(new Error(fileProblem('readings file', opts.readings, err)), { exitCode: 2 });
      }
      const env = readEnv();
      const influx = new InfluxV1({ url: env.SUBMETER_INFLUX_URL, db: env.SUBMETER_INFLUX_DB, ...(env.SUBMETER_INFLUX_TOKEN ? { token: env.SUBMETER_INFLUX_TOKEN } : {}) });
      await influx.createDatabase();
      // Progress on stderr (stdout stays for the summary); cli-progress draws only on a TTY.
      const bar = new SingleBar({ stream: process.stderr, format: 'import [{bar}] {percentage}% | {rows} rows written | {eta_formatted} left', hideCursor: true }, Presets.shades_classic);
      bar.start(size, 0, { rows: 0 });
      let result;
      try {
        result = await importReadings(site, opts.readings, influx, { batchRows, onProgress: (bytes, rows) => bar.update(Math.min(bytes, size), { rows }) });
        bar.update(size, { rows: result.written });
      } finally {
        bar.stop();
      }
      for (const p of result.problems) process.stderr.write(`${opts.readings}:${p.line}: ${p.message}\n`);
      if (result.skipped > result.problems.length) process.stderr.write(`... and ${result.skipped - result.problems.length} more\n`);
      const unknown = Object.entries(result.unknownMeters);
      if (unknown.length > 0) process.stderr.write(`unknown meters (not in ${opts.site}): ${unknown.map(([m, n]) => `${m} (${n} rows)`).join(', ')}\n`);
      process.stdout.write(`${opts.readings}: ${result.written} rows written to ${influx.db}, ${result.skipped} skipped\n`);
      if (opts.resettle && result.days.length > 0) await resettle(site, result.days, `import of ${opts.readings}`, env.SUBMETER_REDIS_URL, { queues: opts.queuePrefix, keys: opts.keyPrefix });
      if (result.stoppedAtLine !== undefined) {
        process.stderr.write(`submeter import: stopped: rows from line ${result.stoppedAtLine} on were not written (InfluxDB unavailable); re-run to finish, rows already written are overwritten, not duplicated\n`);
        process.exitCode = 1;
      } else if (result.skipped > 0) process.exitCode = 1;
    });
}

/**
 * Old readings change days the workers may have settled already (issue 4, late data): ask
 * them to settle those days again, so the change shows as adjustment lines with the
 * reason. A reading on day d moves the intervals into d and out of it, so d-1..d+1 are
 * affected; today is settled by the workers' own schedule.
 */
async function resettle(site: import('../../core/index.ts').Site, days: readonly string[], reason: string, redisUrl: string, prefixes: { queues: string; keys: string }): Promise<void> {
  const { addDays, zoneOf } = await import('../../core/index.ts');
  const { openQueues, closeQueues, requestResettlements } = await import('../../workers/index.ts');
  const { createRedis, redact } = await import('../../lib/redis.ts');
  const today = zoneOf(site.timezone).dateOf(Date.now());
  const affected = new Set<string>();
  for (const d of days) for (const x of [addDays(d, -1), d, addDays(d, 1)]) if (x < today) affected.add(x);
  if (affected.size === 0) return;
  const list = [...affected].sort();
  const redis = createRedis(redisUrl, { maxRetriesPerRequest: null, lazyConnect: true, connectTimeout: 3000 });
  try {
    await redis.connect();
    const queues = openQueues(redis, prefixes.queues);
    try {
      // Recorded per site and settled in day order by the site's one settlement job.
      await requestResettlements({ queues, redis, keyPrefix: prefixes.keys }, site.id, list, reason);
    } finally {
      await closeQueues(queues);
    }
    process.stdout.write(`asked the workers to settle ${list.length} day(s) again: ${list[0]} .. ${list[list.length - 1]}\n`);
  } catch (err) {
    process.stderr.write(`submeter import: could not reach Redis at ${redact(redisUrl)} (${(err as Error).message}); settle these days again when the workers run: ${list.join(' ')}\n`);
    process.exitCode = 1;
  } finally {
    redis.disconnect();
  }
}
