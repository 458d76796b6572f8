import type { Command } from 'commander';

/**
 * `submeter api`: the HTTP API and the tenant page for one site. Validates the site file
 * before listening (exit 2 with every problem); stops cleanly on SIGINT/SIGTERM.
 */
export function registerApi(program: Command): void {
  program
    .command('api')
    .description('serve the API (OpenAPI at /openapi.json) and the tenant page for one site')
    .requiredOption('--site <file>', 'site file (YAML)')
    .option('--port <n>', 'TCP port (0 = any free port)', '8080')
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .action(async (opts: { site: string; port: string; host: string }) => {
      const port = Number(opts.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw Object.assign(new Error(`--port must be 0..65535, got ${opts.port}`), { exitCode: 2 });
      const { startApi } = await import('../../api/index.ts');
      const api = await startApi({ siteFile: opts.site, port, host: opts.host });
      process.stderr.write(`submeter api: ${api.url} (tenant page ${api.url}/, OpenAPI ${api.url}/openapi.json)\n`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await api.close();
    });
}
