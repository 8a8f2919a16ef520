import { PROTOCOL_VERSION, type DriverUpdateMsg } from '../protocol/index.js';
import type { SessionRecord } from './state.js';

/**
 * What central tells a driver about a session, as protocol DriverUpdateMsg: ACCEPTED until the
 * CP meters, IN_PROGRESS with kW/kWh/€ while it runs, COMPLETED or INTERRUPTED with the ticket
 * once it ended, always with when it started (a driver taking the session back times its limit from it).
 * The same function answers a QUERY and a repeated request.
 */
export function sessionUpdate(s: SessionRecord, requestId: string, ts: number): DriverUpdateMsg {
  const base = { v: PROTOCOL_VERSION, driver_id: s.driver_id, request_id: requestId, session_id: s.session_id, cp_id: s.cp_id, started_at: s.started_at, ts };
  const t = s.ticket;
  if (t) return { ...base, status: t.interrupted ? 'INTERRUPTED' : 'COMPLETED', kwh: t.kwh, eur: t.eur, reason: t.reason, ticket: t };
  if (s.telemetry_seq >= 0) return { ...base, status: 'IN_PROGRESS', kw: s.kw, kwh: s.kwh, eur: s.eur, ...(s.soc !== undefined ? { soc: s.soc } : {}) };
  return { ...base, status: 'ACCEPTED' };
}
