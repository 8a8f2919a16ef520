import http from 'node:http';
import { createHash, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import { applyHttpLimits, DEFAULT_HTTP_LIMITS, serverOptionsFor, type HttpLimits } from '../lib/http-limits.js';
import { newControlToken, writeControlToken } from './control-token.js';
import { z } from 'zod';
import type { Logger } from '../lib/log.js';
import { ConflictError, type Network } from './network.js';
import { UnknownComponentError } from './supervisor.js';
import { assertPortFree } from './ports.js';

/**
 * The control endpoint of a running `evcharging up`: HTTP on 127.0.0.1 (EVCHARGING_CONTROL_PORT),
 * so `add-cp`, `add-driver`, `crash`, `restart` and `status` in another terminal reach it.
 * Loopback only, and every request needs `Authorization: Bearer <token>`: the token is fresh
 * each run and written to a file only this user can read (network/control-token.ts), so
 * another local user cannot crash or add components.
 *
 *   GET  /status                         → { network, components: [...] }
 *   POST /cp      { id, kw?, price?, profile? }
 *   POST /driver  { id, http_port? }      (http_port: a driver driven from its browser app there)
 *   POST /crash   { name? }              (no name: a random running component)
 *   POST /restart { name }
 */
const AddCp = z.object({ id: z.string().min(1).max(64), kw: z.number().positive().optional(), price: z.number().nonnegative().optional(), profile: z.string().min(1).max(64).optional() }).strict();
const AddDriver = z.object({ id: z.string().min(1).max(64), http_port: z.number().int().min(1).max(65535).optional() }).strict();
const Crash = z.object({ name: z.string().min(1).max(128).optional() }).strict();
const Restart = z.object({ name: z.string().min(1).max(128) }).strict();
const MAX_BODY = 16 * 1024;

export interface ControlServer { port: number; tokenFile?: string; close(): Promise<void> }

const digest = (s: string) => createHash('sha256').update(s).digest();

export async function startControlServer(net: Network, summary: () => Record<string, unknown>, host: string, port: number, log: Logger,
  o: { token?: string; limits?: HttpLimits } = {}): Promise<ControlServer> {
  let rejected = 0;
  const token = o.token ?? newControlToken();
  const want = digest(token);
  const limits = o.limits ?? DEFAULT_HTTP_LIMITS;
  const routes: Record<string, (body: unknown) => Promise<[number, unknown]>> = {
    'GET /status': async () => [200, { network: { ...summary(), refused_control_requests: rejected }, components: await net.report() }],
    'POST /cp': async (b) => [201, await net.addCp(AddCp.parse(b))],
    'POST /driver': async (b) => {
      const d = AddDriver.parse(b);
      if (d.http_port !== undefined) await assertPortFree(net.settings.host, d.http_port, "the driver app's");
      return [201, { id: net.addDriver(d.id, { httpPort: d.http_port }), http_port: d.http_port }];
    },
    'POST /crash': async (b) => [200, await net.crash(Crash.parse(b).name)],
    'POST /restart': async (b) => [200, await net.restart(Restart.parse(b).name)],
  };
  const server = http.createServer({ ...serverOptionsFor(limits), maxHeaderSize: 8 * 1024 }, (req, res) => {
    const send = (code: number, body: unknown) => {
      if (code >= 400) { rejected++; log.warn({ method: req.method, url: req.url?.slice(0, 200), code, error: (body as { error?: string }).error, rejected }, 'control request refused'); }
      res.writeHead(code, { 'content-type': 'application/json', ...(code === 401 ? { 'www-authenticate': 'Bearer' } : {}) }).end(JSON.stringify(body));
    };
    const m = /^Bearer (\S+)$/i.exec(req.headers.authorization ?? '');
    if (!m || !timingSafeEqual(digest(m[1]!), want)) {
      res.setHeader('connection', 'close');
      req.resume();
      return send(401, { error: m ? 'wrong control token' : 'control token required (Authorization: Bearer <token>; `evcharging` reads it from the token file of the run)' });
    }
    const route = routes[`${req.method} ${req.url?.split('?')[0]}`];
    if (!route) return send(404, { error: `no such endpoint: ${req.method} ${req.url}` });
    let raw = '';
    let tooBig = false;
    req.setEncoding('utf8');
    req.on('data', (d: string) => {
      if (tooBig) return;
      raw += d;
      if (raw.length > MAX_BODY) { tooBig = true; res.setHeader('connection', 'close'); send(413, { error: `body larger than ${MAX_BODY} bytes` }); }
    });
    req.on('end', () => {
      if (tooBig) return;
      let body: unknown = {};
      if (raw.trim()) { try { body = JSON.parse(raw); } catch { return send(400, { error: 'body is not JSON' }); } }
      route(body).then(([code, out]) => send(code, out), (err: unknown) => {
        if (err instanceof z.ZodError) return send(400, { error: err.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ') });
        if (err instanceof UnknownComponentError) return send(404, { error: err.message });
        if (err instanceof ConflictError) return send(409, { error: err.message });
        send(400, { error: (err as Error).message });
      });
    });
    req.on('error', () => { /* client went away */ });
  });
  applyHttpLimits(server, limits);
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(port, host, () => resolve()); });
  const bound = (server.address() as { port: number }).port;
  // Given a token, the caller hands it out; else it goes to this run's token file.
  const tokenFile = o.token ? undefined : writeControlToken(bound, token);
  return {
    port: bound, tokenFile,
    close: () => new Promise<void>((r) => {
      if (tokenFile) fs.rmSync(tokenFile, { force: true });
      server.closeAllConnections(); server.close(() => r());
    }),
  };
}
