import pino, { type Logger } from 'pino';
import { logFormatFor, prettyDestination } from './log-format.js';

export type { Logger };

/**
 * One pino logger per process, one line per event: JSON when stdout is a file or a pipe (or
 * LOG_FORMAT=json), a readable coloured line on a terminal (lib/log-format.ts). LOG_LEVEL tunes it.
 */
export function createLogger(name: string, bindings: Record<string, unknown> = {}): Logger {
  const options = {
    name,
    level: process.env.LOG_LEVEL ?? 'info',
    base: { pid: process.pid, ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return logFormatFor(process.stdout) === 'pretty' ? pino(options, prettyDestination(process.stdout)) : pino(options);
}

/** A logger that prints nothing, for tests and library use. */
export const silentLogger: Logger = pino({ level: 'silent' });

/** Short text of an error for an expected condition: the message only, never the stack. */
export function errText(err: unknown): string {
  if (err instanceof Error) return (err as NodeJS.ErrnoException).code ? `${(err as NodeJS.ErrnoException).code}: ${err.message}` : err.message;
  return String(err);
}
