import { listenErrorOf } from './errors.js';
import { onShutdown } from './lifecycle.js';
import { createLogger, type Logger } from './log.js';

export interface Service { close(): Promise<void> | void }

/**
 * Runs one long-running service the way every command does: its logger, its start, a listen
 * failure as one line and exit 2 (through the program runner), graceful shutdown on SIGTERM
 * and SIGINT. `start` gets the logger and returns what to close; `closing` adds last words.
 */
export async function serve<S extends Service>(name: string, start: (log: Logger) => Promise<S>, o: { closing?: (svc: S, log: Logger) => void; deadlineMs?: number } = {}): Promise<S> {
  const log = createLogger(name);
  let svc: S;
  try {
    svc = await start(log);
  } catch (err) {
    throw listenErrorOf(err) ?? err;
  }
  onShutdown(log, [async () => { await svc.close(); o.closing?.(svc, log); }], o.deadlineMs);
  return svc;
}
