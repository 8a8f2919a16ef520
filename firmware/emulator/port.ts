import { SerialPort } from 'serialport';
import { backoffDelay } from '../../lib/backoff.js';
import { errText, type Logger } from '../../lib/log.js';

/**
 * The emulator's end of a serial line: kept open, reopened with backoff when it disappears (the
 * pty pair was torn down), every chunk received handed to `onData`, whose replies are written back.
 */
export class EmulatorPort {
  private port: SerialPort | undefined;
  private timer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private closed = false;
  private waitingLogged = false;

  constructor(private readonly o: { name: string; path: string; baudRate: number; log: Logger; onData: (chunk: Buffer) => Buffer[] }) {}

  get isOpen(): boolean { return this.port?.isOpen === true; }

  async start(): Promise<void> { await this.open(); }

  private async open(): Promise<void> {
    if (this.closed) return;
    const port = new SerialPort({ path: this.o.path, baudRate: this.o.baudRate, autoOpen: false });
    port.on('error', (err) => this.lost(port, err));
    port.on('close', (err: unknown) => this.lost(port, err ?? new Error('closed')));
    port.on('data', (chunk: Buffer) => {
      if (port !== this.port) return;
      for (const reply of this.o.onData(chunk)) port.write(reply, (err) => { if (err) this.lost(port, err); });
    });
    try {
      await new Promise<void>((res, rej) => port.open((err) => (err ? rej(err) : res())));
    } catch (err) {
      if (!this.waitingLogged) {
        this.waitingLogged = true;
        this.o.log.warn({ line: this.o.name, path: this.o.path, err: errText(err) }, `${this.o.name} port ${this.o.path} not available, retrying with backoff`);
      }
      this.retry();
      return;
    }
    if (this.closed) { port.close(() => {}); return; }
    this.port = port;
    this.attempt = 0;
    this.waitingLogged = false;
    this.o.log.info({ line: this.o.name, path: this.o.path }, `${this.o.name} port open`);
  }

  private lost(port: SerialPort, err: unknown) {
    if (port !== this.port) return;
    this.port = undefined;
    if (port.isOpen) port.close(() => {});
    if (this.closed) return;
    this.o.log.warn({ line: this.o.name, path: this.o.path, err: errText(err) }, `${this.o.name} port lost, reopening`);
    this.retry();
  }

  private retry() {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => { this.timer = undefined; void this.open(); }, backoffDelay(this.attempt++, 100, 1_000));
  }

  /** Bytes sent unprompted (line noise between requests). */
  write(bytes: Buffer): boolean {
    if (!this.port?.isOpen) return false;
    this.port.write(bytes);
    return true;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    const port = this.port;
    this.port = undefined;
    if (port?.isOpen) await new Promise<void>((r) => port.close(() => r()));
  }
}
