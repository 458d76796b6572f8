import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSiteYaml } from '../../core/site/index.ts';
import { dlt645Handler } from '../../sim/dlt645/handler.ts';
import { startSimulator } from '../../sim/simulator.ts';
import type { Simulator } from '../../sim/simulator.ts';
import { openPtyPair } from '../../sim/test-support.ts';
import type { PtyPair } from '../../sim/test-support.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const dir = `${root}.run/tmp/relay-cli-${randomBytes(4).toString('hex')}`;

let pty: PtyPair;
let sim: Simulator;

const siteYaml = (ptyPath: string, tcpPort: number) => `
site: { id: relay-cli, timezone: Asia/Shanghai }
meters:
  - { id: M0, role: master }
  - { id: D, role: tenant, account: A1, relay: plain, connection: { protocol: dlt645, port: ${ptyPath}, parity: none, address: "000000001102", timeout_ms: 3000 } }
  - { id: E, role: tenant, account: A1, relay: esam, connection: { protocol: dlt645, port: ${ptyPath}, parity: none, address: "000000001103" } }
  - { id: T, role: tenant, account: A1, relay: plain, connection: { protocol: modbus-tcp, host: 127.0.0.1, port: ${tcpPort}, unit: 7, map: dds238 } }
accounts:
  - { id: A1, tariff: t }
tariffs:
  - { id: t, versions: [{ effective_from: 2026-01-01, prices: { flat: "1.000000" }, schedule: [{ periods: [{ from: "00:00", to: "24:00", period: flat }] }] }] }
`;

async function relay(env: Record<string, string>, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [`${root}bin/submeter.js`, 'relay', '--site', `${dir}/site.yaml`, ...args], { env: { ...process.env, SUBMETER_LOG_LEVEL: 'warn', ...env } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

beforeAll(async () => {
  mkdirSync(dir, { recursive: true });
  pty = await openPtyPair();
  // First pass for the simulator (the TCP port is only known once it listens).
  const site0 = parseSiteYaml(siteYaml(pty.a, 5020));
  sim = await startSimulator({ site: site0, tcp: { port: 0 }, serial: pty.b, serialProtocols: [dlt645Handler({ site: site0, control: { password: '02123456' } })] });
  writeFileSync(`${dir}/site.yaml`, siteYaml(pty.a, sim.tcpPort!));
});

afterAll(async () => {
  await sim?.stop();
  await pty?.close();
  rmSync(dir, { recursive: true, force: true });
});

const PW = { SUBMETER_DLT645_PASSWORD: '02123456' };

describe('submeter relay (installers, against the simulator)', () => {
  it('status, trip and close of a DL/T 645 meter print the read-back and the decoded reply', async () => {
    const st = await relay(PW, '--meter', 'D', 'status');
    expect(st.code).toBe(0);
    expect(st.stdout).toMatch(/before: relay closed \(power on\)/);
    const trip = await relay(PW, '--meter', 'D', 'trip');
    expect(trip.stderr).toBe('');
    expect(trip.code).toBe(0);
    expect(trip.stdout).toMatch(/reply: meter 000000001102 accepted trip \(拉闸\)/);
    expect(trip.stdout).toMatch(/after: relay open \(power off\), last command trip \[status word 3 = 0050\]/);
    expect(sim.meter('D').relay.state().closed).toBe(false);
    const close = await relay(PW, '--meter', 'D', 'close');
    expect(close.code).toBe(0);
    expect(close.stdout).toMatch(/after: relay closed/);
  });

  it('a wrong password: the refusal is printed, exit 3, the secret is not', async () => {
    const r = await relay({ SUBMETER_DLT645_PASSWORD: '02000999' }, '--meter', 'D', 'trip');
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/refused trip \(拉闸\): password wrong or unauthorised/);
    expect(r.stdout + r.stderr).not.toContain('000999');
  });

  it('a stuck relay: accepted but the read-back disagrees, exit 4', async () => {
    sim.injectFault('T', { kind: 'relay-stuck' });
    const r = await relay({}, '--meter', 'T', 'trip', '--wait', '1');
    expect(r.code).toBe(4);
    expect(r.stdout).toMatch(/MISMATCH/);
    sim.clearFaults('T');
  });

  it('an ESAM meter is unsupported (exit 2) and gets no frame; no password is a config error', async () => {
    const r = await relay(PW, '--meter', 'E', 'trip');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/ESAM-encrypted control/);
    expect(sim.meter('E').relay.controlFrames).toBe(0);
    const nopw = await relay({ SUBMETER_DLT645_PASSWORD: '' }, '--meter', 'D', 'trip');
    expect(nopw.code).toBe(2);
    expect(nopw.stderr).toMatch(/no DL\/T 645 control password/);
    expect((await relay(PW, '--meter', 'D', 'explode')).code).toBe(2);
  });
});
