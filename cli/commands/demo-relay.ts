import type { RelaySecrets } from '../../collector/index.ts';

/**
 * The demo's prepaid enforcement (issue 13): the collector carries out the workers' relay
 * commands on its own buses (the relay executor, as `submeter collect --relay`), and the
 * demo says which mode the site runs in. The example site keeps `dry-run` (decide and log,
 * send nothing), the safe default of a new site; `--enforcement on` switches the simulated
 * relays for real.
 */

export const ENFORCEMENT_MODES = ['off', 'dry-run', 'on'] as const;
export type EnforcementMode = (typeof ENFORCEMENT_MODES)[number];

/**
 * The control password of the demo's simulated DL/T 645 meters (level 02, 6 digits), given
 * to the simulator and to the collector. A real site's passwords come from the environment
 * or a secrets file (docs/enforcement.md), never from code or the site file.
 */
export const DEMO_DLT645_PASSWORD = '02000000';

/** The site-file block the demo adds for `--enforcement <mode>` (none: the site file's own mode). */
export function demoEnforcementYaml(mode: string | undefined): string {
  if (mode === undefined) return '';
  if (!(ENFORCEMENT_MODES as readonly string[]).includes(mode)) throw Object.assign(new Error(`--enforcement: expected one of ${ENFORCEMENT_MODES.join(', ')}, got '${mode}'`), { exitCode: 2 });
  return `\nenforcement:\n  mode: ${mode}\n`;
}

/** The collector's relay options for the demo: the workers' Redis and prefixes, the simulator's password. */
export async function demoRelayOptions(o: { redisUrl: string; queuePrefix: string; keyPrefix: string }): Promise<{ redisUrl: string; queuePrefix: string; keyPrefix: string; secrets: RelaySecrets }> {
  const { loadRelaySecrets } = await import('../../collector/index.ts');
  return { ...o, secrets: loadRelaySecrets({ SUBMETER_DLT645_PASSWORD: DEMO_DLT645_PASSWORD }) };
}

const MODE_TEXT: Record<EnforcementMode, string> = {
  off: 'off: nothing is decided or sent',
  'dry-run': 'dry-run: the workers decide and log what they would do, nothing is sent to a relay (--enforcement on switches them)',
  on: 'on: accounts out of credit are cut outside the protected windows and reconnected after a payment',
};

/** One line per relay account from GET /api/v1/relay: the mode, the power as read back, what the policy wants. */
export function relaySummary(list: { accounts: { account: string; mode: EnforcementMode; power: string; wanted: string; reason: string | null; meters: { meter: string; state: string }[] }[] }): string[] {
  if (list.accounts.length === 0) return ['  relay control: no meter with a relay on this site'];
  const modes = [...new Set(list.accounts.map((a) => a.mode))];
  return [
    `  relay control  enforcement ${modes.map((m) => MODE_TEXT[m] ?? m).join('; ')}; the collector's relay executor reads and switches the relays`,
    ...list.accounts.map((a) => `                 ${a.account}: power ${a.power} (${a.meters.map((m) => `${m.meter} ${m.state}`).join(', ')}), policy wants ${a.wanted}${a.reason ? ` (${a.reason})` : ''}`),
  ];
}
