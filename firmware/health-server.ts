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

export interface HealthServerOptions { host?: string; port: number; log: Logger; cpId: string; maxConnections?: number; idleMs?: number }
export interface HealthServer {
  readonly port: number;
  readonly counters: { requests: number; errors: number; oversize: number };
  close(): Promise<void>;
}

const isFaultKind = (k: string): k is FaultKind => (FAULT_KINDS as readonly string[]).includes(k);

/** Answers one request line (already split, without the newline). Pure apart from the target's side effects. */
export function answerHealthLine(line: string, t: HealthTarget): { reply: string; error: boolean } {
  const req = parseHealthRequest(line);
  if ('error' in req) return { reply: `ERR ${req.error}`, error: true };
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
export function startHealthServer(o: HealthServerOptions, target: HealthTarget): Promise<HealthServer> {
  const counters = { requests: 0, errors: 0, oversize: 0 };
  const sockets = new Set<net.Socket>();
  let warned = 0;
  const warn = (msg: string, extra: Record<string, unknown>) => {
    // Garbage can arrive in floods: log the first ones, then every 100th.
    if (warned++ < 5 || warned % 100 === 0) o.log.warn({ cp_id: o.cpId, ...extra, errors: counters.errors }, msg);
  };

  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.setTimeout(o.idleMs ?? 120_000, () => sock.destroy());
    sock.on('error', () => undefined); // peers vanish; nothing to do
    sock.on('close', () => sockets.delete(sock));
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
        const { reply, error } = answerHealthLine(line, target);
        if (error) { counters.errors++; warn('bad health request', { reply }); }
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
  server.maxConnections = o.maxConnections ?? 256;

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
          for (const s of sockets) s.destroy();
          server.close(() => r());
        }),
      });
    });
  });
}
