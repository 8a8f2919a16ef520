import net from 'node:net';
import { FAULT_KINDS, HEALTH_MAX_LINE, parseHealthRequest, type FaultKind } from '../protocol/index.js';
import type { Logger } from '../lib/log.js';

/** What the health port asks of the engine. */
export interface HealthTarget {
  health(): { ok: true } | { ok: false; reason: string };
  snapshot(): Record<string, unknown>;
  injectFault(kind: FaultKind): void;
  repair(kind?: FaultKind): void;
}

/**
 * Who may send FAULT/REPAIR: `loopback` (default) = only peers on this machine; `any` = anyone who
 * reaches the port (a lab that injects faults from another host); PING and STATUS are for everyone.
 */
export type HealthControl = 'loopback' | 'any';

export interface HealthServerOptions {
  host?: string; port: number; log: Logger; cpId: string;
  /** Connections held at once (default 256). When full, the longest-idle one makes room for a new one. */
  maxConnections?: number;
  /** Connections held from one address (default 16): one host cannot take the port's slots. */
  maxPerAddress?: number;
  /** A connection that sends no request for this long is closed (default 30 s; a monitor polls every second). */
  idleMs?: number;
  control?: HealthControl;
  /** Which peers count as this machine (default: 127.0.0.0/8 and ::1). A seam for tests. */
  isLocal?: (addr: string) => boolean;
}
export interface HealthServer {
  readonly port: number;
  readonly counters: { requests: number; errors: number; oversize: number; refused: number; evicted: number; control_refused: number };
  close(): Promise<void>;
}

const isFaultKind = (k: string): k is FaultKind => (FAULT_KINDS as readonly string[]).includes(k);

/** Answers one request line (already split, without the newline). Pure apart from the target's side effects. */
export function answerHealthLine(line: string, t: HealthTarget, ctx: { control: boolean } = { control: true }): { reply: string; error: boolean; controlRefused?: boolean } {
  const req = parseHealthRequest(line);
  if ('error' in req) return { reply: `ERR ${req.error}`, error: true };
  if ((req.verb === 'FAULT' || req.verb === 'REPAIR') && !ctx.control) {
    return { reply: `ERR ${req.verb} is accepted only from this machine (CP_ENGINE_HEALTH_CONTROL=any opens it)`, error: true, controlRefused: true };
  }
  switch (req.verb) {
    case 'PING': {
      const h = t.health();
      return { reply: h.ok ? 'OK' : `KO ${h.reason}`, error: false };
    }
    case 'STATUS': return { reply: `OK ${JSON.stringify(t.snapshot())}`, error: false };
    case 'FAULT': {
      const kind = req.kind.toLowerCase();
      if (!isFaultKind(kind)) return { reply: `ERR unknown fault kind (one of ${FAULT_KINDS.join(', ')})`, error: true };
      try { t.injectFault(kind); } catch (err) { return { reply: `ERR ${(err as Error).message}`, error: true }; }
      return { reply: `OK fault ${kind} injected`, error: false };
    }
    case 'REPAIR': {
      const kind = req.kind?.toLowerCase();
      if (kind !== undefined && !isFaultKind(kind)) return { reply: `ERR unknown fault kind (one of ${FAULT_KINDS.join(', ')})`, error: true };
      try { t.repair(kind); } catch (err) { return { reply: `ERR ${(err as Error).message}`, error: true }; }
      return { reply: 'OK repaired', error: false };
    }
  }
}

/**
 * The engine's TCP health port: newline-terminated ASCII lines, one reply each. A line longer
 * than HEALTH_MAX_LINE gets `ERR line too long` and the connection is closed; bad lines get
 * `ERR <reason>`; both are counted and the port keeps serving everyone else.
 */
export const isLoopback = (addr: string) => addr === '::1' || /^(::ffff:)?127\./.test(addr);

export function startHealthServer(o: HealthServerOptions, target: HealthTarget): Promise<HealthServer> {
  const counters = { requests: 0, errors: 0, oversize: 0, refused: 0, evicted: 0, control_refused: 0 };
  const max = o.maxConnections ?? 256;
  const maxPerAddress = o.maxPerAddress ?? 16;
  const isLocal = o.isLocal ?? isLoopback;
  /** Open connections with the time of their last request (or connect), in insertion order. */
  const sockets = new Map<net.Socket, number>();
  const perAddr = new Map<string, number>();
  let warned = 0;
  const warn = (msg: string, extra: Record<string, unknown>) => {
    // Garbage can arrive in floods: log the first ones, then every 100th.
    if (warned++ < 5 || warned % 100 === 0) o.log.warn({ cp_id: o.cpId, ...extra, errors: counters.errors }, msg);
  };

  const server = net.createServer((sock) => {
    const addr = sock.remoteAddress ?? 'unknown';
    sock.on('error', () => undefined); // peers vanish; nothing to do
    if ((perAddr.get(addr) ?? 0) >= maxPerAddress) {
      counters.refused++;
      warn('health port: too many connections from one address, refused', { addr, max_per_address: maxPerAddress });
      sock.destroy();
      return;
    }
    if (sockets.size >= max) {
      // Full: the longest-idle connection makes room, so a flood of idle sockets cannot lock out a
      // monitor that polls every second (its connection is never the idlest).
      let idlest: net.Socket | undefined; let at = Infinity;
      for (const [s, t] of sockets) if (t < at) { at = t; idlest = s; }
      counters.evicted++;
      warn('health port full: longest-idle connection closed to make room', { max_connections: max });
      idlest?.destroy();
      if (idlest) forget(idlest);
    }
    const control = o.control === 'any' || isLocal(addr);
    sockets.set(sock, Date.now());
    perAddr.set(addr, (perAddr.get(addr) ?? 0) + 1);
    let counted = true;
    function forgetThis() { if (counted) { counted = false; forget(sock, addr); } }
    closers.set(sock, forgetThis);
    sock.setTimeout(o.idleMs ?? 30_000, () => sock.destroy());
    sock.on('close', forgetThis);
    let buf: Buffer = Buffer.alloc(0);
    let ended = false;
    sock.on('data', (chunk: Buffer) => {
      if (ended) return;
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      let nl: number;
      while ((nl = buf.indexOf(0x0a)) >= 0) {
        const raw = buf.subarray(0, nl);
        buf = buf.subarray(nl + 1);
        if (raw.length > HEALTH_MAX_LINE) { tooLong(); return; }
        const line = raw.toString('latin1').replace(/\r$/, '');
        if (!line.trim()) continue;
        counters.requests++;
        if (sockets.has(sock)) sockets.set(sock, Date.now());
        const { reply, error, controlRefused } = answerHealthLine(line, target, { control });
        if (controlRefused) { counters.control_refused++; warn('FAULT/REPAIR from another host refused', { addr }); }
        else if (error) { counters.errors++; warn('bad health request', { reply }); }
        if (!sock.destroyed) sock.write(`${reply}\n`);
      }
      if (buf.length > HEALTH_MAX_LINE) tooLong();
    });
    function tooLong() {
      counters.errors++;
      counters.oversize++;
      warn('oversize health request, closing connection', { limit: HEALTH_MAX_LINE });
      buf = Buffer.alloc(0);
      ended = true;
      sock.end(`ERR line too long (max ${HEALTH_MAX_LINE} bytes)\n`);
    }
  });
  const closers = new Map<net.Socket, () => void>();
  function forget(s: net.Socket, addr?: string) {
    const c = closers.get(s);
    if (addr === undefined && c) return c();
    closers.delete(s);
    sockets.delete(s);
    if (addr !== undefined) { const n = (perAddr.get(addr) ?? 1) - 1; if (n > 0) perAddr.set(addr, n); else perAddr.delete(addr); }
  }
  // A hard ceiling on descriptors (eviction keeps `max`; this only guards against a burst between accepts).
  server.maxConnections = max * 2;

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      server.on('error', (err) => o.log.warn({ cp_id: o.cpId, err: err.message }, 'health port error'));
      const port = (server.address() as net.AddressInfo).port;
      resolve({
        port,
        counters,
        close: () => new Promise<void>((r) => {
          for (const s of sockets.keys()) s.destroy();
          server.close(() => r());
        }),
      });
    });
  });
}
