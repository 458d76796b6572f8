import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// The servers are started by scripts/services.sh (make test does it first); the resolved
// URLs live in .run/services.env. Tests read them from the environment.
export default function setup(): void {
  const envFile = fileURLToPath(new URL('../.run/services.env', import.meta.url));
  if (!existsSync(envFile)) return;
  for (const line of readFileSync(envFile, 'utf8').split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m && process.env[m[1]] === undefined) process.env[m[1]] = m[2];
  }
}
