import type { Command } from 'commander';

const ACTIONS = ['status', 'trip', 'close', 'close-permit', 'protect-on', 'protect-off'] as const;
type Action = (typeof ACTIONS)[number];

interface RelayOpts {
  site: string;
  meter: string;
  wait: string;
  validity: string;
}

/**
 * `submeter relay`: talks to one meter's load relay directly, for installers
 * commissioning a site (docs/enforcement.md "Commissioning"). It bypasses the policy
 * (no protected windows, no dry-run): it is the tool to prove each relay works before
 * enforcement is switched on. Prints the read-back before, the meter's decoded reply and
 * the read-back after; exit 0 when the meter accepted and the relay reached the state,
 * 3 when the meter refused, 4 when it accepted but the read-back disagrees (stuck
 * relay), 2 for a configuration problem (unsupported meter, no password), 1 for a wire
 * fault (no reply).
 */
export function registerRelay(program: Command): void {
  program
    .command('relay')
    .description('commissioning: read or switch one meter\'s load relay directly (status|trip|close|close-permit|protect-on|protect-off)')
    .requiredOption('--site <file>', 'site file (YAML)')
    .requiredOption('--meter <id>', 'meter id (its relay: plain in the site file)')
    .option('--wait <seconds>', 'how long to read back for the new state after a command', '10')
    .option('--validity <seconds>', 'DL/T 645 command deadline: now + this, in the meter clock (site local time)', '300')
    .argument('<action>', ACTIONS.join('|'))
    .action(async (action: string, opts: RelayOpts) => {
      const fail = (msg: string, exitCode: number) => Object.assign(new Error(msg), { exitCode });
      if (!(ACTIONS as readonly string[]).includes(action)) throw fail(`action must be one of ${ACTIONS.join(', ')}, got ${JSON.stringify(action)}`, 2);
      const wait = Number(opts.wait);
      const validity = Number(opts.validity);
      if (!(wait >= 0 && wait <= 600)) throw fail('--wait must be 0..600 seconds', 2);
      if (!(Number.isInteger(validity) && validity >= 10 && validity <= 86_400)) throw fail('--validity must be an integer 10..86400 seconds', 2);
      const { loadSiteFile } = await import('../../lib/site-file.ts');
      const { BusRegistry, ModbusTcpPool, MeterReadError, createRelayDriver, loadRelaySecrets, relayUnsupported, RelaySecretsError } = await import('../../collector/index.ts');
      const site = loadSiteFile(opts.site);
      const meter = site.meters.find((m) => m.id === opts.meter);
      if (!meter) throw fail(`no meter ${opts.meter} in site ${site.id}`, 2);
      let secrets;
      try {
        secrets = loadRelaySecrets();
      } catch (err) {
        if (err instanceof RelaySecretsError) throw fail(err.message, 2);
        throw err;
      }
      const why = relayUnsupported(meter, action === 'status' && meter.connection?.protocol === 'dlt645' ? undefined : secrets);
      if (why) throw fail(why, 2);
      const buses = new BusRegistry();
      const tcp = new ModbusTcpPool();
      const out = (line: string) => process.stdout.write(`${line}\n`);
      try {
        const driver = createRelayDriver(meter, { site, buses, tcp, secrets, commandValiditySeconds: validity });
        const c = meter.connection!;
        out(`meter ${meter.id}: ${c.protocol === 'dlt645' ? `DL/T 645 ${c.address} on ${c.port}` : c.protocol === 'modbus-rtu' ? `Modbus RTU unit ${c.unit} on ${c.port} (${c.map})` : `Modbus TCP ${c.host}:${c.port} unit ${c.unit} (${c.map})`}`);
        const before = await driver.readState();
        out(`before: ${before.text}`);
        if (action === 'status') return;
        const cmd = action as Exclude<Action, 'status'>;
        const reply = await driver.send(cmd);
        out(`reply: ${reply.text}`);
        if (!reply.accepted) {
          process.exitCode = 3;
          return;
        }
        const want = cmd === 'trip' ? 'open' : cmd === 'close' ? 'closed' : undefined;
        let after = await driver.readState();
        const until = Date.now() + wait * 1000;
        while (want && after.state !== want && Date.now() < until) {
          await new Promise((r) => setTimeout(r, 1000));
          after = await driver.readState();
        }
        out(`after: ${after.text}`);
        if (want && after.state !== want) {
          out(`MISMATCH: the meter accepted the command but the relay reads ${after.state} after ${wait} s (stuck relay, or a trip delay programmed in the meter)`);
          process.exitCode = 4;
        }
      } catch (err) {
        if (err instanceof MeterReadError) throw fail(`${err.kind}: ${err.message}`, err.kind === 'config' ? 2 : 1);
        throw err;
      } finally {
        await buses.closeAll();
        await tcp.close();
      }
    });
}
