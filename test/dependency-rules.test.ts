import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The architecture rules of .dependency-cruiser.cjs (issue 10) must catch what they are for:
 * a copy of the repository's config and tsconfig run by the real depcruise on a small tree
 * of files, each importing something the rules forbid, and a clean tree that passes.
 */
const repo = join(import.meta.dirname, '..');
const run = promisify(execFile);
let dir: string;

const files: Record<string, string> = {
  'core/index.ts': "export { x } from './bill/run.ts';\n",
  'core/bill/run.ts': 'export const x = 1;\n',
  'workers/index.ts': "export { y } from './settlement.ts';\n",
  'workers/settlement.ts': 'export const y = 2;\n',
  'collector/index.ts': "export type { Sample } from './sample.ts';\n",
  'collector/sample.ts': 'export interface Sample { readonly meter: string }\n',
  'influx/schema.ts': "export const M = { reading: 'reading' } as const;\n",
  'api/good.ts': "import { x } from '../core/index.ts';\nimport { y } from '../workers/index.ts';\nexport const z = x + y;\n",
};
const bad: Record<string, { text: string; rule: string }> = {
  'api/bill-copy.ts': { text: "import { x } from '../core/bill/run.ts';\nexport const a = x;\n", rule: 'apps-import-core-through-index: api/bill-copy.ts → core/bill/run.ts' },
  'api/worker-internals.ts': { text: "import { y } from '../workers/settlement.ts';\nexport const b = y;\n", rule: 'no-app-internals: api/worker-internals.ts → workers/settlement.ts' },
  'influx/lines.ts': { text: "import type { Sample } from '../collector/sample.ts';\nexport const n = (s: Sample) => s.meter;\n", rule: 'adapters-import-no-app: influx/lines.ts → collector/sample.ts' },
  'workers/points.ts': { text: "import { Point } from '@influxdata/influxdb-client';\nexport const p = new Point('x');\n", rule: 'line-protocol-only-in-influx: workers/points.ts → ' },
};

function write(path: string, text: string): void {
  mkdirSync(dirname(join(dir, path)), { recursive: true });
  writeFileSync(join(dir, path), text);
}

async function depcruise(): Promise<{ code: number; out: string }> {
  const bin = join(repo, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');
  try {
    const r = await run(process.execPath, [bin, '--config', '.dependency-cruiser.cjs', 'core', 'workers', 'collector', 'api', 'influx'], {
      cwd: dir,
      // CI forces colour (FORCE_COLOR): the rule names must be matched in plain text.
      env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
    });
    return { code: 0, out: r.stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, out: e.stdout };
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'submeter-depcruise-'));
  copyFileSync(join(repo, '.dependency-cruiser.cjs'), join(dir, '.dependency-cruiser.cjs'));
  copyFileSync(join(repo, 'tsconfig.json'), join(dir, 'tsconfig.json'));
  symlinkSync(join(repo, 'node_modules'), join(dir, 'node_modules'));
  for (const [path, text] of Object.entries(files)) write(path, text);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('dependency-cruiser rules', () => {
  it('pass a tree that imports core and other apps only through their index.ts', async () => {
    const r = await depcruise();
    expect(r.out).toContain('no dependency violations found');
    expect(r.code).toBe(0);
  }, 60_000);

  it('fail an API file importing core/bill/run.ts or a worker module, an adapter importing an app, a Point built outside influx/', async () => {
    for (const [path, b] of Object.entries(bad)) write(path, b.text);
    const r = await depcruise();
    expect(r.code).not.toBe(0);
    for (const b of Object.values(bad)) expect(r.out).toContain(`error ${b.rule}`);
    expect(r.out).not.toContain('api/good.ts');
  }, 60_000);
});
