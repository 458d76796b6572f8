/**
 * The collector's relay executor in a process of its own, for the crash test (it is
 * SIGKILLed between a command and its read-back). Config as JSON in SUBMETER_TEST_RELAY;
 * prints "ready" on stdout once the executor takes jobs.
 */
import { parseSiteYaml } from '../../core/index.ts';
import { InfluxV1 } from '../../influx/client.ts';
import { BusRegistry } from '../bus/index.ts';
import { ModbusTcpPool } from '../inputs/modbus-tcp/tcp-pool.ts';
import { startRelayExecutor } from '../relay/executor.ts';
import { loadRelaySecrets } from '../relay/secrets.ts';

interface Config {
  siteYaml: string;
  redisUrl: string;
  influxUrl: string;
  db: string;
  queuePrefix: string;
  keyPrefix: string;
  secret: string;
  lockDurationMs: number;
}

const cfg = JSON.parse(process.env.SUBMETER_TEST_RELAY ?? '{}') as Config;
const influx = new InfluxV1({ url: cfg.influxUrl, db: cfg.db, timeoutMs: 3000 });
await startRelayExecutor({
  site: parseSiteYaml(cfg.siteYaml, 'relay-proc.yaml'),
  redisUrl: cfg.redisUrl,
  queuePrefix: cfg.queuePrefix,
  keyPrefix: cfg.keyPrefix,
  buses: new BusRegistry(),
  tcp: new ModbusTcpPool(),
  secrets: loadRelaySecrets({ SUBMETER_DLT645_PASSWORD: cfg.secret }),
  writeLines: (lines) => influx.write(lines),
  readbackPollMs: 100,
  statusEveryMs: 3_600_000,
  lockDurationMs: cfg.lockDurationMs,
});
process.stdout.write('ready\n');
