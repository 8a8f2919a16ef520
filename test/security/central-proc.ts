import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../helpers/ports.js';
import { spawnCli, type CliProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A real `evcharging central` process on its own temp data dir, for the attacks on central's
 * HTTP side. No gateway is needed for those (central serves HTTP at once and waits for its bus
 * in the background; /health answers 503 with its full body meanwhile); CPs come from a --cp-file.
 */
export interface CentralProc { url: string; port: number; dir: string; dataDir: string; token: string; proc: CliProcess; stop(): Promise<void>; restart(extra?: string[]): Promise<void> }

export async function startCentralProc(o: { cps?: string[]; args?: string[]; env?: Record<string, string>; dir?: string; dataDir?: string; expectUp?: boolean } = {}): Promise<CentralProc> {
  const dir = o.dir ?? await fs.mkdtemp(path.join(os.tmpdir(), 'sec-central-'));
  const dataDir = o.dataDir ?? path.join(dir, 'data');
  const port = await freePort();
  const cpFile = path.join(dir, 'cps.json');
  await fs.writeFile(cpFile, JSON.stringify(o.cps ?? ['CP-001', 'CP-002']));
  const token = `sec-admin-${Math.random().toString(36).slice(2)}`;
  const busPort = await freePort(); // nothing listens there: the bus stays away, HTTP serves
  const argsOf = (extra: string[] = []) => ['central', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir, '--cp-file', cpFile,
    '--bus-mqtt', `mqtt://127.0.0.1:${busPort}`, ...(o.args ?? []), ...extra];
  const env = { CENTRAL_ADMIN_TOKEN: token, ...o.env };
  const c: CentralProc = {
    url: `http://127.0.0.1:${port}`, port, dir, dataDir, token, proc: spawnCli(argsOf(), { env }),
    async stop() { await c.proc.kill('SIGKILL'); await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined); },
    async restart(extra) {
      await c.proc.kill('SIGTERM');
      c.proc = spawnCli(argsOf(extra), { env });
      await up(c);
    },
  };
  if (o.expectUp !== false) await up(c);
  return c;
}

async function up(c: CentralProc): Promise<void> {
  await waitFor(async () => {
    if (c.proc.child.exitCode !== null) throw new Error(`central exited:\n${c.proc.lines.join('\n')}`);
    // Serving: central's own body (503 while its bus is away, as here: these attacks need no bus).
    return (await get(c.url, '/health').catch(() => undefined))?.body?.service === 'ev-central';
  }, { timeoutMs: 30_000, intervalMs: 100, what: 'central /health' });
}

/** One request on a fresh connection (no keep-alive pool), with a deadline. */
export function get(base: string, route: string, headers: Record<string, string> = {}, timeoutMs = 5_000): Promise<{ status: number; body: any }> {
  return request(base, 'GET', route, undefined, headers, timeoutMs);
}

export function request(base: string, method: string, route: string, body?: unknown, headers: Record<string, string> = {}, timeoutMs = 5_000): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = http.request(`${base}${route}`, {
      method, agent: false, timeout: timeoutMs,
      headers: { ...(data !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {}), ...headers },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { text += d; });
      res.on('end', () => {
        let parsed: unknown = text;
        try { parsed = JSON.parse(text); } catch { /* kept as text */ }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${route}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(data);
  });
}

/** Resident memory of a process, in MB (Linux /proc). */
export async function rssMb(pid: number): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
}
