import { SerialPort } from 'serialport';
import { backoffDelay } from '../../lib/backoff.js';
import { errText, type Logger } from '../../lib/log.js';

export interface KeptOpenPortOptions {
  /** What is on this line, for logs ("relay", "meter"). */
  name: string;
  path: string;
  baudRate: number;
  log: Logger;
  /** Cap of the reopen backoff, ms. */
  reopenMaxMs?: number;
  /** Words before the line's name in log lines ("serial" on the CP's side). */
  logPrefix?: string;
  /** Every chunk received while this port is the current one. */
  onData: (chunk: Buffer, port: SerialPort) => void;
  /** The current port was lost (before it is reopened). */
  onLost?: () => void;
  /** A port was opened. */
  onOpen?: () => void;
}

/**
 * One serial port that stays open: opened in the background and reopened with backoff when it
 * fails or disappears (USB cable pulled, pty gone). Said once while it waits, once when back.
 * The CP's serial line and the board emulator's ports are both one of these.
 */
export class KeptOpenPort {
  port: SerialPort | undefined;
  opens = 0;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private waitingLogged = false;

  constructor(private readonly o: KeptOpenPortOptions) {}

  get isOpen(): boolean { return this.port?.isOpen === true; }
  private get label(): string { return this.o.logPrefix ? `${this.o.logPrefix} ${this.o.name}` : this.o.name; }

  /** Starts opening; resolves after the first attempt, whether it worked or not. */
  async start(): Promise<void> { await this.open(); }

  private async open(): Promise<void> {
    if (this.closed) return;
    let port: SerialPort;
    try {
      port = new SerialPort({ path: this.o.path, baudRate: this.o.baudRate, autoOpen: false });
      // Every error ends in the same place: drop the port and open it again later.
      port.on('error', (err) => this.lost(port, err));
      port.on('close', (err: unknown) => this.lost(port, err ?? new Error('closed')));
      port.on('data', (chunk: Buffer) => { if (port === this.port) this.o.onData(chunk, port); });
      await new Promise<void>((res, rej) => port.open((err) => (err ? rej(err) : res())));
    } catch (err) {
      if (!this.waitingLogged) {
        this.waitingLogged = true;
        this.o.log.warn({ line: this.o.name, path: this.o.path, err: errText(err) }, `${this.label} port ${this.o.path} not available, retrying with backoff`);
      }
      this.retry();
      return;
    }
    if (this.closed) { port.close(() => {}); return; }
    this.port = port;
    this.attempt = 0;
    this.opens++;
    this.waitingLogged = false;
    this.o.onOpen?.();
    this.o.log.info({ line: this.o.name, path: this.o.path, baud_rate: this.o.baudRate }, `${this.label} port open`);
  }

  /** Drops `port` if it is the current one and schedules a reopen. */
  lost(port: SerialPort, err: unknown): void {
    if (port !== this.port) return;
    this.port = undefined;
    if (port.isOpen) port.close(() => {});
    if (this.closed) return;
    this.o.log.warn({ line: this.o.name, path: this.o.path, err: errText(err) }, `${this.label} port lost, reopening`);
    this.o.onLost?.();
    this.retry();
  }

  private retry(): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => { this.timer = undefined; void this.open(); }, backoffDelay(this.attempt++, 100, this.o.reopenMaxMs ?? 2_000));
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    const port = this.port;
    this.port = undefined;
    if (port?.isOpen) await new Promise<void>((r) => port.close(() => r()));
  }
}
