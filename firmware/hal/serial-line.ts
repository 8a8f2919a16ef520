import type { Logger } from '../../lib/log.js';
import { KeptOpenPort } from './kept-open-port.js';

/** Bytes kept while no request waits for them (a babbling line must not grow memory). */
const MAX_IDLE_BYTES = 4096;

export interface SerialLineOptions {
  /** What is on this line, for logs ("relay", "meter"). */
  name: string;
  path: string;
  baudRate: number;
  log: Logger;
  /** Cap of the reopen backoff, ms. */
  reopenMaxMs?: number;
}

/** What a transaction's `take` says about the bytes received so far. */
export type Take<T> = { done: true; value: T; consumed: number } | { done: false; consumed: number };
export type TransactResult<T> = { ok: true; value: T } | { ok: false; why: 'timeout' | 'closed' };

/**
 * A serial line for request/response transactions over a port that stays open (reopened with
 * backoff when it goes): transactions run one at a time; bytes that arrive between them are
 * stale and dropped (counted).
 */
export class SerialLine {
  private readonly kept: KeptOpenPort;
  private rx: Buffer = Buffer.alloc(0);
  private waiter: (() => void) | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  /** Bytes dropped because no transaction was waiting for them. */
  staleBytes = 0;

  constructor(o: SerialLineOptions) {
    this.kept = new KeptOpenPort({
      ...o, reopenMaxMs: o.reopenMaxMs ?? 2_000, logPrefix: 'serial',
      onData: (chunk) => {
        this.rx = this.rx.length ? Buffer.concat([this.rx, chunk]) : chunk;
        if (this.waiter) this.waiter();
        else if (this.rx.length > MAX_IDLE_BYTES) { this.staleBytes += this.rx.length; this.rx = Buffer.alloc(0); }
      },
      onOpen: () => { this.rx = Buffer.alloc(0); },
      onLost: () => this.waiter?.(),
    });
  }

  get isOpen(): boolean { return this.kept.isOpen; }
  get opens(): number { return this.kept.opens; }
  private get port() { return this.kept.port; }

  /** Starts opening; resolves after the first attempt, whether it worked or not. */
  start(): Promise<void> { return this.kept.start(); }

  /**
   * Writes `tx` (if any) and waits for `take` to accept the bytes received, up to `timeoutMs`.
   * `take` sees the whole receive buffer and says how much of it to drop.
   */
  transact<T>(tx: Buffer | undefined, take: (rx: Buffer) => Take<T>, timeoutMs: number): Promise<TransactResult<T>> {
    const run = () => this.run(tx, take, timeoutMs);
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => {});
    return p;
  }

  private async run<T>(tx: Buffer | undefined, take: (rx: Buffer) => Take<T>, timeoutMs: number): Promise<TransactResult<T>> {
    const port = this.port;
    if (!port || !port.isOpen) return { ok: false, why: 'closed' };
    // Whatever came before our request is not its answer.
    this.staleBytes += this.rx.length;
    this.rx = Buffer.alloc(0);
    if (tx) {
      const wrote = await new Promise<boolean>((res) => port.write(tx, (err) => {
        if (err) { this.kept.lost(port, err); res(false); } else res(true);
      }));
      if (!wrote) return { ok: false, why: 'closed' };
    }
    return new Promise<TransactResult<T>>((resolve) => {
      const finish = (r: TransactResult<T>) => { clearTimeout(timer); this.waiter = undefined; resolve(r); };
      const check = () => {
        if (port !== this.port) return finish({ ok: false, why: 'closed' });
        const r = take(this.rx);
        if (r.consumed) this.rx = this.rx.subarray(r.consumed);
        if (r.done) finish({ ok: true, value: r.value });
      };
      const timer = setTimeout(() => finish({ ok: false, why: 'timeout' }), timeoutMs);
      this.waiter = check;
      check();
    });
  }

  /** Writes without waiting for an answer (LCUS commands have none). */
  async send(tx: Buffer): Promise<boolean> {
    const r = await this.transact(tx, () => ({ done: true, value: true, consumed: 0 }), 1_000);
    return r.ok;
  }

  async close(): Promise<void> {
    const closing = this.kept.close();
    this.waiter?.();
    await closing;
  }
}
