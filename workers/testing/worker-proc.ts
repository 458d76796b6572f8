/**
 * A worker process for the crash tests (they SIGKILL it): startWorkers from a JSON config
 * in SUBMETER_TEST_WORKER, prints "ready" on stdout once the workers run.
 */
import { parseSiteYaml } from '../../core/index.ts';
import { InfluxV1 } from '../../influx/client.ts';
import { startWorkers } from '../start.ts';
import type { QueueName } from '../queues.ts';

interface Config {
  siteYaml: string;
  redisUrl: string;
  influxUrl: string;
  db: string;
  queuePrefix: string;
  keyPrefix: string;
  now?: number;
  lockDurationMs?: number;
  queues?: QueueName[];
  tuning?: Record<string, number>;
}

const cfg = JSON.parse(process.env.SUBMETER_TEST_WORKER ?? '{}') as Config;
const fixed = cfg.now;
await startWorkers({
  sites: [parseSiteYaml(cfg.siteYaml, 'worker-proc.yaml')],
  redisUrl: cfg.redisUrl,
  influx: new InfluxV1({ url: cfg.influxUrl, db: cfg.db, timeoutMs: 3000 }),
  queuePrefix: cfg.queuePrefix,
  keyPrefix: cfg.keyPrefix,
  queues: cfg.queues ?? ['settlement'],
  schedulers: false,
  concurrency: 1,
  lockDurationMs: cfg.lockDurationMs,
  tuning: cfg.tuning,
  now: fixed === undefined ? Date.now : () => fixed,
});
process.stdout.write('ready\n');
