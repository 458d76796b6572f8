import type { Site } from '../../core/index.ts';
import type { SerialSettings } from '../bus/index.ts';
import type { ProbeFinding } from './bus-probe.ts';

/**
 * The site-file lines for what a probe found on a bus, ready to paste under `meters:`.
 * Devices the site file already has are named by their id and left out of the snippet;
 * new ones get a placeholder id and role for the installer to fill in.
 */
export function siteSnippet(port: string, findings: readonly ProbeFinding[], site?: Site): { yaml: string; known: { finding: ProbeFinding; id: string }[] } {
  const known: { finding: ProbeFinding; id: string }[] = [];
  const lines: string[] = [];
  let n = 0;
  for (const f of findings) {
    if (f.protocol === 'modbus-rtu' && f.exception) continue; // something is there, but not this map
    const existing = site?.meters.find((m) => {
      const c = m.connection;
      if (!c || c.protocol !== f.protocol || c.port !== port) return false;
      return c.protocol === 'dlt645' ? f.protocol === 'dlt645' && c.address === f.address : c.protocol === 'modbus-rtu' && f.protocol === 'modbus-rtu' && c.unit === f.unit;
    });
    if (existing) {
      known.push({ finding: f, id: existing.id });
      continue;
    }
    n++;
    const reading = f.wh !== undefined ? `  # reads ${(f.wh / 1000).toFixed(3)} kWh now: compare with the display` : '';
    const conn =
      f.protocol === 'dlt645'
        ? `{ protocol: dlt645, port: ${JSON.stringify(port)}, ${settingsYaml(f.settings, 2400, 'even')}address: "${f.address}" }`
        : `{ protocol: modbus-rtu, port: ${JSON.stringify(port)}, ${settingsYaml(f.settings, 9600, 'none')}unit: ${f.unit}, map: ${f.map} }`;
    lines.push(`  - id: NEW-${n}${reading}`, '    role: tenant          # master | tenant | common', '    account: CHANGE-ME    # tenant meters: the account it bills', `    connection: ${conn}`);
  }
  return { yaml: lines.length ? `meters:\n${lines.join('\n')}\n` : '', known };
}

/** Only what differs from the protocol's defaults in the site schema. */
function settingsYaml(s: SerialSettings, baud: number, parity: string): string {
  const parts: string[] = [];
  if (s.baudRate !== baud) parts.push(`baud: ${s.baudRate}`);
  if (s.parity !== parity) parts.push(`parity: ${s.parity}`);
  if (s.dataBits !== 8) parts.push(`data_bits: ${s.dataBits}`);
  if (s.stopBits !== 1) parts.push(`stop_bits: ${s.stopBits}`);
  return parts.map((p) => `${p}, `).join('');
}
