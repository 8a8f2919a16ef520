import type { Logger } from './log.js';

/**
 * Graceful shutdown on SIGTERM/SIGINT: runs the closers in reverse order of registration,
 * once, with a deadline, then exits. A second signal exits at once.
 */
export function onShutdown(log: Logger, closers: Array<() => unknown | Promise<unknown>>, deadlineMs = 5_000): void {
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) process.exit(130);
    stopping = true;
    log.info({ signal }, 'shutting down');
    const timer = setTimeout(() => { log.warn('shutdown deadline passed, exiting'); process.exit(1); }, deadlineMs);
    timer.unref();
    for (const close of [...closers].reverse()) {
      try { await close(); } catch (err) { log.warn({ err: (err as Error).message }, 'error while closing'); }
    }
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
