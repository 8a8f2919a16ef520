import type { CpState, DriverAction, ProfileSummary, SessionEndReason, Ticket } from '../protocol/index.js';

/**
 * Central's durable state and the one reducer that changes it. Every change is an event: the
 * store journals it, replay applies the same events, so a restarted central rebuilds exactly
 * what it knew. No I/O and no clock here; times arrive inside the events.
 */

export type SessionStatus = 'ACTIVE' | 'COMPLETED' | 'INTERRUPTED';

export interface CpRecord {
  cp_id: string;
  /** The engine's own state as it last reported it (DISCONNECTED until it has spoken). */
  engine_state: CpState;
  /** Highest engine status seq applied (a last will is applied whatever its seq). */
  status_seq: number;
  faults: string[];
  /** The session the engine last said it is supplying. */
  engine_session_id?: string;
  profile?: ProfileSummary;
  boot_id?: string;
  health_host?: string;
  health_port?: number;
  /** Stopped by an admin: refuses requests until resumed, whatever the engine says. */
  admin_stopped: boolean;
  /** How central learned of it: the engine spoke, the CP file listed it, or only a monitor reported it. */
  source: 'engine' | 'file' | 'monitor';
  last_seen: number;
  /** The gateway its messages last came through (protocol `gw`, stamped by the gateway). */
  gw?: string;
}

export interface SessionRecord {
  session_id: string;
  cp_id: string;
  driver_id: string;
  request_id: string;
  status: SessionStatus;
  started_at: number;
  ended_at: number | null;
  kw: number;
  kwh: number;
  eur: number;
  price_eur_kwh: number;
  end_reason: SessionEndReason | null;
  interrupted: boolean;
  ticket: Ticket | null;
  /** The CP showed it runs this session (ack, status or telemetry); an unconfirmed start is closed after a deadline. */
  confirmed: boolean;
  /** The final update with the ticket went out (else it is sent again after a restart). */
  ticket_sent: boolean;
  /** Central expects the session to end for this reason (admin stop, fault): closed from telemetry if the CP never reports the end. */
  pending_end: { reason: SessionEndReason; deadline: number } | null;
  /** Last telemetry seq applied (older, redelivered telemetry is ignored). */
  telemetry_seq: number;
  /** The vehicle's battery level (0..1) as the CP last metered it, when it reports one. */
  soc?: number;
  /** The ticket is central's estimate (closed from telemetry without the CP's record): the CP's own session_end, if it comes, supersedes it once. */
  estimated?: boolean;
}

export interface RequestRecord {
  request_id: string;
  driver_id: string;
  action: DriverAction;
  cp_id?: string;
  outcome: 'ACCEPTED' | 'REJECTED' | 'STOP_SENT';
  reason?: string;
  session_id?: string;
  /** When central decided it (older journals lack it); the registry is pruned by age and size. */
  at?: number;
}

/** A gateway that has beaten at least once: its CPs are unreachable while it is silent. */
export interface GatewayRecord { gateway_id: string; boot_id: string; interval_ms: number; first_at: number }

export interface CentralState {
  cps: Map<string, CpRecord>;
  sessions: Map<string, SessionRecord>;
  requests: Map<string, RequestRecord>;
  gateways: Map<string, GatewayRecord>;
  /** Running sessions by CP and by driver: derived (kept by `apply`, rebuilt on load, never journaled), so a lookup is not a scan of every session. */
  active: ActiveIndex;
}

interface ActiveIndex { byCp: Map<string, Set<SessionRecord>>; byDriver: Map<string, Set<SessionRecord>> }
const add = (m: Map<string, Set<SessionRecord>>, k: string, ss: SessionRecord) => { let set = m.get(k); if (!set) m.set(k, (set = new Set())); set.add(ss); };
const remove = (m: Map<string, Set<SessionRecord>>, k: string, ss: SessionRecord) => { const set = m.get(k); if (set?.delete(ss) && !set.size) m.delete(k); };
function indexActive(s: CentralState, ss: SessionRecord): void {
  if (ss.status !== 'ACTIVE') return;
  add(s.active.byCp, ss.cp_id, ss);
  add(s.active.byDriver, ss.driver_id, ss);
}
const first = (set: Set<SessionRecord> | undefined) => (set ? set.values().next().value : undefined);

export type CentralEvent =
  | { t: 'cp_seen'; cp_id: string; source: CpRecord['source']; profile?: ProfileSummary; at: number }
  | { t: 'cp_announced'; cp_id: string; profile: ProfileSummary; boot_id: string; health_host?: string; health_port?: number; gw?: string; at: number }
  | { t: 'cp_status'; cp_id: string; state: CpState; faults: string[]; session_id?: string; seq: number; gw?: string; at: number }
  | { t: 'cp_admin'; cp_id: string; stopped: boolean }
  | { t: 'session_started'; session: SessionRecord }
  | { t: 'session_confirmed'; session_id: string }
  | { t: 'telemetry'; session_id: string; kw: number; kwh: number; eur: number; seq: number; soc?: number }
  | { t: 'session_pending_end'; session_id: string; reason: SessionEndReason; deadline: number }
  | { t: 'session_ended'; session_id: string; ticket: Ticket; estimate?: boolean }
  | { t: 'ticket_sent'; session_id: string }
  | { t: 'request_done'; request: RequestRecord }
  /** The CP showed it still runs a session central was holding (lost link, silent gateway): the hold is lifted. */
  | { t: 'session_resumed'; session_id: string }
  | { t: 'gateway_seen'; gateway: GatewayRecord }
  /** The CP's own record arrived for a session central had closed with an estimate: it replaces the estimate (once). */
  | { t: 'session_rebilled'; session_id: string; ticket: Ticket }
  /** Bounded growth: old request ids and old, fully delivered sessions leave the state. */
  | { t: 'pruned'; request_ids: string[]; session_ids: string[] };

export function emptyState(): CentralState {
  return { cps: new Map(), sessions: new Map(), requests: new Map(), gateways: new Map(), active: { byCp: new Map(), byDriver: new Map() } };
}

export function newCp(cp_id: string, source: CpRecord['source'], at: number): CpRecord {
  return { cp_id, engine_state: 'DISCONNECTED', status_seq: -1, faults: [], admin_stopped: false, source, last_seen: at };
}

/** Applies one event in place. Unknown ids in an event are ignored (replay never throws). */
export function apply(s: CentralState, e: CentralEvent): void {
  switch (e.t) {
    case 'cp_seen': {
      const cp = s.cps.get(e.cp_id);
      if (!cp) s.cps.set(e.cp_id, { ...newCp(e.cp_id, e.source, e.at), ...(e.profile ? { profile: e.profile } : {}) });
      else if (e.profile && !cp.profile) cp.profile = e.profile;
      return;
    }
    case 'cp_announced': {
      const cp = s.cps.get(e.cp_id) ?? newCp(e.cp_id, 'engine', e.at);
      // Every (re)connect starts with an announce, and per-CP order puts the statuses of that
      // connection after it: a new sequence begins (a last will's seq may be above the engine's).
      cp.status_seq = -1;
      Object.assign(cp, { profile: e.profile, boot_id: e.boot_id, source: 'engine', last_seen: e.at });
      if (e.health_host !== undefined) cp.health_host = e.health_host;
      if (e.health_port !== undefined) cp.health_port = e.health_port;
      if (e.gw !== undefined) cp.gw = e.gw;
      s.cps.set(e.cp_id, cp);
      return;
    }
    case 'cp_status': {
      const cp = s.cps.get(e.cp_id) ?? newCp(e.cp_id, 'engine', e.at);
      Object.assign(cp, { engine_state: e.state, faults: e.faults, status_seq: e.seq, last_seen: e.at, source: 'engine' });
      if (e.session_id) cp.engine_session_id = e.session_id; else delete cp.engine_session_id;
      if (e.gw !== undefined) cp.gw = e.gw;
      s.cps.set(e.cp_id, cp);
      return;
    }
    case 'cp_admin': {
      const cp = s.cps.get(e.cp_id);
      if (cp) cp.admin_stopped = e.stopped;
      return;
    }
    case 'session_started':
      if (!s.sessions.has(e.session.session_id)) {
        const ss = { ...e.session };
        s.sessions.set(ss.session_id, ss);
        indexActive(s, ss);
      }
      return;
    case 'session_confirmed': {
      const ss = s.sessions.get(e.session_id);
      if (ss) ss.confirmed = true;
      return;
    }
    case 'telemetry': {
      const ss = s.sessions.get(e.session_id);
      if (ss && ss.status === 'ACTIVE' && e.seq > ss.telemetry_seq) Object.assign(ss, { kw: e.kw, kwh: e.kwh, eur: e.eur, telemetry_seq: e.seq, ...(e.soc !== undefined ? { soc: e.soc } : {}) });
      return;
    }
    case 'session_pending_end': {
      const ss = s.sessions.get(e.session_id);
      if (ss && ss.status === 'ACTIVE' && !ss.pending_end) ss.pending_end = { reason: e.reason, deadline: e.deadline };
      return;
    }
    case 'session_ended': {
      const ss = s.sessions.get(e.session_id);
      // Billed once: a session that has its ticket keeps it.
      if (!ss || ss.ticket) return;
      remove(s.active.byCp, ss.cp_id, ss);
      remove(s.active.byDriver, ss.driver_id, ss);
      const t = e.ticket;
      Object.assign(ss, {
        status: t.interrupted ? 'INTERRUPTED' : 'COMPLETED', ended_at: t.ended_at, kw: 0, kwh: t.kwh, eur: t.eur, price_eur_kwh: t.price_eur_kwh,
        end_reason: t.reason, interrupted: t.interrupted, ticket: t, pending_end: null, ...(e.estimate ? { estimated: true } : {}),
      });
      return;
    }
    case 'session_rebilled': {
      const ss = s.sessions.get(e.session_id);
      // Only an estimate is replaced, and only once: the CP's record is final.
      if (!ss || !ss.ticket || !ss.estimated) return;
      const t = e.ticket;
      Object.assign(ss, {
        status: t.interrupted ? 'INTERRUPTED' : 'COMPLETED', ended_at: t.ended_at, kwh: t.kwh, eur: t.eur, price_eur_kwh: t.price_eur_kwh,
        end_reason: t.reason, interrupted: t.interrupted, ticket: t, estimated: false, ticket_sent: false,
      });
      return;
    }
    case 'ticket_sent': {
      const ss = s.sessions.get(e.session_id);
      if (ss) ss.ticket_sent = true;
      return;
    }
    case 'request_done':
      if (!s.requests.has(e.request.request_id)) s.requests.set(e.request.request_id, { ...e.request });
      return;
    case 'session_resumed': {
      const ss = s.sessions.get(e.session_id);
      if (ss && ss.status === 'ACTIVE') ss.pending_end = null;
      return;
    }
    case 'gateway_seen':
      s.gateways.set(e.gateway.gateway_id, { ...e.gateway });
      return;
    case 'pruned':
      for (const id of e.request_ids) s.requests.delete(id);
      // A running session or a ticket not yet delivered is never pruned.
      for (const id of e.session_ids) { const ss = s.sessions.get(id); if (ss && ss.ticket && ss.ticket_sent) s.sessions.delete(id); }
      return;
  }
}

/** The session running at a CP, as central sees it. */
export function activeSessionAt(s: CentralState, cpId: string): SessionRecord | undefined {
  return first(s.active.byCp.get(cpId));
}

/** The driver's running session, if any. */
export function activeSessionOf(s: CentralState, driverId: string): SessionRecord | undefined {
  return first(s.active.byDriver.get(driverId));
}

/** The driver's most recent session (by start time). */
export function latestSessionOf(s: CentralState, driverId: string): SessionRecord | undefined {
  let best: SessionRecord | undefined;
  for (const ss of s.sessions.values()) if (ss.driver_id === driverId && (!best || ss.started_at >= best.started_at)) best = ss;
  return best;
}

/** Plain JSON form of the state, for snapshots. */
export function serializeState(s: CentralState): unknown {
  return { cps: [...s.cps.values()], sessions: [...s.sessions.values()], requests: [...s.requests.values()], gateways: [...s.gateways.values()] };
}

export function deserializeState(raw: unknown): CentralState {
  const r = (raw ?? {}) as { cps?: CpRecord[]; sessions?: SessionRecord[]; requests?: RequestRecord[]; gateways?: GatewayRecord[] };
  const s: CentralState = {
    ...emptyState(),
    cps: new Map((r.cps ?? []).map((c) => [c.cp_id, c])),
    sessions: new Map((r.sessions ?? []).map((x) => [x.session_id, x])),
    requests: new Map((r.requests ?? []).map((x) => [x.request_id, x])),
    gateways: new Map((r.gateways ?? []).map((x) => [x.gateway_id, x])),
  };
  for (const ss of s.sessions.values()) indexActive(s, ss);
  return s;
}
