import { SerialPort } from 'serialport';
import { backoffDelay } from '../../lib/backoff.js';
import { errText, type Logger } from '../../lib/log.js';

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
 * One serial port that stays open: opened in the background and reopened with backoff when it
 * fails or disappears (USB cable pulled, pty gone). Request/response transactions run one at a
 * time; bytes that arrive between transactions are stale and dropped (counted).
 */
export class SerialLine {
  private port: SerialPort | undefined;
  private rx: Buffer = Buffer.alloc(0);
  private waiter: (() => void) | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private attempt = 0;
  private reopenTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private waitingLogged = false;
  /** Bytes dropped because no transaction was waiting for them. */
  staleBytes = 0;
  opens = 0;

  constructor(private readonly o: SerialLineOptions) {}

  get isOpen(): boolean { return this.port?.isOpen === true; }

  /** Starts opening; resolves after the first attempt, whether it worked or not. */
  async start(): Promise<void> {
    await this.tryOpen();
  }

  private async tryOpen(): Promise<void> {
    if (this.closed) return;
    let port: SerialPort;
    try {
      port = new SerialPort({ path: this.o.path, baudRate: this.o.baudRate, autoOpen: false });
      // Every error ends in the same place: drop the port and open it again later.
      port.on('error', (err) => this.lost(port, err));
      port.on('close', (err: unknown) => this.lost(port, err ?? new Error('closed')));
      port.on('data', (chunk: Buffer) => {
        if (port !== this.port) return;
        this.rx = this.rx.length ? Buffer.concat([this.rx, chunk]) : chunk;
        if (this.waiter) this.waiter();
        else if (this.rx.length > MAX_IDLE_BYTES) { this.staleBytes += this.rx.length; this.rx = Buffer.alloc(0); }
      });
      await new Promise<void>((res, rej) => port.open((err) => (err ? rej(err) : res())));
    } catch (err) {
      if (!this.waitingLogged) {
        this.waitingLogged = true;
        this.o.log.warn({ line: this.o.name, path: this.o.path, err: errText(err) }, `serial ${this.o.name} port ${this.o.path} not available, retrying with backoff`);
      }
      this.scheduleReopen();
      return;
    }
    if (this.closed) { port.close(() => {}); return; }
    this.port = port;
    this.rx = Buffer.alloc(0);
    this.attempt = 0;
    this.opens++;
    this.waitingLogged = false;
    this.o.log.info({ line: this.o.name, path: this.o.path, baud_rate: this.o.baudRate }, `serial ${this.o.name} port open`);
  }

  private lost(port: SerialPort, err: unknown) {
    if (port !== this.port) return;
    this.port = undefined;
    if (port.isOpen) port.close(() => {});
    if (this.closed) return;
    this.o.log.warn({ line: this.o.name, path: this.o.path, err: errText(err) }, `serial ${this.o.name} port lost, reopening`);
    this.waiter?.();
    this.scheduleReopen();
  }

  private scheduleReopen() {
    if (this.closed || this.reopenTimer) return;
    const delay = backoffDelay(this.attempt++, 100, this.o.reopenMaxMs ?? 2_000);
    this.reopenTimer = setTimeout(() => { this.reopenTimer = undefined; void this.tryOpen(); }, delay);
  }

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
        if (err) { this.lost(port, err); res(false); } else res(true);
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
    this.closed = true;
    if (this.reopenTimer) clearTimeout(this.reopenTimer);
    const port = this.port;
    this.port = undefined;
    this.waiter?.();
    if (port?.isOpen) await new Promise<void>((r) => port.close(() => r()));
  }
}
