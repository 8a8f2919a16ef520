import type { ServerResponse } from 'node:http';

/**
 * The live feed's clients (server-sent events). Every message is a whole picture (a snapshot)
 * or a keepalive, so a client that falls behind needs only the newest one: while its socket
 * is backed up (res.write returned false) nothing more is written to it, and the newest
 * snapshot is kept aside and sent on 'drain'. A message is encoded once into one Buffer that
 * every client's stream references (no copy per client). A client that has not drained for
 * `maxStallMs`, or holds more than `maxBufferedBytes` unsent, is dropped and counted. What a
 * client that never reads costs is so one message at most, whatever the rate of changes.
 */
export interface SseOptions { maxClients: number; maxBufferedBytes: number; maxStallMs: number; now?: () => number }

export interface SseCounters { connected: number; dropped_slow: number; refused_full: number; skipped_behind: number }

interface Client { res: ServerResponse; stalledSince: number | null; pending: Buffer | null }

const KEEPALIVE = Buffer.from(': keepalive\n\n');

export class SseHub {
  private readonly clients = new Map<ServerResponse, Client>();
  readonly counters: SseCounters = { connected: 0, dropped_slow: 0, refused_full: 0, skipped_behind: 0 };
  private readonly now: () => number;

  constructor(private readonly o: SseOptions) { this.now = o.now ?? Date.now; }

  get size(): number { return this.clients.size; }
  get full(): boolean { return this.clients.size >= this.o.maxClients; }

  /** Room for one more: when full, the client stalled longest is dropped for it (a reader must not wait behind non-readers). */
  makeRoom(): boolean {
    if (!this.full) return true;
    let victim: Client | undefined;
    for (const c of this.clients.values()) if (c.stalledSince !== null && (!victim || c.stalledSince < victim.stalledSince!)) victim = c;
    if (!victim) return false;
    this.drop(victim);
    return true;
  }

  /** Takes a response whose head is written; `first` is the opening message. */
  add(res: ServerResponse, first: string): void {
    const c: Client = { res, stalledSince: null, pending: null };
    this.clients.set(res, c);
    this.counters.connected++;
    res.on('drain', () => this.onDrain(c));
    res.once('close', () => this.clients.delete(res));
    this.write(c, Buffer.from(first));
  }

  refuse(): void { this.counters.refused_full++; }

  /** A snapshot for everyone (replaces what a backed-up client had waiting). */
  broadcast(msg: string): void {
    const buf = Buffer.from(msg);
    for (const c of [...this.clients.values()]) {
      if (c.stalledSince !== null) { c.pending = buf; this.counters.skipped_behind++; this.check(c); continue; }
      this.write(c, buf);
    }
  }

  /** A comment line: sent only to clients that keep up (it also drops those stalled too long). */
  keepalive(): void {
    for (const c of [...this.clients.values()]) {
      if (c.stalledSince !== null) { this.check(c); continue; }
      this.write(c, KEEPALIVE);
    }
  }

  closeAll(): void {
    for (const c of this.clients.values()) c.res.end();
    this.clients.clear();
  }

  private write(c: Client, msg: Buffer): void {
    if (c.res.destroyed || c.res.writableEnded) return;
    // Never written to while stalled, so what it holds is the message that made it stall.
    if (!c.res.write(msg)) c.stalledSince ??= this.now();
  }

  private onDrain(c: Client): void {
    c.stalledSince = null;
    const p = c.pending;
    c.pending = null;
    if (p) this.write(c, p);
  }

  private check(c: Client): void {
    const tooMuch = c.res.writableLength > this.o.maxBufferedBytes;
    const tooLong = c.stalledSince !== null && this.now() - c.stalledSince > this.o.maxStallMs;
    if (!tooMuch && !tooLong) return;
    this.drop(c);
  }

  private drop(c: Client): void {
    this.counters.dropped_slow++;
    this.clients.delete(c.res);
    c.res.destroy();
  }
}
