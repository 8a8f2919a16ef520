import type { MonitorReportMsg } from '../protocol/index.js';

/**
 * What the CPs' monitors last said. Kept in memory only: monitors report every second, so a
 * restarted central knows them again within a second (until then a CP reads UNKNOWN).
 */
export type MonitorStatus = 'OK' | 'KO' | 'DOWN' | 'UNKNOWN';

export interface MonitorRecord { last_at: number; engine_ok: boolean; kind: MonitorReportMsg['kind']; reason?: string; monitor_id: string }

/**
 * UNKNOWN: no monitor has ever reported (e.g. fleet CPs run without monitors), counted as
 * healthy. DOWN: it had reported, then fell silent beyond the timeout. KO: it says the engine
 * is unhealthy. OK otherwise.
 */
export function monitorStatus(m: MonitorRecord | undefined, now: number, timeoutMs: number): MonitorStatus {
  if (!m) return 'UNKNOWN';
  if (now - m.last_at > timeoutMs) return 'DOWN';
  return m.engine_ok ? 'OK' : 'KO';
}

/** A report's verdict on the engine: a fault report is KO even if it claims engine_ok. */
export function reportSaysOk(r: Pick<MonitorReportMsg, 'kind' | 'engine_ok'>): boolean {
  if (r.kind === 'fault') return false;
  if (r.kind === 'recovered') return true;
  return r.engine_ok;
}
