import net from 'node:net';
import { parseHealthReply } from '../protocol/index.js';
import type { HealthCheck } from './plan.js';

export type HealthResult = { ok: true; detail?: string } | { ok: false; reason: string };

/** One health probe: HTTP GET (2xx = healthy) or the engine health port's `PING` → `OK`. */
export async function probeHealth(check: HealthCheck, timeoutMs = 1_500): Promise<HealthResult> {
  return check.kind === 'http' ? probeHttp(check.url, timeoutMs) : probeTcp(check.host, check.port, timeoutMs);
}

async function probeHttp(url: string, timeoutMs: number): Promise<HealthResult> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return res.ok ? { ok: true } : { ok: false, reason: `HTTP ${res.status}` };
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    return { ok: false, reason: cause?.code ?? (err as Error).name };
  }
}

function probeTcp(host: string, port: number, timeoutMs: number): Promise<HealthResult> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    let buf = '';
    const done = (r: HealthResult) => { clearTimeout(timer); sock.destroy(); resolve(r); };
    const timer = setTimeout(() => done({ ok: false, reason: 'timeout' }), timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write('PING\n'));
    sock.on('data', (d: string) => {
      buf += d;
      const i = buf.indexOf('\n');
      if (i < 0) return;
      const reply = parseHealthReply(buf.slice(0, i));
      done(reply.ok ? { ok: true } : { ok: false, reason: reply.reason });
    });
    sock.on('error', (err: NodeJS.ErrnoException) => done({ ok: false, reason: err.code ?? err.message }));
    sock.on('close', () => done({ ok: false, reason: 'closed' }));
  });
}
