import { Cluster, Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { createRedis, parseRedisUrl, redact } from './redis.ts';

describe('SUBMETER_REDIS_URL', () => {
  it('one host is a server, several are the seed nodes of a Redis Cluster', () => {
    expect(parseRedisUrl('redis://127.0.0.1:6389')).toEqual({ cluster: false, nodes: [{ host: '127.0.0.1', port: 6389 }], tls: false });
    expect(parseRedisUrl('redis://:s3cret@10.0.0.1:7001,10.0.0.2:7002,10.0.0.3')).toEqual({
      cluster: true,
      nodes: [
        { host: '10.0.0.1', port: 7001 },
        { host: '10.0.0.2', port: 7002 },
        { host: '10.0.0.3', port: 6379 },
      ],
      tls: false,
      password: 's3cret',
    });
    expect(parseRedisUrl('rediss://user:p%40ss@redis.example:6380/2')).toMatchObject({ cluster: false, tls: true, username: 'user', password: 'p@ss', db: 2 });
    expect(parseRedisUrl('redis://[::1]:7000,[::1]:7001').nodes).toEqual([
      { host: '::1', port: 7000 },
      { host: '::1', port: 7001 },
    ]);
    expect(createRedis('redis://127.0.0.1:1', { lazyConnect: true })).toBeInstanceOf(Redis);
    expect(createRedis('redis://127.0.0.1:1,127.0.0.1:2', { lazyConnect: true })).toBeInstanceOf(Cluster);
  });

  it('refuses what cannot work, naming it, without showing the password', () => {
    expect(() => parseRedisUrl('redis://a:1,b:2/3')).toThrow(/Cluster has no databases/);
    expect(() => parseRedisUrl('redis://host:99999')).toThrow(/bad port/);
    expect(() => parseRedisUrl('http://host:1')).toThrow(/expected redis:\/\//);
    expect(() => parseRedisUrl('redis://:hunter2@host:1:2')).toThrow(/bad host:port/);
    expect(() => parseRedisUrl('redis://:hunter2@/x y')).toThrow(/\*\*\*/);
    expect(redact('redis://u:hunter2@h:1,h:2')).toBe('redis://u:***@h:1,h:2');
  });
});
