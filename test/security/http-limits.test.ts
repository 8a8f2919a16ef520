import http from 'node:http';
import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { applyHttpLimits, checkHttpLimits, DEFAULT_HTTP_LIMITS, serverOptionsFor, type HttpLimits } from '../../lib/http-limits.js';
import { spawnCli } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

/**
 * lib/http-limits.ts on a real HTTP server and real sockets: the connection cap evicts the
 * oldest idle (stalled) socket and never one with a request in flight; the header deadline
 * ends a slowloris socket within about its limit; absurd values are refused at the boundary.
 */
const servers: http.Server[] = [];
const sockets: net.Socket[] = [];
afterAll(() => { for (const s of sockets) s.destroy(); for (const s of servers) { s.closeAllConnections(); s.close(); } });

async function serve(l: Partial<HttpLimits>, handler: http.RequestListener = (_req, res) => res.end('ok')) {
  const limits = checkHttpLimits({ ...DEFAULT_HTTP_LIMITS, ...l });
  const server = http.createServer(serverOptionsFor(limits), handler);
  const counters = applyHttpLimits(server, limits);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  return { port: (server.address() as net.AddressInfo).port, counters };
}
const open = (port: number, first = 'GET / HTTP/1.1\r\nHost: x\r\n') => new Promise<net.Socket>((resolve) => {
  const s = net.connect(port, '127.0.0.1', () => { s.write(first); resolve(s); });
  s.on('error', () => undefined);
  sockets.push(s);
});
const closed = (s: net.Socket) => s.destroyed || s.readyState === 'closed';

describe('HTTP limits', () => {
  it('beyond the cap the oldest stalled socket goes, a busy one stays, and a fresh request is answered', async () => {
    let release: (() => void) | undefined;
    const { port, counters } = await serve({ maxConnections: 5 }, (req, res) => {
      if (req.url === '/slow') { release = () => res.end('slow done'); return; }
      res.end('ok');
    });
    // One busy socket (a request in flight), then stalled ones until the cap.
    const busy = await open(port, 'GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => release, { what: 'slow request in flight' });
    const stalled: net.Socket[] = [];
    for (let i = 0; i < 10; i++) stalled.push(await open(port));
    await waitFor(() => counters.evicted >= 6, { what: `evictions (${JSON.stringify(counters)})` });
    expect(closed(busy)).toBe(false);
    // The oldest stalled ones were closed first.
    await waitFor(() => stalled.slice(0, 6).every(closed), { what: 'oldest stalled sockets closed' });
    expect(stalled.slice(-4).some((s) => !closed(s))).toBe(true);
    const r = await fetch(`http://127.0.0.1:${port}/`);
    expect(await r.text()).toBe('ok');
    release!();
    expect(counters.open).toBeLessThanOrEqual(5);
  });

  it('a slowloris socket is ended by the header deadline', async () => {
    const { port } = await serve({ headersTimeoutMs: 300, requestTimeoutMs: 1000 });
    const s = await open(port);
    const trickle = setInterval(() => { if (!closed(s)) s.write('X-a: b\r\n'); }, 50);
    try { await waitFor(() => closed(s), { timeoutMs: 5_000, what: 'slowloris socket ended' }); } finally { clearInterval(trickle); }
  });

  it('absurd values are refused with one line naming the flag, exit 2', async () => {
    expect(() => checkHttpLimits({ ...DEFAULT_HTTP_LIMITS, maxConnections: 0 })).toThrow(/http-max-connections/);
    expect(() => checkHttpLimits({ ...DEFAULT_HTTP_LIMITS, headersTimeoutMs: Number.NaN })).toThrow(/http-headers-timeout-ms/);
    expect(() => checkHttpLimits({ ...DEFAULT_HTTP_LIMITS, headersTimeoutMs: 40_000, requestTimeoutMs: 30_000 })).toThrow(/must not exceed/);
    for (const [args, re] of [
      [['central', '--http-max-connections', '0'], /--http-max-connections/],
      [['central', '--http-headers-timeout-ms', '1e9'], /--http-headers-timeout-ms/],
      [['gateway', '--dev', 'true', '--http-idle-timeout-ms', 'soon'], /--http-idle-timeout-ms/],
      [['central', '--sse-max-stall-ms', '-1'], /--sse-max-stall-ms/],
    ] as Array<[string[], RegExp]>) {
      const p = spawnCli(args);
      const { code } = await p.exited;
      expect(code, args.join(' ')).toBe(2);
      const text = p.lines.filter((l) => l.trim());
      expect(text, text.join('\n')).toHaveLength(1);
      expect(text[0]).toMatch(re);
    }
  }, 60_000);
});
