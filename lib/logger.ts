import { pino } from 'pino';
import type { Logger } from 'pino';

export type { Logger };

/**
 * Structured logs (pino) on stderr, so stdout stays free for command output (line
 * protocol, bill JSON). Level from SUBMETER_LOG_LEVEL (default info; silent in tests
 * unless set). Secrets never go in: tokens and passwords are redacted by key name.
 */
export function createLogger(name: string, level = process.env.SUBMETER_LOG_LEVEL ?? (process.env.VITEST ? 'silent' : 'info')): Logger {
  return pino(
    {
      name,
      level,
      redact: { paths: ['token', '*.token', 'password', '*.password', 'authorization', '*.authorization', 'headers.authorization'], censor: '[redacted]' },
    },
    pino.destination({ fd: 2, sync: true }),
  );
}
