import Fastify, { type FastifyInstance } from 'fastify';
import { z } from 'zod';
import { CpId } from '../protocol/index.js';
import { errText, type Logger } from '../lib/log.js';
import type { Driver } from './driver.js';
import { applyHttpLimits, DEFAULT_HTTP_LIMITS, fastifyLimitOptions, type HttpLimits } from '../lib/http-limits.js';
import { registerDriverApp } from './web.js';

export interface DriverHttpOptions {
  driverId: string;
  driver: Driver;
  centralUrl: string;
  port: number;
  host?: string;
  log: Logger;
  limits?: HttpLimits;
}

const RequestBody = z.object({
  cp_id: CpId,
  vehicle_id: z.string().min(1).max(64).optional(),
}).strict();

/**
 * The driver's optional HTTP face, as in the original system:
 *   GET  /charging-points        central's GET /cp, passed through
 *   POST /drivers/:id/requests   {"cp_id","vehicle_id"?} → 202 {request_id}, queued behind running sessions
 *   GET  /drivers/:id/updates    the most recent updates this driver received
 *   GET  /                       the driver app (driver/web.ts)
 * Only this process's own driver id is served (its updates are the only ones it subscribes to).
 */
export async function startDriverHttp(o: DriverHttpOptions): Promise<{ app: FastifyInstance; port: number; close: () => Promise<void> }> {
  const limits = o.limits ?? DEFAULT_HTTP_LIMITS;
  const app = Fastify({ logger: false, bodyLimit: 16 * 1024, ...fastifyLimitOptions(limits) });
  applyHttpLimits(app.server, limits);
  const rejected = { bad_request: 0, unknown_driver: 0 };

  app.setErrorHandler((err: { statusCode?: number; message: string }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) o.log.warn({ err: err.message }, 'driver HTTP error');
    else rejected.bad_request++;
    void reply.code(status).send({ error: err.message });
  });

  const ownDriver = (id: string, reply: { code: (n: number) => { send: (b: unknown) => unknown } }) => {
    if (id === o.driverId) return true;
    rejected.unknown_driver++;
    reply.code(404).send({ error: `unknown driver ${JSON.stringify(id.slice(0, 64))}: this service is ${o.driverId}` });
    return false;
  };

  app.get('/charging-points', async (_req, reply) => {
    try {
      const res = await fetch(`${o.centralUrl}/cp`, { signal: AbortSignal.timeout(5_000) });
      const body = await res.text();
      return reply.code(res.status).type(res.headers.get('content-type') ?? 'application/json').send(body);
    } catch (err) {
      return reply.code(502).send({ error: `central not reachable: ${errText((err as { cause?: unknown }).cause ?? err)}` });
    }
  });

  app.post<{ Params: { id: string } }>('/drivers/:id/requests', async (req, reply) => {
    if (!ownDriver(req.params.id, reply)) return reply;
    const parsed = RequestBody.safeParse(req.body);
    if (!parsed.success) {
      rejected.bad_request++;
      const issue = parsed.error.issues[0];
      return reply.code(400).send({ error: `${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}` });
    }
    const { requestId } = o.driver.submit(parsed.data.cp_id, parsed.data.vehicle_id);
    return reply.code(202).send({ request_id: requestId, driver_id: o.driverId, cp_id: parsed.data.cp_id });
  });

  app.get<{ Params: { id: string } }>('/drivers/:id/updates', async (req, reply) => {
    if (!ownDriver(req.params.id, reply)) return reply;
    const s = o.driver.state();
    return {
      driver_id: o.driverId,
      current: s.current ? { cp_id: s.current.cpId, request_id: s.current.requestId, session_id: s.current.sessionId, phase: s.current.phase } : null,
      totals: s.totals,
      updates: o.driver.recent(),
    };
  });

  app.get('/health', async () => ({ status: 'healthy', service: 'ev-driver', driver_id: o.driverId, rejected }));
  // The driver app in the browser (a page at /, its live stream, stop, history).
  registerDriverApp(app, { driverId: o.driverId, driver: o.driver, centralUrl: o.centralUrl, log: o.log });

  // No authentication on this API: loopback unless the operator names an address.
  await app.listen({ port: o.port, host: o.host ?? '127.0.0.1' });
  const port = (app.server.address() as { port: number }).port;
  return { app, port, close: () => app.close() };
}
