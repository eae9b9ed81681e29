// One root pino logger; each module takes a child with { module }.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(options: { level?: string; destination?: number } = {}): Logger {
  return pino(
    {
      level: options.level ?? process.env.PLANKWATCH_LOG_LEVEL ?? 'info',
      base: { app: 'plankwatch' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: ['*.password', '*.token', 'password', 'token'],
    },
    pino.destination({ dest: options.destination ?? 1, sync: true }),
  );
}

/** A logger that drops everything: for library use and tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
