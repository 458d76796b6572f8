import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const repo = join(import.meta.dirname, '../..');
mkdirSync(join(repo, '.run/tmp'), { recursive: true });
const tmp = mkdtempSync(join(repo, '.run/tmp/check-site-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const example = readFileSync(join(repo, 'examples/site.example.yaml'), 'utf8');

async function cli(args: string[], timeout = 20_000): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [join(repo, 'bin/submeter.js'), ...args], { cwd: repo, timeout });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('submeter check-site on files that are not site files (issue 11)', () => {
  it('/dev/zero: refused at once (the read is bounded), exit 2', async () => {
    const t0 = Date.now();
    const r = await cli(['check-site', '--site', '/dev/zero']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('submeter: site file /dev/zero is larger than 16 MiB; is it the right file?\n');
    expect(Date.now() - t0).toBeLessThan(15_000);
  });

  it('a missing file and a directory are named in words, not as a bare ENOENT', async () => {
    const missing = await cli(['check-site', '--site', join(tmp, 'nope.yaml')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(`submeter: site file ${join(tmp, 'nope.yaml')} does not exist\n`);
    const dir = await cli(['check-site', '--site', tmp]);
    expect(dir.stderr).toBe(`submeter: site file ${tmp} is a directory, not a file\n`);
  });

  it('a YAML syntax error names file and line; an alias bomb names the file; exit 2', async () => {
    const syntax = join(tmp, 'syntax.yaml');
    writeFileSync(syntax, example.replace('  normal_rate: 0.03', '  normal_rate: [0.03'));
    const s = await cli(['check-site', '--site', syntax]);
    expect(s.code).toBe(2);
    expect(s.stderr).toMatch(new RegExp(`${syntax.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:\\d+: \\(top level\\): `));
    const bomb = join(tmp, 'bomb.yaml');
    writeFileSync(bomb, `${example}\nx1: &a [q, q, q, q, q, q, q, q, q, q]\nx2: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nx3: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nx4: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n`);
    const b = await cli(['check-site', '--site', bomb]);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain(`${bomb}: (top level): too many YAML aliases`);
  });

  it('a file that is not UTF-8 names its line', async () => {
    const latin = join(tmp, 'latin1.yaml');
    writeFileSync(latin, Buffer.concat([Buffer.from(example.replace('name: Plaza (example)', 'name: Caf')), Buffer.from([0xe9, 10])]));
    const r = await cli(['check-site', '--site', latin]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/latin1\.yaml:\d+: not valid UTF-8 text/);
  });
});
