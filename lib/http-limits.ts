import type http from 'node:http';
import type net from 'node:net';
import { InvalidArgumentError, Option, type Command } from 'commander';

/**
 * Limits every HTTP server of ours applies (central, the gateway's /health+/metrics, the
 * driver's --http, the registry, the control port of `evcharging up`). Node's defaults let a
 * slowloris client hold a socket for minutes and accept connections until the process runs out
 * of file descriptors; these bound both:
 *
 * - headers must arrive within `headersTimeoutMs`, the whole request within `requestTimeoutMs`;
 * - a socket idle (nothing read or written) for `idleTimeoutMs` is closed, a kept-alive one
 *   after `keepAliveTimeoutMs`, and after `maxRequestsPerSocket` requests;
 * - at most `maxConnections` sockets are open: a new connection beyond the cap closes the
 *   oldest socket that has no request in flight (a slowloris socket still sending its headers
 *   counts as idle), so a burst of stalled sockets cannot lock out a health check; when every
 *   socket is busy the new one is refused. Each refusal or eviction is counted.
 */
export interface HttpLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxRequestsPerSocket: number;
  maxConnections: number;
}

export const DEFAULT_HTTP_LIMITS: Readonly<HttpLimits> = Object.freeze({
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  idleTimeoutMs: 60_000,
  keepAliveTimeoutMs: 5_000,
  maxRequestsPerSocket: 1_000,
  maxConnections: 1_024,
});

/** Bounds a value must lie in to be taken (an absurd value is refused at the boundary, not clamped). */
const RANGES: Record<keyof HttpLimits, [number, number]> = {
  headersTimeoutMs: [100, 600_000],
  requestTimeoutMs: [100, 3_600_000],
  idleTimeoutMs: [100, 3_600_000],
  keepAliveTimeoutMs: [100, 600_000],
  maxRequestsPerSocket: [1, 1_000_000],
  maxConnections: [1, 1_000_000],
};

const FLAGS: Record<keyof HttpLimits, { flag: string; env: string; help: string }> = {
  headersTimeoutMs: { flag: 'http-headers-timeout-ms', env: 'HTTP_HEADERS_TIMEOUT_MS', help: 'request headers must arrive within this (slowloris)' },
  requestTimeoutMs: { flag: 'http-request-timeout-ms', env: 'HTTP_REQUEST_TIMEOUT_MS', help: 'a whole request must arrive within this' },
  idleTimeoutMs: { flag: 'http-idle-timeout-ms', env: 'HTTP_IDLE_TIMEOUT_MS', help: 'a socket with no traffic this long is closed' },
  keepAliveTimeoutMs: { flag: 'http-keep-alive-timeout-ms', env: 'HTTP_KEEP_ALIVE_TIMEOUT_MS', help: 'a kept-alive socket waits this long for its next request' },
  maxRequestsPerSocket: { flag: 'http-max-requests-per-socket', env: 'HTTP_MAX_REQUESTS_PER_SOCKET', help: 'requests one socket may carry' },
  maxConnections: { flag: 'http-max-connections', env: 'HTTP_MAX_CONNECTIONS', help: 'open sockets at most (beyond it the oldest idle one is closed)' },
};

export function checkHttpLimits(l: HttpLimits): HttpLimits {
  for (const k of Object.keys(RANGES) as Array<keyof HttpLimits>) {
    const [lo, hi] = RANGES[k];
    const v = l[k];
    if (!Number.isInteger(v) || v < lo || v > hi) throw new RangeError(`${FLAGS[k].flag} must be an integer from ${lo} to ${hi} (got ${String(v)})`);
  }
  if (l.headersTimeoutMs > l.requestTimeoutMs) throw new RangeError('http-headers-timeout-ms must not exceed http-request-timeout-ms');
  return l;
}

/** Adds the limit flags (with env vars, defaults and range checks) to a command; `envPrefix` e.g. `CENTRAL_`. */
export function addHttpLimitOptions(cmd: Command, envPrefix: string): Command {
  for (const k of Object.keys(FLAGS) as Array<keyof HttpLimits>) {
    const f = FLAGS[k];
    const [lo, hi] = RANGES[k];
    cmd.addOption(new Option(`--${f.flag} <n>`, `${f.help} (${lo}-${hi})`).env(`${envPrefix}${f.env}`).default(DEFAULT_HTTP_LIMITS[k])
      .argParser((v: string) => {
        const n = Number(v);
        if (!/^\d+$/.test(v) || n < lo || n > hi) throw new InvalidArgumentError(`expected an integer from ${lo} to ${hi}`);
        return n;
      }));
  }
  return cmd;
}

/** The limits out of parsed commander options (camel-cased flags). */
export function httpLimitsFrom(o: Record<string, unknown>): HttpLimits {
  const pick = (k: keyof HttpLimits, camel: string) => (typeof o[camel] === 'number' ? (o[camel] as number) : DEFAULT_HTTP_LIMITS[k]);
  return checkHttpLimits({
    headersTimeoutMs: pick('headersTimeoutMs', 'httpHeadersTimeoutMs'),
    requestTimeoutMs: pick('requestTimeoutMs', 'httpRequestTimeoutMs'),
    idleTimeoutMs: pick('idleTimeoutMs', 'httpIdleTimeoutMs'),
    keepAliveTimeoutMs: pick('keepAliveTimeoutMs', 'httpKeepAliveTimeoutMs'),
    maxRequestsPerSocket: pick('maxRequestsPerSocket', 'httpMaxRequestsPerSocket'),
    maxConnections: pick('maxConnections', 'httpMaxConnections'),
  });
}

/** Options for `http.createServer` (or fastify's `http`): how often Node checks the header and request deadlines. */
export function serverOptionsFor(l: HttpLimits): http.ServerOptions {
  return {
    headersTimeout: l.headersTimeoutMs, requestTimeout: l.requestTimeoutMs, keepAliveTimeout: l.keepAliveTimeoutMs,
    // Node checks those deadlines on this interval (30 s by default, far too lax for a 10 s header limit).
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(l.headersTimeoutMs / 4))),
  };
}

/** Fastify constructor options carrying the same limits. */
export function fastifyLimitOptions(l: HttpLimits) {
  return {
    connectionTimeout: l.idleTimeoutMs, keepAliveTimeout: l.keepAliveTimeoutMs, requestTimeout: l.requestTimeoutMs,
    maxRequestsPerSocket: l.maxRequestsPerSocket, http: serverOptionsFor(l),
  };
}

export interface ConnectionCounters { open: number; evicted: number; refused: number; timedOut: number }

/**
 * Applies the limits to a server that exists (whatever created it) and returns live counters.
 * A socket with a response still open (an SSE stream, capped on its own) is busy, never evicted.
 */
export function applyHttpLimits(server: http.Server, l: HttpLimits): ConnectionCounters {
  server.headersTimeout = l.headersTimeoutMs;
  server.requestTimeout = l.requestTimeoutMs;
  server.keepAliveTimeout = l.keepAliveTimeoutMs;
  server.maxRequestsPerSocket = l.maxRequestsPerSocket;
  server.setTimeout(l.idleTimeoutMs, (s: net.Socket) => { counters.timedOut++; s.destroy(); });
  const counters: ConnectionCounters = { open: 0, evicted: 0, refused: 0, timedOut: 0 };
  // Insertion order = age: the first idle one found is the oldest.
  const sockets = new Set<net.Socket>();
  const busy = new WeakMap<net.Socket, number>();
  server.on('connection', (s: net.Socket) => {
    if (sockets.size >= l.maxConnections) {
      let victim: net.Socket | undefined;
      for (const o of sockets) if (!busy.get(o)) { victim = o; break; }
      if (!victim) { counters.refused++; s.destroy(); return; }
      sockets.delete(victim);
      counters.evicted++;
      victim.destroy();
    }
    sockets.add(s);
    counters.open = sockets.size;
    s.once('close', () => { sockets.delete(s); counters.open = sockets.size; });
  });
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const s = req.socket;
    busy.set(s, (busy.get(s) ?? 0) + 1);
    // A request in flight makes its socket young again: evict stalled ones first.
    if (sockets.delete(s)) sockets.add(s);
    let done = false;
    const end = () => { if (done) return; done = true; busy.set(s, Math.max(0, (busy.get(s) ?? 1) - 1)); };
    res.once('finish', end);
    res.once('close', end);
  });
  return counters;
}
