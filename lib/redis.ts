import { Cluster, Redis } from 'ioredis';
import type { ClusterOptions, RedisOptions } from 'ioredis';

/**
 * The one way a process connects to Redis: a single server or a Redis Cluster, from
 * `SUBMETER_REDIS_URL`.
 *
 * - `redis://host:6379` (or `rediss://`, with `:password@` and `/db`): one server.
 * - `redis://host1:7001,host2:7002,host3:7003`: a Redis Cluster; the hosts are seed nodes
 *   (any few of its primaries or replicas), the client learns the slot map from them.
 *   A password given once applies to every node. A cluster has no databases: `/db` is
 *   refused.
 *
 * Every key submeter uses carries a `{...}` hash tag (docs/scaling.md, "Redis Cluster"),
 * so each Lua script, MULTI and BullMQ queue touches one slot.
 */
export type RedisClient = Redis | Cluster;

export interface RedisTarget {
  readonly cluster: boolean;
  readonly nodes: readonly { readonly host: string; readonly port: number }[];
  readonly tls: boolean;
  readonly username?: string;
  readonly password?: string;
  readonly db?: number;
}

/** Parses SUBMETER_REDIS_URL; throws naming what is wrong. */
export function parseRedisUrl(url: string): RedisTarget {
  const m = /^(rediss?):\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#]+)(?:\/(\d*))?\/?$/.exec(url.trim());
  if (!m) throw new Error(`SUBMETER_REDIS_URL: expected redis://[user:password@]host:port[,host:port...][/db], got ${JSON.stringify(redact(url))}`);
  const [, scheme, user, pass, hostList, db] = m;
  const nodes = hostList.split(',').map((hp) => {
    const h = /^(\[[0-9a-fA-F:]+\]|[^:,\[\]]+)(?::(\d{1,5}))?$/.exec(hp.trim());
    if (!h) throw new Error(`SUBMETER_REDIS_URL: bad host:port ${JSON.stringify(hp)}`);
    const port = h[2] === undefined ? 6379 : Number(h[2]);
    if (!(port >= 1 && port <= 65535)) throw new Error(`SUBMETER_REDIS_URL: bad port in ${JSON.stringify(hp)}`);
    return { host: h[1].replace(/^\[|\]$/g, ''), port };
  });
  const cluster = nodes.length > 1;
  if (cluster && db) throw new Error('SUBMETER_REDIS_URL: a Redis Cluster has no databases; drop the /db part');
  return {
    cluster,
    nodes,
    tls: scheme === 'rediss',
    ...(user ? { username: decodeURIComponent(user) } : {}),
    ...(pass !== undefined && pass !== '' ? { password: decodeURIComponent(pass) } : {}),
    ...(db ? { db: Number(db) } : {}),
  };
}

/** The URL without its password, for messages. */
export function redact(url: string): string {
  return url.replace(/(\/\/[^:@/]*:)[^@/]*@/, '$1***@');
}

/**
 * Connects (lazily: the first command connects, or call `connect()`). `options` apply to
 * every connection, e.g. `{ maxRetriesPerRequest: null }` for BullMQ workers.
 */
export function createRedis(url: string, options: RedisOptions = {}, clusterOptions: Omit<ClusterOptions, 'redisOptions'> = {}): RedisClient {
  const t = parseRedisUrl(url);
  const auth: RedisOptions = {
    // No CLIENT SETINFO on connect: Redis before 7.2 (Debian 12 ships 7.0) answers it with
    // an error, two per connection, which fills INFO errorstats, what operators watch.
    disableClientInfo: true,
    ...(t.username ? { username: t.username } : {}),
    ...(t.password ? { password: t.password } : {}),
    ...(t.tls ? { tls: {} } : {}),
  };
  if (!t.cluster) return new Redis({ ...options, ...auth, host: t.nodes[0].host, port: t.nodes[0].port, ...(t.db !== undefined ? { db: t.db } : {}) });
  const { maxRetriesPerRequest, lazyConnect, enableOfflineQueue: _o, retryStrategy: _r, ...perNode } = options;
  return new Cluster([...t.nodes], {
    ...clusterOptions,
    ...(lazyConnect !== undefined ? { lazyConnect } : {}),
    // On the node connections, where BullMQ looks for it (null for its blocking workers).
    redisOptions: { ...perNode, ...auth, ...(maxRetriesPerRequest !== undefined ? { maxRetriesPerRequest } : {}) },
  });
}

/**
 * A connection for SUBSCRIBE. On a Redis Cluster a message published on any node reaches
 * every node (the cluster bus broadcasts PUBLISH), so one plain connection to a seed node
 * hears all of them; ioredis' own cluster subscriber is not used because it connects
 * without `disableClientInfo` (two CLIENT SETINFO errors per connection on Redis 7.0, in
 * INFO errorstats). It reconnects to the same node; while that node is down, nothing is
 * heard (submeter's channels are hints with a safety tick behind them).
 */
export function createSubscriber(url: string, options: RedisOptions = {}): Redis {
  const t = parseRedisUrl(url);
  return new Redis({
    ...options,
    disableClientInfo: true,
    ...(t.username ? { username: t.username } : {}),
    ...(t.password ? { password: t.password } : {}),
    ...(t.tls ? { tls: {} } : {}),
    host: t.nodes[0].host,
    port: t.nodes[0].port,
    ...(t.db !== undefined ? { db: t.db } : {}),
  });
}

/**
 * Every key matching `pattern`, on every primary of a cluster (SCAN on a Cluster client
 * would ask one random node). For tests and the demo's reset, never on a request path.
 */
export async function scanKeys(client: RedisClient, pattern: string): Promise<string[]> {
  const nodes = client instanceof Cluster ? client.nodes('master') : [client];
  const out: string[] = [];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      out.push(...keys);
      cursor = next;
    } while (cursor !== '0');
  }
  return out;
}

/** Deletes every key matching `pattern` (one DEL per key: keys of a pattern span slots). */
export async function deleteMatching(client: RedisClient, pattern: string): Promise<number> {
  const keys = await scanKeys(client, pattern);
  for (let i = 0; i < keys.length; i += 500) {
    const chunk = keys.slice(i, i + 500);
    if (client instanceof Cluster) await Promise.all(chunk.map((k) => client.del(k)));
    else await client.del(...chunk);
  }
  return keys.length;
}

/** The hash tag of a site: all its keys hash to one slot, different sites spread. */
export function siteTag(site: string): string {
  // Site ids cannot hold `{` or `}` (core/site/schema.ts), so the tag is the whole id.
  return `{${site}}`;
}

/** A pipeline's or MULTI's replies, or its first error (ioredis reports them per command). */
export function throwFirst(replies: [Error | null, unknown][] | null): unknown[] {
  if (!replies) throw new Error('redis pipeline was not executed');
  for (const [err] of replies) if (err) throw err;
  return replies.map(([, v]) => v);
}
