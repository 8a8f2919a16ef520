import type { OcppLink } from '../firmware/ocpp/ocpp-link.js';

/**
 * What an OCPP fleet does on its own, as the SAP e-mobility simulator's automatic transaction
 * generator does: each charge point waits a random pause, then with some probability a driver
 * presents one of the id tags (Authorize, local start), charges for a random duration and stops
 * at the charge point; then the next pause. And the statistics a load test of a central system
 * reads: calls answered per second and the central system's response time, p50 and p99.
 */
export interface BehaviourOptions {
  probability: number;
  durationS: [number, number];
  pauseS: [number, number];
  idTags: string[];
}

const between = ([lo, hi]: [number, number], random: () => number) => lo + random() * Math.max(0, hi - lo);

/** Runs one charge point's sessions until `stop()`; a refused or failed start just waits for the next turn. */
export function runBehaviour(link: OcppLink, o: BehaviourOptions, random: () => number = Math.random): { stop(): void; readonly sessions: number } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let sessions = 0;
  const later = (s: number, fn: () => void) => { if (!stopped) { timer = setTimeout(fn, s * 1000); timer.unref(); } };
  const pause = () => later(between(o.pauseS, random), () => void attempt());
  const attempt = async () => {
    if (stopped) return;
    if (!link.connected || random() >= o.probability) return pause();
    const tag = o.idTags[Math.floor(random() * o.idTags.length)] ?? 'FLEET-TAG';
    const ok = await link.localStart(tag).catch(() => false);
    if (!ok) return pause();
    sessions++;
    later(between(o.durationS, random), () => { void link.localStop().catch(() => false).finally(pause); });
  };
  pause();
  return { stop() { stopped = true; clearTimeout(timer); }, get sessions() { return sessions; } };
}

/** Response times of the central system over a reporting window. */
export class CallStats {
  private ms: number[] = [];
  private errors = 0;
  private since = Date.now();
  total = 0;

  record(_method: string, ms: number, ok: boolean): void {
    this.total++;
    if (ok) this.ms.push(ms); else this.errors++;
  }

  /** The window's figures; starts a new window. */
  take(now = Date.now()): { calls_per_s: number; p50_ms: number | null; p99_ms: number | null; errors: number } {
    const s = [...this.ms].sort((a, b) => a - b);
    const q = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))]! : null);
    const out = { calls_per_s: Math.round(((s.length + this.errors) / Math.max(0.001, (now - this.since) / 1000)) * 10) / 10, p50_ms: q(0.5), p99_ms: q(0.99), errors: this.errors };
    this.ms = []; this.errors = 0; this.since = now;
    return out;
  }
}
