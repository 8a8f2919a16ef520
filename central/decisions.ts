import type { MonitorStatus } from './monitors.js';
import type { CpRecord, RequestRecord, SessionRecord } from './state.js';

/**
 * Whether a driver's REQUEST may start a session. Pure: the caller passes what central knows.
 * Checks in order: a repeated request_id gets its first answer again; the driver must not be
 * charging already; the CP must be known, not stopped by an admin, healthy per its monitor
 * (UNKNOWN counts as healthy: CPs without a monitor still work), connected, not faulty,
 * ACTIVATED and free.
 */
export type RequestDecision =
  | { kind: 'repeat'; previous: RequestRecord }
  | { kind: 'accept' }
  | { kind: 'reject'; reason: RejectReason };

export const REJECT_REASONS = [
  'driver already charging', 'unknown CP', 'CP stopped', 'CP faulty', 'monitor down', 'CP disconnected', 'CP busy',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

export interface RequestContext {
  previous?: RequestRecord;
  cp?: CpRecord;
  monitor: MonitorStatus;
  activeAtCp?: SessionRecord;
  activeOfDriver?: SessionRecord;
}

export function decideRequest(c: RequestContext): RequestDecision {
  if (c.previous) return { kind: 'repeat', previous: c.previous };
  if (c.activeOfDriver) return { kind: 'reject', reason: 'driver already charging' };
  const cp = c.cp;
  if (!cp) return { kind: 'reject', reason: 'unknown CP' };
  if (cp.admin_stopped) return { kind: 'reject', reason: 'CP stopped' };
  if (c.monitor === 'KO') return { kind: 'reject', reason: 'CP faulty' };
  if (c.monitor === 'DOWN') return { kind: 'reject', reason: 'monitor down' };
  switch (cp.engine_state) {
    case 'DISCONNECTED': return { kind: 'reject', reason: 'CP disconnected' };
    case 'FAULTY': return { kind: 'reject', reason: 'CP faulty' };
    case 'STOPPED': return { kind: 'reject', reason: 'CP stopped' };
    case 'SUPPLYING': return { kind: 'reject', reason: 'CP busy' };
    case 'ACTIVATED': break;
  }
  if (c.activeAtCp) return { kind: 'reject', reason: 'CP busy' };
  return { kind: 'accept' };
}

/** A driver's STOP: the session to stop, or why there is none. */
export function decideStop(active: SessionRecord | undefined): { kind: 'stop'; session: SessionRecord } | { kind: 'reject'; reason: 'no active session' } {
  return active ? { kind: 'stop', session: active } : { kind: 'reject', reason: 'no active session' };
}
