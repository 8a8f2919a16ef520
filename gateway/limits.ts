import fs from 'node:fs';
import type net from 'node:net';
import type { Logger } from '../lib/log.js';

/**
 * Limits at the gateway's MQTT edge. Every one is a plain number with a documented default
 * (docs/security-gateway.md) and a CLI flag; none needs a broker restart to understand.
 */
export interface EdgeLimits {
  /** Largest MQTT packet after CONNECT (fixed header + remaining length), checked from the first 5 bytes, before anything is buffered. */
  maxPacketBytes: number;
  /** Largest CONNECT packet (client id, credentials, will). Anything bigger is closed at once. */
  maxConnectBytes: number;
  /** TCP + TLS connections held at once. Lowered at start to fit the process's file-descriptor limit. */
  maxConnections: number;
  /** Connections that have not finished CONNECT, in all. */
  maxPending: number;
  /** Connections from one address that have not finished CONNECT. */
  maxPendingPerAddress: number;
  /** New connections per second from one address (token bucket refill) ... */
  connectRatePerAddress: number;
  /** ... and the burst it allows. */
  connectBurstPerAddress: number;
  /** A connection that has not sent a whole CONNECT by then is closed. */
  connectTimeoutMs: number;
  /** Live connections of one non-CP identity (a CP has exactly one: the newest replaces the older). */
  maxConnectionsPerIdentity: number;
}

export const DEFAULT_EDGE_LIMITS: EdgeLimits = {
  maxPacketBytes: 256 * 1024,
  maxConnectBytes: 16 * 1024,
  maxConnections: 30_000, // 10,000 CPs and their central, drivers and monitors fit under a 20,000 fd limit
  maxPending: 2_000,
  maxPendingPerAddress: 512,
  connectRatePerAddress: 500,
  connectBurstPerAddress: 2_000,
  connectTimeoutMs: 10_000,
  maxConnectionsPerIdentity: 16,
};

/** Soft RLIMIT_NOFILE of this process (Linux), or undefined where it cannot be read. */
export function fdLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch { return undefined; }
}

/** File descriptors kept back for everything that is not an MQTT client (Kafka, HTTP, logs, files). */
export const FD_HEADROOM = 256;

/** The connection cap that fits: the configured one, or less if the fd limit is lower. */
export function effectiveMaxConnections(configured: number, limit = fdLimit()): number {
  if (limit === undefined) return configured;
  return Math.max(16, Math.min(configured, limit - FD_HEADROOM));
}

/**
 * Log lines rate-limited per source (an address or an identity): at most `perWindow` lines per
 * source per window, then one line saying how many were suppressed when the window turns.
 * At most `maxSources` sources are tracked (the oldest forgotten), so a storm from many
 * addresses cannot grow it either.
 */
export class LogLimiter {
  private readonly seen = new Map<string, { start: number; n: number; dropped: number }>();
  suppressed = 0;
  constructor(private readonly log: Logger, private readonly perWindow = 5, private readonly windowMs = 10_000, private readonly maxSources = 10_000, private readonly now = () => Date.now()) {}

  warn(source: string, obj: Record<string, unknown>, msg: string): void { this.emit('warn', source, obj, msg); }
  info(source: string, obj: Record<string, unknown>, msg: string): void { this.emit('info', source, obj, msg); }

  private emit(level: 'warn' | 'info', source: string, obj: Record<string, unknown>, msg: string): void {
    const t = this.now();
    let s = this.seen.get(source);
    if (s && t - s.start >= this.windowMs) {
      if (s.dropped) this.log.warn({ source, suppressed: s.dropped, window_ms: this.windowMs }, 'log lines suppressed for this source');
      this.seen.delete(source);
      s = undefined;
    }
    if (!s) {
      if (this.seen.size >= this.maxSources) this.seen.delete(this.seen.keys().next().value!);
      s = { start: t, n: 0, dropped: 0 };
      this.seen.set(source, s);
    }
    if (s.n++ < this.perWindow) this.log[level](obj, msg);
    else { s.dropped++; this.suppressed++; }
  }
}

/**
 * Follows MQTT packet boundaries in the raw byte stream (fixed header, remaining length,
 * body skipped) so an oversize packet is refused from its first five bytes, before aedes'
 * parser would buffer it whole. The first packet must be a CONNECT.
 */
export class PacketGuard {
  private state: 'header' | 'length' | 'body' = 'header';
  private first = true;
  private remaining = 0;
  private mult = 1;
  private lenBytes = 0;
  constructor(private readonly maxConnect: number, private readonly maxPacket: number) {}

  /** Undefined while the stream is acceptable, else why it is not. */
  feed(buf: Buffer): 'not_connect' | 'packet_too_large' | 'bad_length' | undefined {
    let i = 0;
    while (i < buf.length) {
      if (this.state === 'body') {
        const n = Math.min(this.remaining, buf.length - i);
        this.remaining -= n; i += n;
        if (this.remaining === 0) this.state = 'header';
        continue;
      }
      const b = buf[i++]!;
      if (this.state === 'header') {
        if (this.first && b >> 4 !== 1) return 'not_connect';
        this.state = 'length'; this.remaining = 0; this.mult = 1; this.lenBytes = 0;
        continue;
      }
      this.remaining += (b & 0x7f) * this.mult;
      this.mult *= 128;
      if (++this.lenBytes > 4) return 'bad_length';
      const limit = this.first ? this.maxConnect : this.maxPacket;
      // Even a partial length already past the limit is enough to refuse.
      if (this.remaining + 1 + this.lenBytes > limit) return 'packet_too_large';
      if (b & 0x80) continue;
      this.first = false;
      this.state = this.remaining ? 'body' : 'header';
    }
    return undefined;
  }
}

/**
 * Makes every read of a socket pass through a PacketGuard. aedes consumes the socket in
 * paused mode (`'readable'` then `read()`), so wrapping that one method on this socket
 * instance sees every byte before the MQTT parser does (test/security checks it still does).
 */
export function guardReads(sock: net.Socket, guard: PacketGuard, onReject: (reason: string) => void): void {
  const read = sock.read.bind(sock);
  sock.read = function guardedRead(n?: number) {
    const chunk = read(n) as Buffer | string | null;
    if (chunk === null || sock.destroyed) return chunk;
    const why = guard.feed(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    if (!why) return chunk;
    onReject(why);
    sock.destroy();
    return null;
  } as typeof sock.read;
}

/** Admission of new connections: a global cap, pending (pre-CONNECT) caps, and a per-address token bucket. */
export class ConnectionGate {
  open = 0;
  pending = 0;
  private readonly perAddr = new Map<string, { pending: number; tokens: number; at: number }>();
  constructor(private readonly l: EdgeLimits, private readonly now = () => Date.now()) {}

  /** Admits a new connection from `addr` (counted open and pending) or says why not. */
  admit(addr: string): 'max_connections' | 'max_pending' | 'pending_per_address' | 'connection_rate' | undefined {
    if (this.open >= this.l.maxConnections) return 'max_connections';
    if (this.pending >= this.l.maxPending) return 'max_pending';
    const t = this.now();
    let a = this.perAddr.get(addr);
    if (!a) { a = { pending: 0, tokens: this.l.connectBurstPerAddress, at: t }; this.perAddr.set(addr, a); }
    a.tokens = Math.min(this.l.connectBurstPerAddress, a.tokens + ((t - a.at) / 1000) * this.l.connectRatePerAddress);
    a.at = t;
    if (a.pending >= this.l.maxPendingPerAddress) return 'pending_per_address';
    if (a.tokens < 1) return 'connection_rate';
    a.tokens -= 1;
    a.pending++; this.pending++; this.open++;
    return undefined;
  }

  /** The connection finished CONNECT (or closed before): no longer pending. */
  settled(addr: string): void {
    this.pending--;
    const a = this.perAddr.get(addr);
    if (a) a.pending--;
  }

  closed(): void { this.open--; }

  /** Forgets addresses with nothing pending and a full bucket (call now and then). */
  prune(): void {
    const t = this.now();
    for (const [k, a] of this.perAddr) {
      if (a.pending <= 0 && a.tokens + ((t - a.at) / 1000) * this.l.connectRatePerAddress >= this.l.connectBurstPerAddress) this.perAddr.delete(k);
    }
  }

  get addresses(): number { return this.perAddr.size; }
}
