import fs from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { errText, type Logger } from '../lib/log.js';
import type { DriverUpdateMsg } from '../protocol/index.js';
import type { Driver } from './driver.js';

/**
 * The driver app in the browser, served at the driver's HTTP port: the CPs it may use (from
 * central), a request button, the session live (kW, kWh, €, battery, time), stop, the ticket
 * and the history. One SSE stream pushes what changed; the page never reloads.
 *
 *   GET  /             the page          GET /app/events   the live stream (SSE)
 *   POST /app/stop     stop the session  GET /app/history  this driver's sessions at central
 */

const PAGE = fs.readFileSync(new URL('./app.html', import.meta.url), 'utf8');
const ICON = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="#1d3557"/>'
  + '<path d="M18 4 8 18h7l-2 10 11-15h-7z" fill="#f1faee"/></svg>';

interface CpRow { cp_id: string; state: string; max_kw: number | null; price_eur_kwh: number | null; profile: string | null; kw?: number; driver_id?: string }

export interface DriverAppOptions { driverId: string; driver: Driver; centralUrl: string; log: Logger; maxClients?: number }

export function registerDriverApp(app: FastifyInstance, o: DriverAppOptions): void {
  const clients = new Set<ServerResponse>();
  let cps: CpRow[] = [];
  let centralError: string | undefined;
  let lastSent = '';

  async function refreshCps(): Promise<void> {
    try {
      const r = await fetch(`${o.centralUrl}/cp`, { signal: AbortSignal.timeout(3_000) });
      const body = await r.json() as { charging_points?: CpRow[] };
      cps = (body.charging_points ?? []).map((c) => ({ cp_id: c.cp_id, state: c.state, max_kw: c.max_kw, price_eur_kwh: c.price_eur_kwh, profile: c.profile, kw: c.kw, driver_id: c.driver_id }));
      if (centralError) o.log.info('central answers again');
      centralError = undefined;
    } catch (err) {
      if (!centralError) o.log.warn({ err: errText((err as { cause?: unknown }).cause ?? err) }, 'central not reachable for the CP list; trying again');
      centralError = 'central not reachable';
    }
  }

  /** What the page shows, from the driver's own state and the updates it received. */
  function view() {
    const s = o.driver.state();
    const recent = o.driver.recent();
    const c = s.current;
    const latest = c ? [...recent].reverse().find((u) => u.session_id !== undefined && (u.session_id === c.sessionId || u.request_id === c.requestId)) : undefined;
    const progress = c && latest ? [...recent].reverse().find((u) => u.status === 'IN_PROGRESS' && u.session_id === latest.session_id) : undefined;
    const lastEnd = [...recent].reverse().find((u) => (u.status === 'COMPLETED' || u.status === 'INTERRUPTED') && u.ticket);
    // A refused request (not the start-up QUERY's "no session"): the page says why.
    const lastRejected = [...recent].reverse().find((u) => u.status === 'REJECTED' && u.reason !== 'no session');
    return {
      driver_id: o.driverId,
      current: c ? {
        cp_id: c.cpId, phase: c.phase, session_id: c.sessionId ?? latest?.session_id,
        charging_for_s: c.chargingSince !== undefined ? Math.floor((Date.now() - c.chargingSince) / 1000) : null, kw: progress?.kw, kwh: progress?.kwh, eur: progress?.eur, soc: progress?.soc,
      } : null,
      ticket: lastEnd?.ticket ?? null,
      ticket_status: lastEnd?.status ?? null,
      rejected: lastRejected ? { cp_id: lastRejected.cp_id, reason: lastRejected.reason, ts: lastRejected.ts } : null,
      totals: s.totals,
      updates: recent.slice(-12).map(line),
      cps, central_error: centralError ?? null,
    };
  }

  function push(): void {
    if (!clients.size) return;
    const data = JSON.stringify(view());
    if (data === lastSent) return;
    lastSent = data;
    for (const res of clients) res.write(`event: state\ndata: ${data}\n\n`);
  }

  const pollCps = setInterval(() => { if (clients.size) void refreshCps().then(push); }, 2_000);
  // The driver's own state is read four times a second; the CP list again as soon as a session starts or ends.
  let phase = '';
  const pollState = setInterval(() => {
    const s = o.driver.state();
    const now = `${s.current?.phase ?? '-'}:${s.totals.sessions}:${s.totals.rejected}`;
    if (now !== phase && clients.size) { phase = now; void refreshCps().then(push); } else push();
  }, 250);
  pollCps.unref(); pollState.unref();
  app.addHook('onClose', async () => {
    clearInterval(pollCps); clearInterval(pollState);
    for (const res of clients) res.end();
    clients.clear();
  });

  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(PAGE));
  for (const p of ['/favicon.ico', '/favicon.svg']) app.get(p, async (_req, reply) => reply.type('image/svg+xml').send(ICON));

  app.get('/app/events', async (req, reply) => {
    if (clients.size >= (o.maxClients ?? 50)) return reply.code(503).send({ error: 'too many live clients' });
    await refreshCps();
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const data = JSON.stringify(view());
    res.write(`retry: 2000\nevent: state\ndata: ${data}\n\n`);
    clients.add(res);
    req.raw.on('close', () => clients.delete(res));
  });

  app.post('/app/stop', async (_req, reply) => {
    const ok = await o.driver.stopCurrent();
    return ok ? { ok: true } : reply.code(409).send({ error: 'no session in progress' });
  });

  app.get('/app/history', async (_req, reply) => {
    try {
      const r = await fetch(`${o.centralUrl}/sessions`, { signal: AbortSignal.timeout(5_000) });
      const body = await r.json() as { sessions?: Array<{ driver_id: string }> };
      return { sessions: (body.sessions ?? []).filter((s) => s.driver_id === o.driverId).slice(-50).reverse() };
    } catch (err) {
      return reply.code(502).send({ error: `central not reachable: ${errText((err as { cause?: unknown }).cause ?? err)}` });
    }
  });
}

/** An update as the page lists it. */
function line(u: DriverUpdateMsg) {
  return { ts: u.ts, cp_id: u.cp_id ?? u.ticket?.cp_id, status: u.status, reason: u.reason, kw: u.kw, kwh: u.kwh ?? u.ticket?.kwh, eur: u.eur ?? u.ticket?.eur };
}
