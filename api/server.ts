import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { InfluxV1 } from '../influx/client.ts';
import { readEnv } from '../lib/env.ts';
import { createLogger } from '../lib/logger.ts';
import { createRedis } from '../lib/redis.ts';
import { loadSiteFile } from '../lib/site-file.ts';
import { createTopupProviders } from '../lib/topup/index.ts';
import type { TopupProviders } from '../lib/topup/index.ts';
import { buildApp } from './app.ts';
import { answerClientErrors } from './client-errors.ts';
import { SiteRef } from './site-ref.ts';
import { keepInfluxDatabase, watchRedis } from './store-watch.ts';

export interface StartApiOptions {
  /** Site file (YAML); validated before anything listens. */
  readonly siteFile: string;
  /** @defaultValue 8080; 0 picks a free port. */
  readonly port?: number;
  /** @defaultValue '127.0.0.1' */
  readonly host?: string;
  /** Defaults from the environment (SUBMETER_INFLUX_URL, SUBMETER_INFLUX_DB, SUBMETER_REDIS_URL). */
  readonly influxUrl?: string;
  readonly influxDb?: string;
  readonly redisUrl?: string;
  readonly keyPrefix?: string;
  readonly workersKeyPrefix?: string;
  /** Express `trust proxy`, when a reverse proxy sits in front. @defaultValue SUBMETER_TRUST_PROXY, else false */
  readonly trustProxy?: boolean | number | string;
  /** Top-up provider adapters. @defaultValue from the credentials in the environment when the site has a topup block */
  readonly topupProviders?: TopupProviders;
}

export interface RunningApi {
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  close(): Promise<void>;
}

/** Loads the site and listens; InfluxDB and Redis may come up later. For `submeter api` and the demo. */
export async function startApi(opts: StartApiOptions): Promise<RunningApi> {
  const env = readEnv();
  const log = createLogger('api');
  const site = loadSiteFile(opts.siteFile);
  // A topup block without credentials refuses to start, naming the missing keys (never values).
  const topupProviders = opts.topupProviders ?? (site.topup ? createTopupProviders(site) : undefined);
  const influx = new InfluxV1({ url: opts.influxUrl ?? env.SUBMETER_INFLUX_URL, db: opts.influxDb ?? env.SUBMETER_INFLUX_DB, token: env.SUBMETER_INFLUX_TOKEN });
  // Neither store has to be up for the API to start (issue 11): a restart during an
  // outage must not crash-loop. Redis reconnects by itself (commands fail after 3 tries:
  // 503); the database is created as soon as InfluxDB answers. A URL listing several
  // nodes is a Redis Cluster (lib/redis.ts).
  const redis = createRedis(opts.redisUrl ?? env.SUBMETER_REDIS_URL, { maxRetriesPerRequest: 3 });
  watchRedis(redis, log);
  const database = keepInfluxDatabase(influx, log, { token: env.SUBMETER_INFLUX_TOKEN });
  await database.first;
  const app = buildApp({ site: new SiteRef(site, opts.siteFile), influx, redis, keyPrefix: opts.keyPrefix, workersKeyPrefix: opts.workersKeyPrefix, trustProxy: opts.trustProxy ?? env.SUBMETER_TRUST_PROXY, logger: log, topupProviders });
  const host = opts.host ?? '127.0.0.1';
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(opts.port ?? 8080, host, (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  answerClientErrors(server);
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host}:${port}`;
  log.info({ url, site: site.id }, 'api listening');
  return {
    url,
    port,
    server,
    async close() {
      database.stop();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

export interface DemoTokens {
  readonly manager: string;
  readonly viewer: string;
  /** account id -> tenant token */
  readonly tenants: Readonly<Record<string, string>>;
}

/**
 * Tokens for a demo: one manager, one viewer and one tenant token per account, stored
 * hashed like any other (labelled "demo"); the secrets are returned for printing once.
 */
export async function createDemoTokens(opts: { readonly siteFile: string; readonly redisUrl?: string; readonly keyPrefix?: string }): Promise<DemoTokens> {
  const { RedisTokenStore } = await import('./auth/token-store.ts');
  const site = loadSiteFile(opts.siteFile);
  const redis = createRedis(opts.redisUrl ?? readEnv().SUBMETER_REDIS_URL, { maxRetriesPerRequest: 3, lazyConnect: true });
  await redis.connect();
  try {
    const store = new RedisTokenStore(redis, opts.keyPrefix);
    const make = async (role: 'manager' | 'viewer' | 'tenant', account?: string) => (await store.create({ site: site.id, role, account, label: 'demo' })).token;
    const tenants: Record<string, string> = {};
    for (const a of site.accounts) tenants[a.id] = await make('tenant', a.id);
    return { manager: await make('manager'), viewer: await make('viewer'), tenants };
  } finally {
    redis.disconnect();
  }
}
