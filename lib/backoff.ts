/** Exponential backoff with full jitter, capped. attempt starts at 0. */
export function backoffDelay(attempt: number, baseMs = 200, maxMs = 10_000, random = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 20));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** Resolves after `ms`, or at once when `signal` aborts; its abort listener goes when it resolves (loops add none). */
export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const onAbort = () => { clearTimeout(t); resolve(); };
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/**
 * Retries `fn` until it succeeds or `signal` aborts. The first failure is reported once through
 * `onWaiting` (e.g. "broker not up yet, waiting"), later ones stay quiet: no log flood, no stacks.
 */
export async function retryWithBackoff<T>(fn: () => Promise<T>, opts: { signal?: AbortSignal; onWaiting?: (err: unknown) => void; baseMs?: number; maxMs?: number } = {}): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      if (attempt === 0) opts.onWaiting?.(err);
      await sleep(backoffDelay(attempt, opts.baseMs, opts.maxMs), opts.signal);
      if (opts.signal?.aborted) throw err;
    }
  }
}
