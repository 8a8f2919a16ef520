import fs from 'node:fs';
import { createRequire } from 'node:module';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Controller } from './controller.js';
import { WeatherDesk, WeatherReport } from './weather.js';

/**
 * The dashboard's side of central's HTTP server: the page, its chart library (uPlot, served
 * from node_modules: no CDN), a favicon, the network's power and sessions over the last
 * minutes (sampled here each second, so a page opened now shows the past too), and stop/resume
 * for every CP at once (admin token).
 */

const PAGE = fs.readFileSync(new URL('./dashboard.html', import.meta.url), 'utf8');
const require = createRequire(import.meta.url);
const UPLOT_JS = fs.readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8');
const UPLOT_CSS = fs.readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8');
/** A plug, green: the tab's icon (and no 404 for /favicon.ico). */
const ICON = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="#2d6a4f"/>'
  + '<path d="M18 4 8 18h7l-2 10 11-15h-7z" fill="#d8f3dc"/></svg>';

/** One sample a second: when (epoch s), network kW, sessions running, CPs by state. */
export interface HistorySample { t: number; kw: number; sessions: number }

export class NetworkHistory {
  private readonly samples: HistorySample[] = [];
  private readonly timer: NodeJS.Timeout;
  constructor(private readonly ctl: Controller, private readonly keep = 600, everyMs = 1_000) {
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
  }

  sample(now = Date.now()): void {
    let kw = 0;
    let sessions = 0;
    for (const s of this.ctl.state.sessions.values()) if (s.status === 'ACTIVE') { sessions++; kw += s.kw; }
    this.samples.push({ t: Math.floor(now / 1000), kw: Math.round(kw * 10) / 10, sessions });
    if (this.samples.length > this.keep) this.samples.splice(0, this.samples.length - this.keep);
  }

  /** Column form, as uPlot takes it: [[t…], [kw…], [sessions…]]. */
  columns(): [number[], number[], number[]] {
    return [this.samples.map((s) => s.t), this.samples.map((s) => s.kw), this.samples.map((s) => s.sessions)];
  }

  close(): void { clearInterval(this.timer); }
}

export interface DashboardRoutes { history: NetworkHistory; weather: WeatherDesk }

type Guard = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

export function registerDashboard(app: FastifyInstance, ctl: Controller, o: { requireAdmin: Guard }): DashboardRoutes {
  const history = new NetworkHistory(ctl);
  app.addHook('onClose', async () => history.close());

  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(PAGE));
  app.get('/dashboard/uplot.js', async (_req, reply) => reply.type('text/javascript; charset=utf-8').header('cache-control', 'max-age=86400').send(UPLOT_JS));
  app.get('/dashboard/uplot.css', async (_req, reply) => reply.type('text/css; charset=utf-8').header('cache-control', 'max-age=86400').send(UPLOT_CSS));
  for (const p of ['/favicon.ico', '/favicon.svg']) {
    app.get(p, async (_req, reply) => reply.type('image/svg+xml').header('cache-control', 'max-age=86400').send(ICON));
  }

  // Every CP at once: the course asks to stop or resume one CP or all of them.
  for (const [action, stop] of [['stop-all', true], ['resume-all', false]] as const) {
    app.post(`/cp/${action}`, { onRequest: o.requireAdmin }, async () => {
      const ids = [...ctl.state.cps.keys()];
      let changed = 0;
      for (const id of ids) {
        const cp = ctl.state.cps.get(id);
        if (!cp || cp.admin_stopped === stop) continue;
        if (await ctl.adminSet(id, stop)) changed++;
      }
      return { ok: true, action: stop ? 'stop' : 'resume', charging_points: ids.length, changed };
    });
  }
  // The weather service's reports (admin token: it changes what CPs may do).
  const weather = new WeatherDesk(ctl);
  app.post('/weather/report', { onRequest: o.requireAdmin }, async (req, reply) => {
    const r = WeatherReport.safeParse(req.body);
    if (!r.success) {
      const i = r.error.issues[0];
      return reply.code(400).send({ error: `invalid weather report: ${i?.path.join('.') || '(root)'}: ${i?.message ?? 'invalid'}` });
    }
    const done = await weather.report(r.data);
    return done ?? reply.code(404).send({ error: `unknown CP ${r.data.cp_id}` });
  });
  app.get('/weather', async () => ({ weather: weather.view() }));
  return { history, weather };
}
