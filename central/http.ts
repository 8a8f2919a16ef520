import { createHash, timingSafeEqual } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from '../lib/log.js';
import { MAX_PAYLOAD_BYTES, MonitorReportMsg } from '../protocol/index.js';
import type { Bus } from '../bus/types.js';
import type { Controller } from './controller.js';
import { createCentralMetrics } from './metrics.js';
import { registerDashboard } from './dashboard.js';

/**
 * Central's HTTP API (fastify 5) in the original system's shapes, the SSE feed and the
 * dashboard. Every error is JSON `{"error": reason}` with a 4xx status and is counted; bodies
 * above MAX_PAYLOAD_BYTES get 413 before parsing.
 */

export interface HttpOptions { adminToken: string; busKind: Bus['kind']; maxSseClients?: number }

const digest = (s: string) => createHash('sha256').update(s).digest();

export function buildHttp(ctl: Controller, bus: Pick<Bus, 'health' | 'stats'>, log: Logger, o: HttpOptions): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: MAX_PAYLOAD_BYTES, return503OnClosing: true });
  const httpErrors = new Map<number, number>();
  const count = (status: number) => httpErrors.set(status, (httpErrors.get(status) ?? 0) + 1);
  const fail = (reply: FastifyReply, status: number, error: string) => { count(status); return reply.code(status).send({ error }); };
  const tokenDigest = digest(o.adminToken);
  // JSON only: any other media type is a 415, not a string for the schema to puzzle over.
  app.removeContentTypeParser('text/plain');

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) {
      log.error({ method: req.method, url: req.url, err: err.message }, 'request failed');
      return fail(reply, status, 'internal error');
    }
    const reason = err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? `body larger than ${MAX_PAYLOAD_BYTES} bytes`
      : err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? 'expected content-type application/json'
        : err.message;
    log.info({ method: req.method, url: req.url, status, reason }, 'bad request');
    return fail(reply, status, reason);
  });
  app.setNotFoundHandler((req, reply) => fail(reply, 404, `no route ${req.method} ${req.url.split('?')[0]}`));

  // --- read side ------------------------------------------------------------------------------

  app.get('/health', async () => {
    const h = bus.health();
    return {
      status: 'healthy', service: 'ev-central',
      // The original's values, which its users' scripts compare with: "connected" / "disconnected".
      kafka_producer: h.producer === 'connected' ? 'connected' : 'disconnected', kafka_consumer: h.consumer === 'connected' ? 'connected' : 'disconnected',
      bus: o.busKind, bus_producer: h.producer, bus_consumer: h.consumer,
      charging_points: ctl.state.cps.size, active_requests: ctl.activeRequests(), sessions: ctl.state.sessions.size,
      counters: ctl.counters, rejected_by_reason: Object.fromEntries(ctl.rejectReasons),
      // Malformed bus messages never reach central's handlers: the bus drops and counts them.
      bus_stats: bus.stats(), journal: ctl.storeCounters, http_errors: Object.fromEntries(httpErrors), sse_clients: sse.size,
    };
  });

  const metrics = createCentralMetrics(ctl, bus, httpErrors);
  app.get('/metrics', async (_req, reply) => reply.type(metrics.contentType).send(await metrics.metrics()));

  app.get('/cp', async () => ({ charging_points: ctl.cpViews(), active_requests: ctl.activeRequests() }));
  app.get<{ Params: { id: string } }>('/cp/:id', async (req, reply) => {
    const v = ctl.cpViewOf(req.params.id);
    return v ?? fail(reply, 404, `unknown CP ${req.params.id}`);
  });
  app.get('/sessions', async () => ({ sessions: ctl.sessionViews() }));
  app.get<{ Params: { id: string } }>('/sessions/:id', async (req, reply) => {
    const s = ctl.sessionViews().find((v) => v.session_id === req.params.id);
    return s ?? fail(reply, 404, `unknown session ${req.params.id}`);
  });
  app.get('/tickets', async () => ({ tickets: ctl.sessionViews().filter((s) => s.ticket).map((s) => s.ticket) }));

  // --- admin ------------------------------------------------------------------------------------

  const requireAdmin = async (req: FastifyRequest, reply: FastifyReply) => {
    const m = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '');
    if (!m) return fail(reply.header('www-authenticate', 'Bearer'), 401, 'admin token required (Authorization: Bearer <token>)');
    if (!timingSafeEqual(digest(m[1]!.trim()), tokenDigest)) return fail(reply.header('www-authenticate', 'Bearer'), 401, 'wrong admin token');
  };
  for (const [action, stop] of [['stop', true], ['resume', false]] as const) {
    app.post<{ Params: { id: string } }>(`/cp/:id/${action}`, { onRequest: requireAdmin }, async (req, reply) => {
      const v = await ctl.adminSet(req.params.id, stop);
      return v ? { ok: true, charging_point: v } : fail(reply, 404, `unknown CP ${req.params.id}`);
    });
  }

  // --- monitors ---------------------------------------------------------------------------------

  app.post('/monitor/report', async (req, reply) => {
    const r = MonitorReportMsg.safeParse(req.body);
    if (!r.success) {
      const i = r.error.issues[0];
      return fail(reply, 400, `invalid monitor report: ${i?.path.join('.') || '(root)'}: ${i?.message ?? 'invalid'}`);
    }
    if (!(await ctl.onMonitorReport(r.data))) return fail(reply, 429, `unknown CP ${r.data.cp_id}: the registry is full (--max-cps); report refused`);
    return reply.code(202).send({ accepted: true, cp_id: r.data.cp_id, monitor_status: ctl.monitorOf(r.data.cp_id) });
  });

  // --- live feed and dashboard -------------------------------------------------------------------

  const dashboard = registerDashboard(app, ctl, { requireAdmin });

  const sse = new Set<ServerResponse>();
  const maxSse = o.maxSseClients ?? 200;
  const snapshot = () => JSON.stringify({
    charging_points: ctl.cpViews(), active_requests: ctl.activeRequests(),
    sessions: ctl.sessionViews().slice(-30), events: ctl.recent.slice(-40), history: dashboard.history.columns(), weather: dashboard.weather.view(), at: Date.now(),
  });
  let last = '';
  let timer: NodeJS.Timeout | undefined;
  const push = () => {
    timer = undefined;
    if (!sse.size) return;
    const s = snapshot();
    // Same picture as last time (only `at` moved): nothing to send.
    if (s.replace(/"at":\d+\}$/, '') === last.replace(/"at":\d+\}$/, '')) return;
    last = s;
    for (const res of sse) res.write(`event: snapshot\ndata: ${s}\n\n`);
  };
  ctl.onChange(() => { timer ??= setTimeout(push, 150); });
  const keepalive = setInterval(() => { for (const res of sse) res.write(': keepalive\n\n'); }, 15_000);
  keepalive.unref();

  app.get('/events', (req, reply) => {
    if (sse.size >= maxSse) return fail(reply, 503, 'too many live clients');
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write(`retry: 2000\nevent: snapshot\ndata: ${snapshot()}\n\n`);
    sse.add(res);
    req.raw.on('close', () => sse.delete(res));
  });
  app.addHook('onClose', async () => {
    clearInterval(keepalive);
    if (timer) clearTimeout(timer);
    for (const res of sse) res.end();
    sse.clear();
  });

  return app;
}
