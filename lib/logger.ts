import { pino } from 'pino';
import type { Logger } from 'pino';

export type { Logger };

/**
 * Structured logs (pino) on stderr, so stdout stays free for command output (line
 * protocol, bill JSON). Level from SUBMETER_LOG_LEVEL (default info; silent in tests
 * unless set). SUBMETER_LOG_FILE sends them to a file instead (appended), for commands
 * whose terminal output is for people (the demo). Secrets never go in: tokens and
 * passwords are redacted by key name.
 */
export function createLogger(name: string, level = process.env.SUBMETER_LOG_LEVEL ?? (process.env.VITEST ? 'silent' : 'info')): Logger {
  return pino(
    {
      name,
      level,
      redact: { paths: ['token', '*.token', 'password', '*.password', 'authorization', '*.authorization', 'headers.authorization'], censor: '[redacted]' },
    },
    process.env.SUBMETER_LOG_FILE ? pino.destination({ dest: process.env.SUBMETER_LOG_FILE, sync: true, append: true, mkdir: true }) : pino.destination({ fd: 2, sync: true }),
  );
}
