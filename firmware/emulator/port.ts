import type { Logger } from '../../lib/log.js';
import { KeptOpenPort } from '../hal/kept-open-port.js';

/**
 * The emulator's end of a serial line: kept open, reopened with backoff when it disappears (the
 * pty pair was torn down), every chunk received handed to `onData`, whose replies are written back.
 */
export class EmulatorPort {
  private readonly kept: KeptOpenPort;

  constructor(o: { name: string; path: string; baudRate: number; log: Logger; onData: (chunk: Buffer) => Buffer[] }) {
    this.kept = new KeptOpenPort({
      ...o, reopenMaxMs: 1_000,
      onData: (chunk, port) => {
        for (const reply of o.onData(chunk)) port.write(reply, (err) => { if (err) this.kept.lost(port, err); });
      },
    });
  }

  get isOpen(): boolean { return this.kept.isOpen; }

  start(): Promise<void> { return this.kept.start(); }

  /** Bytes sent unprompted (line noise between requests). */
  write(bytes: Buffer): boolean {
    const port = this.kept.port;
    if (!port?.isOpen) return false;
    port.write(bytes);
    return true;
  }

  close(): Promise<void> { return this.kept.close(); }
}
