import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import { applyHttpLimits, DEFAULT_HTTP_LIMITS, serverOptionsFor } from '../lib/http-limits.js';
import os from 'node:os';
import path from 'node:path';
import { CLI_ENTRY } from '../lib/paths.js';
import type { Logger } from '../lib/log.js';
import { onShutdown } from '../lib/lifecycle.js';
import { allocatePort } from '../network/ports.js';
import { ORPHAN_GUARD } from '../network/supervisor.js';

/** One slice of the fleet: CP numbers [first, first + count). */
export interface Slice { first: number; count: number }

/** Splits `count` CPs starting at `first` into `workers` contiguous slices, as even as they go. */
export function slices(first: number, count: number, workers: number): Slice[] {
  const n = Math.max(1, Math.min(workers, count));
  const out: Slice[] = [];
  let at = first;
  for (let i = 0; i < n; i++) {
    const c = Math.floor(count / n) + (i < count % n ? 1 : 0);
    out.push({ first: at, count: c });
    at += c;
  }
  return out;
}

interface WorkerHealth { connected?: number; started?: number; failed?: number; states?: Record<string, number>; rss_mb?: number; ocpp?: { calls_per_s: number; p50_ms: number | null; p99_ms: number | null; errors: number }; sessions?: number }

/**
 * `evcharging fleet --workers N`: the fleet over N processes (default: one per core), each a
 * plain one-process fleet of its slice, so every core runs engines and no process reaches its
 * file-descriptor limit (two per CP). This parent only starts them, serves the fleet's summed
 * /health and /cps, writes the merged ports file and stops them on SIGTERM.
 */
/** Workers run with the fleet's own node flags (heap limits, profiling), as `fork` would, but no debugger port to clash on. */
export const workerNodeFlags = (argv: readonly string[] = process.execArgv): string[] => argv.filter((a) => !/^--(inspect|debug)/.test(a));

export async function runFleetWorkers(o: { args: string[]; first: number; count: number; workers: number; healthBasePort: number; httpPort?: number; portsFile?: string; host: string; summaryS?: number }, log: Logger): Promise<void> {
  const parts = slices(o.first, o.count, o.workers);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'evcharging-fleet-'));
  const children: Array<{ child: ChildProcess; port: number; portsFile: string; slice: Slice; exited: boolean }> = [];
  let stopping = false;
  for (const [i, slice] of parts.entries()) {
    const port = await allocatePort(o.host);
    const portsFile = path.join(dir, `ports-${i}.json`);
    const base = o.healthBasePort ? ['--health-base-port', String(o.healthBasePort + slice.first - o.first)] : [];
    const child = spawn(process.execPath, [...workerNodeFlags(), '--import', ORPHAN_GUARD, CLI_ENTRY, 'fleet', ...o.args, '--workers', '1', '--first', String(slice.first), '--count', String(slice.count),
      '--http-port', String(port), '--ports-file', portsFile, ...base], { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, EVCHARGING_SUPERVISOR_PID: String(process.pid) } });
    const entry = { child, port, portsFile, slice, exited: false };
    child.on('exit', (code, signal) => {
      entry.exited = true;
      if (!stopping) log.error({ worker: i, first: slice.first, count: slice.count, code, signal }, 'fleet worker exited');
    });
    children.push(entry);
  }
  log.info({ workers: parts.length, count: o.count, slices: parts }, `fleet of ${o.count} CPs over ${parts.length} worker processes`);

  const fetchJson = async (port: number, route: string): Promise<unknown> => {
    const res = await fetch(`http://${o.host === '0.0.0.0' ? '127.0.0.1' : o.host}:${port}${route}`, { signal: AbortSignal.timeout(2_000) });
    return res.json();
  };
  const health = async () => {
    const all = await Promise.all(children.map((c) => (c.exited ? undefined : fetchJson(c.port, '/health').catch(() => undefined)) as Promise<WorkerHealth | undefined>));
    const sum = { count: o.count, workers: children.length, workers_up: 0, started: 0, failed: 0, connected: 0, states: {} as Record<string, number>, rss_mb: 0,
      // OCPP: calls answered per second summed; response times of the slowest worker (each worker's window is its own).
      ocpp_calls_per_s: 0, ocpp_p50_ms: null as number | null, ocpp_p99_ms: null as number | null, sessions: 0 };
    for (const h of all) {
      if (!h) continue;
      sum.workers_up++;
      sum.started += h.started ?? 0; sum.failed += h.failed ?? 0; sum.connected += h.connected ?? 0; sum.rss_mb += h.rss_mb ?? 0;
      for (const [k, v] of Object.entries(h.states ?? {})) sum.states[k] = (sum.states[k] ?? 0) + v;
      if (h.ocpp) {
        sum.ocpp_calls_per_s += h.ocpp.calls_per_s;
        if (h.ocpp.p50_ms !== null) sum.ocpp_p50_ms = Math.max(sum.ocpp_p50_ms ?? 0, h.ocpp.p50_ms);
        if (h.ocpp.p99_ms !== null) sum.ocpp_p99_ms = Math.max(sum.ocpp_p99_ms ?? 0, h.ocpp.p99_ms);
      }
      sum.sessions += h.sessions ?? 0;
    }
    return sum;
  };

  let server: http.Server | undefined;
  if (o.httpPort !== undefined) {
    server = http.createServer(serverOptionsFor(DEFAULT_HTTP_LIMITS), (req, res) => {
      const route = req.url?.split('?')[0];
      const send = (code: number, body: unknown) => res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (route === '/health') return void health().then((h) => send(h.workers_up === h.workers ? 200 : 503, { status: h.workers_up === h.workers ? 'ok' : 'degraded', ...h }));
      if (route === '/cps') return void Promise.all(children.map((c) => fetchJson(c.port, '/cps').catch(() => []) as Promise<unknown[]>)).then((lists) => send(200, lists.flat()));
      send(404, { error: 'try /health or /cps' });
    });
    server.requestTimeout = 10_000;
    applyHttpLimits(server, DEFAULT_HTTP_LIMITS);
    await new Promise<void>((resolve, reject) => { server!.once('error', reject); server!.listen(o.httpPort, o.host, () => resolve()); });
  }

  onShutdown(log, [
    () => new Promise<void>((r) => (server ? server.close(() => r()) : r())),
    async () => {
      stopping = true;
      await Promise.all(children.map((c) => new Promise<void>((r) => {
        if (c.exited) return r();
        c.child.once('exit', () => r());
        c.child.kill('SIGTERM');
      })));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  ], 35_000);

  // An OCPP load test reads the whole fleet's figures in one line.
  if (o.summaryS) {
    const t = setInterval(() => { if (!stopping) void health().then((h) => log.info(h, 'fleet')); }, o.summaryS * 1000);
    t.unref();
  }

  // The merged ports file appears once every worker wrote its own.
  if (o.portsFile) {
    const file = o.portsFile;
    const timer = setInterval(() => {
      if (stopping || !children.every((c) => fs.existsSync(c.portsFile))) return;
      clearInterval(timer);
      const merged = Object.assign({}, ...children.map((c) => JSON.parse(fs.readFileSync(c.portsFile, 'utf8')) as Record<string, number>));
      fs.writeFileSync(file, JSON.stringify(merged, null, 1) + '\n');
      log.info({ cps: Object.keys(merged).length, ports_file: file }, 'fleet started');
    }, 200);
  }
}
