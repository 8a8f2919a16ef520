import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from '../lib/log.js';
import { MAX_PAYLOAD_BYTES, MonitorReportMsg } from '../protocol/index.js';
import { busUp, type Bus } from '../bus/types.js';
import type { Controller } from './controller.js';
import { createCentralMetrics } from './metrics.js';
import { SseHub } from './sse.js';
import type { MonitorAuth } from './monitor-auth.js';
import type { AuditLog } from '../lib/audit.js';
import { applyHttpLimits, DEFAULT_HTTP_LIMITS, fastifyLimitOptions, type HttpLimits } from '../lib/http-limits.js';
import { registerDashboard } from './dashboard.js';

/**
 * Central's HTTP API (fastify 5) in the original system's shapes, the SSE feed and the
 * dashboard. Every error is JSON `{"error": reason}` with a 4xx status and is counted; bodies
 * above MAX_PAYLOAD_BYTES get 413 before parsing.
 */

export interface HttpOptions {
  adminToken: string; busKind: Bus['kind']; maxSseClients?: number;
  /** Timeouts and the connection cap (lib/http-limits.ts). */
  limits?: HttpLimits;
  /** A live-feed client whose unsent bytes pass this, or that has not drained for sseMaxStallMs, is dropped. */
  sseMaxBufferedBytes?: number; sseMaxStallMs?: number;
  /** Set: monitor reports need their monitor's credentials. Unset (dev mode): any report for a known CP is taken. */
  monitorAuth?: MonitorAuth;
  audit?: AuditLog;
  /** The journal's first failed write: central is then unhealthy (503) and refuses new work. */
  journalFailure?: () => Error | undefined;
  /** Resolves once everything journaled so far is on disk: an action is acknowledged only then. */
  durable?: () => Promise<void>;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

export function buildHttp(ctl: Controller, bus: Pick<Bus, 'health' | 'stats'>, log: Logger, o: HttpOptions): FastifyInstance {
  const limits = o.limits ?? DEFAULT_HTTP_LIMITS;
  const app = Fastify({ logger: false, bodyLimit: MAX_PAYLOAD_BYTES, return503OnClosing: true, ...fastifyLimitOptions(limits) });
  const connections = applyHttpLimits(app.server, limits);
  const failure = o.journalFailure ?? (() => undefined);
  // An answer of 200/202 means "kept": a write that fails turns it into a 503.
  const saved = async (reply: FastifyReply): Promise<boolean> => {
    try { await (o.durable?.() ?? Promise.resolve()); return true; } catch (err) {
      fail(reply, 503, `not saved: central cannot write its journal (${(err as Error).message})`);
      return false;
    }
  };
  const monitorRefusals = new Map<string, number>();
  const audit = (e: Parameters<AuditLog['record']>[0]) => {
    try { o.audit?.record(e); } catch (err) { log.error({ err: (err as Error).message }, 'audit write failed'); }
  };
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

  // A journal that cannot be written: nothing new is taken (it could not be kept), reads still answer.
  app.addHook('onRequest', async (req, reply) => {
    const f = failure();
    if (f && req.method !== 'GET' && req.method !== 'HEAD') return fail(reply, 503, `central cannot write its journal (${f.message}); refusing new work until it is fixed and central restarted`);
  });

  // --- read side ------------------------------------------------------------------------------

  // 503 while the bus is down (same body), so a container healthcheck means "serving"; and while the journal cannot be written.
  app.get('/health', async (_req, reply) => {
    const h = bus.health();
    const f = failure();
    if (f || !busUp(h)) void reply.code(503);
    return {
      status: f ? 'unhealthy' : 'healthy', service: 'ev-central', ...(f ? { journal_error: f.message } : {}),
      // The original's values, which its users' scripts compare with: "connected" / "disconnected".
      kafka_producer: h.producer === 'connected' ? 'connected' : 'disconnected', kafka_consumer: h.consumer === 'connected' ? 'connected' : 'disconnected',
      bus: o.busKind, bus_producer: h.producer, bus_consumer: h.consumer, ...(h.problem ? { bus_problem: h.problem } : {}),
      charging_points: ctl.state.cps.size, active_requests: ctl.activeSessions(), sessions: ctl.state.sessions.size,
      counters: ctl.counters, rejected_by_reason: Object.fromEntries(ctl.rejectReasons),
      // Malformed bus messages never reach central's handlers: the bus drops and counts them.
      bus_stats: bus.stats(), journal: ctl.storeCounters, http_errors: Object.fromEntries(httpErrors), sse_clients: sse.size,
      sse: sse.counters, connections, monitor_reports_refused_by_reason: Object.fromEntries(monitorRefusals),
      monitor_auth: o.monitorAuth ? 'credentials' : 'dev (unauthenticated, loopback)',
    };
  });

  const metrics = createCentralMetrics(ctl, bus, httpErrors);
  app.get('/metrics', async (_req, reply) => reply.type(metrics.contentType).send(await metrics.metrics()));

  app.get('/cp', async () => ({ charging_points: ctl.cpViews(), active_requests: ctl.activeSessions() }));
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
    const refuse = (why: string) => {
      audit({ identity: 'anonymous', source: req.ip, action: 'admin.auth', outcome: 'refused', params: { method: req.method, route: req.url.split('?')[0]!.slice(0, 200), reason: why } });
      return fail(reply.header('www-authenticate', 'Bearer'), 401, why);
    };
    if (!m) return refuse('admin token required (Authorization: Bearer <token>)');
    if (!timingSafeEqual(digest(m[1]!.trim()), tokenDigest)) return refuse('wrong admin token');
  };
  for (const [action, stop] of [['stop', true], ['resume', false]] as const) {
    app.post<{ Params: { id: string } }>(`/cp/:id/${action}`, { onRequest: requireAdmin }, async (req, reply) => {
      const v = await ctl.adminSet(req.params.id, stop);
      if (v && !(await saved(reply))) return reply;
      audit({ identity: 'admin', source: req.ip, action: `cp.${action}`, outcome: v ? 'ok' : 'refused', params: { cp_id: req.params.id.slice(0, 64), ...(v ? {} : { reason: 'unknown CP' }) } });
      return v ? { ok: true, charging_point: v } : fail(reply, 404, `unknown CP ${req.params.id}`);
    });
  }

  // Admin routes registered elsewhere (the dashboard's stop-all/resume-all, the weather service's reports) are audited here.
  const AUDITED = new Map([['/cp/stop-all', 'cp.stop-all'], ['/cp/resume-all', 'cp.resume-all'], ['/weather/report', 'weather.report']]);
  app.addHook('onResponse', async (req, reply) => {
    const action = req.method === 'POST' ? AUDITED.get(req.url.split('?')[0]!) : undefined;
    if (!action || reply.statusCode === 401) return; // a refused token is audited by requireAdmin
    const body = req.body as { cp_id?: unknown } | undefined;
    audit({ identity: 'admin', source: req.ip, action, outcome: reply.statusCode < 400 ? 'ok' : 'refused', params: { status: reply.statusCode, ...(typeof body?.cp_id === 'string' ? { cp_id: body.cp_id.slice(0, 64) } : {}) } });
  });

  app.get<{ Querystring: { action?: string; identity?: string; limit?: string } }>('/audit', { onRequest: requireAdmin }, async (req, reply) => {
    if (!o.audit) return fail(reply, 404, 'no audit log configured');
    const q = req.query;
    const limit = q.limit === undefined ? 200 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) return fail(reply, 400, 'limit must be an integer from 1 to 1000');
    return { entries: o.audit.list({ action: q.action?.slice(0, 64), identity: q.identity?.slice(0, 64), limit }), counters: o.audit.counters };
  });

  // --- monitors ---------------------------------------------------------------------------------

  app.post('/monitor/report', async (req, reply) => {
    const r = MonitorReportMsg.safeParse(req.body);
    if (!r.success) {
      const i = r.error.issues[0];
      return fail(reply, 400, `invalid monitor report: ${i?.path.join('.') || '(root)'}: ${i?.message ?? 'invalid'}`);
    }
    const refuse = (status: number, reason: string, key: string, identity = 'anonymous') => {
      monitorRefusals.set(key, (monitorRefusals.get(key) ?? 0) + 1);
      audit({ identity, source: req.ip, action: 'monitor.report', outcome: 'refused', params: { cp_id: r.data.cp_id, kind: r.data.kind, reason } });
      if (status === 401) reply.header('www-authenticate', 'Bearer');
      return fail(reply, status, reason);
    };
    let report = r.data;
    if (o.monitorAuth) {
      const a = await o.monitorAuth(req.headers.authorization, report.cp_id);
      if (!a.ok) return refuse(a.status, a.reason, a.status === 401 ? 'unauthenticated' : 'other_cp', a.identity);
      // The report speaks for the monitor that authenticated, whatever its body says.
      report = { ...report, monitor_id: a.monitorId };
    }
    // Reports never add CPs: a CP joins by its engine speaking through the gateway, the CP file or the registry.
    if (!ctl.state.cps.has(report.cp_id)) return refuse(404, `unknown CP ${report.cp_id}: monitor reports do not register CPs`, 'unknown_cp', o.monitorAuth ? report.monitor_id : 'anonymous');
    if (!(await ctl.onMonitorReport(report))) return fail(reply, 429, `unknown CP ${report.cp_id}: the registry is full (--max-cps); report refused`);
    if (!(await saved(reply))) return reply;
    return reply.code(202).send({ accepted: true, cp_id: r.data.cp_id, monitor_status: ctl.monitorOf(r.data.cp_id) });
  });

  // --- live feed and dashboard -------------------------------------------------------------------

  const dashboard = registerDashboard(app, ctl, { requireAdmin });

  const sse = new SseHub({ maxClients: o.maxSseClients ?? 200, maxBufferedBytes: o.sseMaxBufferedBytes ?? 1 << 20, maxStallMs: o.sseMaxStallMs ?? 30_000 });
  const snapshot = () => JSON.stringify({
    charging_points: ctl.cpViews(), active_requests: ctl.activeSessions(),
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
    sse.broadcast(`event: snapshot\ndata: ${s}\n\n`);
  };
  ctl.onChange(() => { timer ??= setTimeout(push, 150); });
  const keepalive = setInterval(() => sse.keepalive(), Math.min(15_000, Math.max(1_000, Math.floor((o.sseMaxStallMs ?? 30_000) / 2))));
  keepalive.unref();

  app.get('/events', (req, reply) => {
    if (!sse.makeRoom()) { sse.refuse(); return fail(reply, 503, 'too many live clients'); }
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    sse.add(res, `retry: 2000\nevent: snapshot\ndata: ${snapshot()}\n\n`);
  });
  app.addHook('onClose', async () => {
    clearInterval(keepalive);
    if (timer) clearTimeout(timer);
    sse.closeAll();
  });

  return app;
}
