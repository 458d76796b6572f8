import type { Command } from 'commander';

interface ProbeOpts {
  site?: string;
  bus?: string;
  device?: string;
  protocol: string;
  map?: string[];
  units: string;
  baud?: string;
  parity?: string;
  dlt645Baud?: string;
  dlt645Parity?: string;
  timeout: string;
}

/**
 * `submeter probe`: what answers on an RS485 bus, and the site-file lines for it (issue 16,
 * commissioning). DL/T 645: the read-address wildcard (one meter on the bus) and every
 * address the site file already names on that bus; Modbus RTU: a unit-id scan with a
 * register map. Settings come from the site file's meters on that bus, or the options.
 */
export function registerProbe(program: Command): void {
  program
    .command('probe')
    .description('find the DL/T 645 and Modbus RTU meters on an RS485 bus and print the site-file lines for them')
    .option('--site <file>', 'site file: its meters on --bus give the serial settings, maps and DL/T 645 addresses to confirm')
    .option('--bus <port>', 'with --site: the bus (a connection.port of the site file, e.g. /dev/ttyUSB0)')
    .option('--device <path>', 'without a site file: the serial device to probe')
    .option('--protocol <list>', 'dlt645, modbus-rtu or both, comma-separated', 'dlt645,modbus-rtu')
    .option('--map <names...>', 'Modbus register map(s) to scan with (sdm630, sdm120, dtsu666, ddsu666, adw300); default: the maps the site file uses on the bus')
    .option('--units <list>', 'Modbus unit ids to scan, e.g. 1-247 or 1-10,20', '1-247')
    .option('--baud <n>', 'Modbus RTU baud rate (default: the site file, else 9600)')
    .option('--parity <p>', 'Modbus RTU parity none|even|odd (default: the site file, else none)')
    .option('--dlt645-baud <n>', 'DL/T 645 baud rate (default: the site file, else 2400)')
    .option('--dlt645-parity <p>', 'DL/T 645 parity (default: the site file, else even)')
    .option('--timeout <ms>', 'reply timeout per candidate', '300')
    .action(async (opts: ProbeOpts) => {
      const usage = (m: string) => Object.assign(new Error(m), { exitCode: 2 });
      if (!opts.device && !(opts.site && opts.bus)) throw usage('give --site and --bus, or --device');
      const { loadSiteFile } = await import('../../lib/site-file.ts');
      const { MODBUS_MAPS } = await import('../../core/index.ts');
      const { BusRegistry, probeBus, parseUnits, siteSnippet } = await import('../../collector/index.ts');
      const site = opts.site ? loadSiteFile(opts.site) : undefined;
      const port = opts.device ?? opts.bus!;
      const onBus = (site?.meters ?? []).map((m) => m.connection).filter((c) => c && c.protocol !== 'modbus-tcp' && c.port === port) as Extract<NonNullable<import('../../core/index.ts').Meter['connection']>, { protocol: 'modbus-rtu' | 'dlt645' }>[];
      if (site && opts.bus && onBus.length === 0 && !opts.device) process.stderr.write(`probe: no meter of site ${site.id} is on ${port}; using the defaults and options\n`);
      const protocols = opts.protocol.split(',').map((p) => p.trim());
      for (const p of protocols) if (p !== 'dlt645' && p !== 'modbus-rtu') throw usage(`--protocol: unknown '${p}' (dlt645, modbus-rtu)`);
      const int = (name: string, v: string | undefined, dflt: number) => {
        if (v === undefined) return dflt;
        const n = Number(v);
        if (!Number.isInteger(n) || n <= 0) throw usage(`${name}: expected a positive whole number, got '${v}'`);
        return n;
      };
      const parity = (name: string, v: string | undefined, dflt: 'none' | 'even' | 'odd') => {
        if (v === undefined) return dflt;
        if (v !== 'none' && v !== 'even' && v !== 'odd') throw usage(`${name}: expected none, even or odd, got '${v}'`);
        return v;
      };
      const settings = (c: { baud: number; parity: 'none' | 'even' | 'odd'; data_bits?: 7 | 8; stop_bits?: 1 | 2 }) => ({ baudRate: c.baud, parity: c.parity, dataBits: c.data_bits ?? 8, stopBits: c.stop_bits ?? 1 }) as const;

      const dltOnBus = onBus.filter((c) => c.protocol === 'dlt645') as Extract<(typeof onBus)[number], { protocol: 'dlt645' }>[];
      const dlt645 = protocols.includes('dlt645')
        ? {
            settings: settings({ baud: int('--dlt645-baud', opts.dlt645Baud, dltOnBus[0]?.baud ?? 2400), parity: parity('--dlt645-parity', opts.dlt645Parity, dltOnBus[0]?.parity ?? 'even') }),
            addresses: dltOnBus.map((c) => c.address),
          }
        : undefined;
      let modbus: { map: (typeof MODBUS_MAPS)[number]; settings: ReturnType<typeof settings>; units: number[] }[] | undefined;
      if (protocols.includes('modbus-rtu')) {
        const units = parseUnits(opts.units);
        const rtuOnBus = onBus.filter((c) => c.protocol === 'modbus-rtu') as Extract<(typeof onBus)[number], { protocol: 'modbus-rtu' }>[];
        const maps = opts.map ?? [...new Set(rtuOnBus.map((c) => c.map))];
        if (maps.length === 0) throw usage('--map: which register map to scan with? (no Modbus RTU meter of the site file is on this bus)');
        for (const m of maps) if (!(MODBUS_MAPS as readonly string[]).includes(m)) throw usage(`--map: unknown map '${m}' (${MODBUS_MAPS.join(', ')})`);
        const base = rtuOnBus[0];
        const s = settings({ baud: int('--baud', opts.baud, base?.baud ?? 9600), parity: parity('--parity', opts.parity, base?.parity ?? 'none') });
        modbus = maps.map((map) => ({ map: map as (typeof MODBUS_MAPS)[number], settings: s, units }));
      }

      const buses = new BusRegistry({ backoffBaseMs: 0, backoffMaxMs: 0 });
      const tty = process.stderr.isTTY === true;
      try {
        const result = await probeBus(buses.get(port), {
          ...(dlt645 ? { dlt645 } : {}),
          ...(modbus ? { modbus } : {}),
          timeoutMs: int('--timeout', opts.timeout, 300),
          onProgress: (done, total, f) => {
            if (f) process.stderr.write(`${tty ? '\r' : ''}found ${describe(f)}\n`);
            else if (tty) process.stderr.write(`\rprobing ${port}: ${done}/${total}`);
          },
        });
        if (tty) process.stderr.write('\n');
        for (const n of result.notes) process.stderr.write(`note: ${n}\n`);
        const { yaml, known } = siteSnippet(port, result.findings, site);
        process.stdout.write(`# ${port}: ${result.findings.length} device(s) answered\n`);
        for (const f of result.findings) process.stdout.write(`#   ${describe(f)}${known.find((k) => k.finding === f) ? ` (site file: ${known.find((k) => k.finding === f)!.id})` : ''}\n`);
        if (yaml) process.stdout.write(`# paste under meters: and fill in id, role and account\n${yaml}`);
        else process.stdout.write('# nothing new to add\n');
        if (result.findings.length === 0) process.exitCode = 1;
      } finally {
        await buses.closeAll();
      }

      function describe(f: import('../../collector/index.ts').ProbeFinding): string {
        const s = `${f.settings.baudRate} ${f.settings.dataBits}${f.settings.parity[0].toUpperCase()}${f.settings.stopBits}`;
        const kwh = f.wh !== undefined ? `, ${(f.wh / 1000).toFixed(3)} kWh` : '';
        if (f.protocol === 'dlt645') return `DL/T 645 meter ${f.address} at ${s}${kwh} (${f.via})`;
        return f.exception ? `Modbus unit ${f.unit} at ${s} answers ${f.exception} to the ${f.map} map` : `Modbus unit ${f.unit} at ${s}, ${f.map} map${kwh}${f.v !== undefined ? `, ${f.v.toFixed(1)} V` : ''}`;
      }
    });
}
