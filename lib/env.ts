import { z } from 'zod';

/**
 * Process configuration from the environment, validated once at start-up (style.md
 * practice 4). scripts/services.sh writes the URLs it resolved to .run/services.env.
 */
const envSchema = z.object({
  SUBMETER_INFLUX_URL: z.url().default('http://127.0.0.1:8096'),
  /** InfluxDB database (1.x), or bucket via the DBRP mapping (2.x/3.x). */
  SUBMETER_INFLUX_DB: z.string().min(1).default('submeter'),
  /** 2.x/3.x token; sent as `Authorization: Token ...`; never logged. */
  SUBMETER_INFLUX_TOKEN: z.string().optional(),
  SUBMETER_REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL').default('redis://127.0.0.1:6389'),
  /**
   * The API's Express `trust proxy` behind a reverse proxy (compose.yaml's Caddy): `true`,
   * a number of hops (`1`), or addresses/subnets/`loopback`,`uniquelocal` comma-separated.
   * Then `req.ip` is the client's address from X-Forwarded-For, so the failed-login limit
   * counts clients, not the proxy. Unset or `false`: X-Forwarded-For is ignored.
   */
  SUBMETER_TRUST_PROXY: z
    .string()
    .optional()
    .transform((v, ctx): boolean | number | string | undefined => {
      const t = v?.trim();
      if (t === undefined || t === '' || t === 'false') return undefined;
      if (t === 'true') return true;
      if (/^\d+$/.test(t)) return Number(t);
      if (/^[0-9A-Za-z:./_-]+(\s*,\s*[0-9A-Za-z:./_-]+)*$/.test(t)) return t;
      ctx.addIssue({ code: 'custom', message: `must be true, false, a hop count or comma-separated addresses/subnets, got ${JSON.stringify(v)}` });
      return z.NEVER;
    }),
});

export type Env = z.output<typeof envSchema>;

export function readEnv(env: NodeJS.ProcessEnv = process.env): Env {
  const r = envSchema.safeParse(env);
  if (!r.success) {
    const msg = r.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`).join('\n');
    throw new Error(`invalid environment:\n${msg}`);
  }
  return r.data;
}
