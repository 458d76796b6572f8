/**
 * An API process for the top-up crash test (it SIGKILLs itself): buildApp with WeChat Pay
 * credentials from SUBMETER_TEST_API (JSON), listening on the given port; with `crashAt`
 * it kills itself with SIGKILL when a notification reaches that stage, before replying.
 * Prints "ready" once it listens.
 */
import { Redis } from 'ioredis';
import { parseSiteYaml } from '../../core/index.ts';
import { InfluxV1 } from '../../influx/client.ts';
import { WechatPay } from '../../lib/topup/index.ts';
import type { WechatCredentials } from '../../lib/topup/index.ts';
import { buildApp } from '../app.ts';
import { SiteRef } from '../site-ref.ts';

interface Config {
  siteYaml: string;
  redisUrl: string;
  influxUrl: string;
  db: string;
  keyPrefix: string;
  workersKeyPrefix: string;
  port: number;
  wechat: WechatCredentials;
  crashAt?: 'verified' | 'flipped' | 'credited';
}

const cfg = JSON.parse(process.env.SUBMETER_TEST_API ?? '{}') as Config;
const site = parseSiteYaml(cfg.siteYaml, 'topup-api-proc.yaml');
const app = buildApp({
  site: new SiteRef(site),
  influx: new InfluxV1({ url: cfg.influxUrl, db: cfg.db, timeoutMs: 5000 }),
  redis: new Redis(cfg.redisUrl, { maxRetriesPerRequest: 3 }),
  keyPrefix: cfg.keyPrefix,
  workersKeyPrefix: cfg.workersKeyPrefix,
  topupProviders: new Map([['wechat', new WechatPay(cfg.wechat)]]),
  topupOnStage: (stage) => {
    if (stage === cfg.crashAt) process.kill(process.pid, 'SIGKILL');
  },
});
app.listen(cfg.port, '127.0.0.1', () => process.stdout.write('ready\n'));
