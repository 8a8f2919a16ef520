import { healthRequest } from '../firmware/health-client.js';
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

async function probeTcp(host: string, port: number, timeoutMs: number): Promise<HealthResult> {
  try {
    const reply = parseHealthReply(await healthRequest(host, port, 'PING', timeoutMs));
    return reply.ok ? { ok: true } : { ok: false, reason: reply.reason };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}
