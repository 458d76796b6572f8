import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { MODBUS_MAPS, parseSiteYaml } from '../core/index.ts';
import { demoSiteYaml } from './demo-site.ts';
import { mbpoll } from './test-support.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

describe('demo site', () => {
  it('is the example plus 40 tenants, valid under the site schema, every map used', () => {
    const site = parseSiteYaml(demoSiteYaml(), 'demo');
    expect(site.meters.filter((m) => m.role === 'tenant')).toHaveLength(43);
    expect(site.accounts).toHaveLength(43);
    // The example's meters and tariffs are there unchanged.
    for (const id of ['M0', 'T101', 'T102', 'T103', 'C-ELEV', 'C-LOBBY']) expect(site.meters.some((m) => m.id === id)).toBe(true);
    // Plus the grid's tariff as the utility's (issue 16: reconcile and Grafana's recovery panel on the demo).
    expect(site.tariffs.map((t) => t.id)).toEqual(['commercial', 'grid']);
    expect(site.utility).toEqual({ tariff: 'grid', markupCap: '0.2' });
    const maps = new Set(site.meters.map((m) => (m.connection && 'map' in m.connection ? m.connection.map : undefined)));
    for (const map of MODBUS_MAPS) expect(maps.has(map)).toBe(true);
    const rtu = site.meters.filter((m) => m.connection?.protocol === 'modbus-rtu');
    expect(rtu.length).toBeGreaterThanOrEqual(4);
    // Unit ids unique per TCP port and per bus.
    const keys = site.meters.map((m) => m.connection).filter((c) => c && c.protocol !== 'dlt645').map((c) => `${c!.port}/${(c as { unit: number }).unit}`);
    expect(new Set(keys).size).toBe(keys.length);
    // Deterministic.
    expect(demoSiteYaml()).toBe(demoSiteYaml());
    expect(parseSiteYaml(demoSiteYaml({ tenants: 5, tcpPort: 6000 }), 'demo').meters.filter((m) => m.connection?.protocol === 'modbus-tcp').every((m) => (m.connection as { port: number }).port === 6000)).toBe(true);
  });
});

describe('submeter sim', () => {
  it('serves the demo site until SIGTERM, reports its port, takes faults on stdin', async () => {
    const child = spawn(process.execPath, ['bin/submeter.js', 'sim', '--demo', '--tcp-port', '0', '--speed', '60', '--start', '2026-07-01T14:00:00+08:00', '--epoch', '2026-07-01T00:00:00+08:00', '--fault', 'T104=exception:4x1'], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, SUBMETER_LOG_LEVEL: 'warn' },
    });
    const lines: string[] = [];
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    let pending = '';
    child.stdout.on('data', (c: Buffer) => {
      pending += c.toString();
      const parts = pending.split('\n');
      pending = parts.pop()!;
      lines.push(...parts);
    });
    const waitLine = async (n: number) => {
      // Generous: tsx compiles the CLI on first start, slow on a loaded 2-core CI machine.
      for (let i = 0; i < 800 && lines.length < n; i++) await new Promise((r) => setTimeout(r, 50));
      if (lines.length < n) throw new Error(`submeter sim printed no line ${n}: ${stderr}`);
      return JSON.parse(lines[n - 1]);
    };
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      const info = await waitLine(1);
      expect(info.site).toBe('plaza-demo');
      const port = String(info.tcp[0].port);
      expect(info.tcp[0].meters).toContain('T104');
      // T104 is unit 100 (SDM120, function 04): the start-up fault answers 04 once.
      const read = () => mbpoll(['-m', 'tcp', '-p', port, '-a', '100', '-r', '72', '-0', '-c', '1', '-t', '3:float', '-B', '-o', '2', '127.0.0.1']);
      expect((await read()).stderr).toMatch(/Slave device or server failure/);
      const ok = await read();
      expect(ok.stderr).toBe('');
      expect(Number(ok.values.get(72))).toBeGreaterThan(0);
      child.stdin.write('fault T104 no-answer\n');
      child.stdin.write('read T104\n');
      const snap = await waitLine(2);
      expect(snap.meter).toBe('T104');
      expect(Number.isInteger(snap.wh)).toBe(true);
      const silent = await mbpoll(['-m', 'tcp', '-p', port, '-a', '100', '-r', '72', '-0', '-c', '1', '-t', '3', '-o', '0.3', '127.0.0.1']);
      expect(silent.stderr).toMatch(/timed out/i);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  }, 90_000);

  it('refuses a missing site file, naming it', async () => {
    const child = spawn(process.execPath, ['bin/submeter.js', 'sim', '--site', 'no/such/site.yaml'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/site file no\/such\/site\.yaml does not exist/);
  }, 60_000);
});
