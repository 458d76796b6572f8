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
