import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSiteYaml } from '../../core/index.ts';
import type { Site } from '../../core/index.ts';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));

/** A minimal valid site file whose meters are the given YAML meter entries (master/common roles, no tenants). */
export function siteYaml(id: string, meterLines: readonly string[]): string {
  return `site: { id: ${id}, name: Test, timezone: Asia/Shanghai, currency: CNY }
meters:
${meterLines.map((l) => `  - ${l}`).join('\n')}
accounts:
  - { id: A1, tariff: t1 }
pools:
  - { id: p, method: equal }
tariffs:
  - id: t1
    versions:
      - effective_from: 2026-01-01
        prices: { flat: "1" }
        schedule:
          - periods: [{ from: "00:00", to: "24:00", period: flat }]
`;
}

export function writeSite(dir: string, yaml: string): { path: string; site: Site } {
  const path = join(dir, 'site.yaml');
  writeFileSync(path, yaml);
  return { path, site: parseSiteYaml(yaml, path) };
}

/** Runs `submeter <args>` (through tsx, as bin/submeter.js does) and collects its output. */
export function runCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'cli/main.ts'), ...args], { cwd: REPO, env: { ...process.env, SUBMETER_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
