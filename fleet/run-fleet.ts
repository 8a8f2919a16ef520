import http from 'node:http';
import { applyHttpLimits, DEFAULT_HTTP_LIMITS, serverOptionsFor } from '../lib/http-limits.js';
import fs from 'node:fs';
import type { Logger } from '../lib/log.js';
import { errText } from '../lib/log.js';
import { onShutdown } from '../lib/lifecycle.js';
import { loadProfile, withOverrides } from '../hw-profiles/profile.js';
import { startCpNode, type CpNode } from '../firmware/cp-node.js';
import { TickScheduler } from './scheduler.js';
import { CallStats, runBehaviour, type BehaviourOptions } from './ocpp-behaviour.js';

export interface FleetOptions {
  count: number;
  mqtt: string;
  idPrefix: string;
  first: number;
  profile: string;
  kw?: number;
  price?: number;
  speed: number;
  healthHost: string;
  /** 0: each CP gets any free port; N: CP i gets N+i. */
  healthBasePort: number;
  httpPort?: number;
  portsFile?: string;
  rampPerS: number;
  tickMs: number;
  statsS: number;
  /** Set: every CP speaks OCPP-J to this central system (the CP id is appended) instead of MQTT. */
  ocpp?: string;
  ocppVersion?: '1.6' | '2.0.1';
  meterIntervalS?: number;
  /** With --ocpp: automatic sessions (none when the probability is 0). */
  behaviour?: BehaviourOptions;
}

export const fleetId = (prefix: string, n: number) => `${prefix}${String(n).padStart(4, '0')}`;

/**
 * `evcharging fleet`: many complete CPs in one process — the firmware's own CP node (HAL,
 * engine, MQTT link, health port) each — driven by one shared tick scheduler instead of a
 * timer per engine. Started at a bounded rate so the gateway is not hit by a connect storm.
 */
export async function runFleet(o: FleetOptions, log: Logger, cpLog: Logger): Promise<void> {
  const profile = withOverrides(loadProfile(o.profile), { kw: o.kw, price: o.price });
  const scheduler = new TickScheduler(o.tickMs, Math.max(1, Math.min(20, Math.round(o.tickMs / 25))));
  const nodes: CpNode[] = [];
  const failed: string[] = [];
  const calls = new CallStats();
  const behaviours: Array<{ stop(): void; readonly sessions: number }> = [];
  let stopping = false;
  let server: http.Server | undefined;

  // Closers run in reverse: stop starting more, close every CP (each leaves DISCONNECTED), then the HTTP port.
  onShutdown(log, [
    () => new Promise<void>((r) => (server ? server.close(() => r()) : r())),
    async () => { for (const b of behaviours) b.stop(); scheduler.stop(); await Promise.all(nodes.map((n) => n.close().catch(() => undefined))); },
    () => { stopping = true; },
  ], 30_000);

  const summary = () => {
    const connected = nodes.filter((n) => n.link.connected).length;
    const states: Record<string, number> = {};
    for (const n of nodes) states[n.engine.state] = (states[n.engine.state] ?? 0) + 1;
    // memoryUsage() opens /proc files: out of descriptors it throws (EMFILE), and a summary must never take the fleet down.
    let mem: { rss_mb?: number; heap_mb?: number } = {};
    try { const m = process.memoryUsage(); mem = { rss_mb: Math.round(m.rss / 1e6), heap_mb: Math.round(m.heapUsed / 1e6) }; } catch { /* counted as unknown */ }
    return { count: o.count, started: nodes.length, failed: failed.length, connected, states, ...mem, ...(o.ocpp ? { ocpp: lastCalls, ocpp_calls: calls.total, sessions: behaviours.reduce((n, b) => n + b.sessions, 0) } : {}) };
  };
  let lastCalls: ReturnType<CallStats['take']> | undefined;

  if (o.httpPort !== undefined) {
    server = http.createServer(serverOptionsFor(DEFAULT_HTTP_LIMITS), (req, res) => {
      const route = req.url?.split('?')[0];
      const send = (code: number, body: unknown) => res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (route === '/health') return send(200, { status: 'ok', ...summary() });
      if (route === '/cps') return send(200, nodes.map((n) => ({ cp_id: n.engine.cpId, health_port: n.health.port, state: n.engine.state, connected: n.link.connected })));
      send(404, { error: 'try /health or /cps' });
    });
    applyHttpLimits(server, DEFAULT_HTTP_LIMITS);
    await new Promise<void>((resolve, reject) => { server!.once('error', reject); server!.listen(o.httpPort, o.healthHost, () => resolve()); });
  }

  scheduler.start();
  log.info({ count: o.count, ...(o.ocpp ? { ocpp: o.ocpp, ocpp_version: o.ocppVersion } : { mqtt: o.mqtt }), profile: profile.name, ramp_per_s: o.rampPerS, tick_ms: o.tickMs, http_port: o.httpPort }, 'starting the fleet');
  const t0 = Date.now();
  const batch = Math.max(1, Math.round(o.rampPerS / 10));
  for (let i = 0; i < o.count && !stopping; i += batch) {
    const started = Date.now();
    await Promise.all(Array.from({ length: Math.min(batch, o.count - i) }, async (_, k) => {
      const n = o.first + i + k;
      const cpId = fleetId(o.idPrefix, n);
      try {
        const node = await startCpNode({
          cpId, profile, mqttUrl: o.mqtt, healthPort: o.healthBasePort ? o.healthBasePort + i + k : 0, healthHost: o.healthHost,
          announceHost: o.healthHost === '0.0.0.0' ? undefined : o.healthHost, speed: o.speed, tickMs: 0, log: cpLog,
          ...(o.ocpp ? { ocpp: { url: o.ocpp, version: o.ocppVersion === '2.0.1' ? 'ocpp2.0.1' as const : 'ocpp1.6' as const, meterIntervalS: o.meterIntervalS ?? 60, onCall: (m: string, ms: number, ok: boolean) => calls.record(m, ms, ok) } } : {}),
        });
        if (node.ocpp && o.behaviour && o.behaviour.probability > 0) behaviours.push(runBehaviour(node.ocpp, o.behaviour));
        nodes.push(node);
        scheduler.add((_dt, now) => node.engine.tick(now));
      } catch (err) {
        failed.push(cpId);
        log.warn({ cp: cpId, err: errText(err) }, 'CP did not start');
      }
    }));
    const wait = 100 - (Date.now() - started);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  if (stopping) return;
  if (o.portsFile) fs.writeFileSync(o.portsFile, JSON.stringify(Object.fromEntries(nodes.map((n) => [n.engine.cpId, n.health.port])), null, 1) + '\n');
  log.info({ ...summary(), start_s: (Date.now() - t0) / 1000 }, 'fleet started');
  let lastCpu = process.cpuUsage();
  let lastAt = Date.now();
  setInterval(() => {
    const cpu = process.cpuUsage(lastCpu);
    const now = Date.now();
    const cpuPct = Math.round(((cpu.user + cpu.system) / 1000 / (now - lastAt)) * 1000) / 10;
    lastCpu = process.cpuUsage();
    lastAt = now;
    if (o.ocpp) lastCalls = calls.take(now);
    log.info({ ...summary(), cpu_pct: cpuPct }, 'fleet');
  }, o.statsS * 1000).unref();
}
