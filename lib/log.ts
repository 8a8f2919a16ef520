import pino, { type Logger } from 'pino';

export type { Logger };

/** One pino logger per process: one JSON line per event. LOG_LEVEL tunes it; LOG_PRETTY is not needed. */
export function createLogger(name: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({
    name,
    level: process.env.LOG_LEVEL ?? 'info',
    base: { pid: process.pid, ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

/** A logger that prints nothing, for tests and library use. */
export const silentLogger: Logger = pino({ level: 'silent' });

/** Short text of an error for an expected condition: the message only, never the stack. */
export function errText(err: unknown): string {
  if (err instanceof Error) return (err as NodeJS.ErrnoException).code ? `${(err as NodeJS.ErrnoException).code}: ${err.message}` : err.message;
  return String(err);
}
