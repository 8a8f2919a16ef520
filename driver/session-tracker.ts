import type { DriverUpdateMsg } from '../protocol/index.js';

/**
 * The driver's pure core: what it asked for, the updates central sent back, and the clock
 * (passed in) in; the line to print, whether the current request is finished and the running
 * totals out. No bus, no timers.
 */
export type Outcome = 'completed' | 'interrupted' | 'rejected' | 'timeout';

export interface CurrentRequest {
  requestId: string;
  cpId: string;
  sessionId?: string;
  /** waiting: no answer yet; charging: accepted; stopping: we sent STOP. */
  phase: 'waiting' | 'charging' | 'stopping';
  sentAt: number;
  chargingSince?: number;
  lastHeardAt: number;
  stopRequestId?: string;
}

export interface Totals {
  requested: number;
  sessions: number;
  completed: number;
  interrupted: number;
  kwh: number;
  eur: number;
  rejected: number;
  timedOut: number;
  invalidLines: number;
}

export interface TrackerState {
  driverId: string;
  current?: CurrentRequest;
  query?: { requestId: string; sentAt: number };
  /** Session ids whose end we already took (delivery is at-least-once). Bounded. */
  ended: readonly string[];
  totals: Totals;
}

export interface Limits { requestTimeoutMs: number; maxChargeMs?: number }

export interface Step {
  state: TrackerState;
  line?: string;
  finished?: Outcome;
  /** The update answered our QUERY. */
  queryAnswer?: boolean;
  /** Time to send STOP for the current session. */
  sendStop?: boolean;
}

const ENDED_MAX = 1000;
const kwStr = (n = 0) => `${n.toFixed(1)} kW`;
const kwhStr = (n = 0) => `${n.toFixed(2)} kWh`;
const eurStr = (n = 0) => `${n.toFixed(2)} €`;

export function initialTracker(driverId: string): TrackerState {
  return {
    driverId, ended: [],
    totals: { requested: 0, sessions: 0, completed: 0, interrupted: 0, kwh: 0, eur: 0, rejected: 0, timedOut: 0, invalidLines: 0 },
  };
}

/** One update on one line, e.g. `CP-001 IN_PROGRESS 11.0 kW 0.42 kWh 0.15 €` (without the driver id). */
export function describeUpdate(m: DriverUpdateMsg): string {
  const head = `${m.cp_id ?? m.ticket?.cp_id ?? '-'} ${m.status}`;
  switch (m.status) {
    case 'ACCEPTED': return `${head} session ${m.session_id ?? '?'}`;
    case 'REJECTED': return `${head} ${m.reason ?? 'no reason given'}`;
    case 'IN_PROGRESS': return `${head} ${kwStr(m.kw)} ${kwhStr(m.kwh)} ${eurStr(m.eur)}`;
    case 'COMPLETED':
    case 'INTERRUPTED': {
      const t = m.ticket;
      if (!t) return `${head} ${kwhStr(m.kwh)} ${eurStr(m.eur)}${m.reason ? ` reason ${m.reason}` : ''}`;
      return `${head} ${kwhStr(t.kwh)} ${eurStr(t.eur)} ticket ${t.session_id}: ${t.price_eur_kwh.toFixed(2)} €/kWh, ${Math.round(t.duration_s)} s, reason ${t.reason}`;
    }
  }
}

const isEnd = (m: DriverUpdateMsg) => m.status === 'COMPLETED' || m.status === 'INTERRUPTED';

/** We sent a REQUEST for `cpId`. */
export function requested(s: TrackerState, requestId: string, cpId: string, now: number): TrackerState {
  return { ...s, current: { requestId, cpId, phase: 'waiting', sentAt: now, lastHeardAt: now }, totals: { ...s.totals, requested: s.totals.requested + 1 } };
}

/** We sent a QUERY (on start: how did my last session end?). */
export function queried(s: TrackerState, requestId: string, now: number): TrackerState {
  return { ...s, query: { requestId, sentAt: now } };
}

/** We sent STOP for the current session. */
export function stopSent(s: TrackerState, requestId: string): TrackerState {
  if (!s.current) return s;
  return { ...s, current: { ...s.current, phase: 'stopping', stopRequestId: requestId } };
}

export function invalidLines(s: TrackerState, n: number): TrackerState {
  return { ...s, totals: { ...s.totals, invalidLines: s.totals.invalidLines + n } };
}

/** An update from central arrived. */
export function onUpdate(s: TrackerState, m: DriverUpdateMsg, now: number): Step {
  const text = describeUpdate(m);
  // Only the answer carrying the QUERY's request id: updates stored while this driver was away
  // (e.g. a stale IN_PROGRESS backlog) arrive first and are printed as they are.
  if (s.query && m.request_id === s.query.requestId) {
    // Told once: a ticket already printed (a stored update that came first) is not printed again,
    // and one printed here is not printed again when its stored update follows.
    const seen = isEnd(m) && !!m.session_id && s.ended.includes(m.session_id);
    const ended = isEnd(m) && m.session_id && !seen ? [...s.ended, m.session_id].slice(-ENDED_MAX) : s.ended;
    const said = m.status === 'REJECTED' && m.reason === 'no session' ? 'no earlier session'
      : seen ? `${m.session_id} (its ticket is above)` : text;
    return { state: { ...s, query: undefined, ended }, line: `${s.driverId} last session: ${said}`, queryAnswer: true };
  }
  if (isEnd(m) && m.session_id && s.ended.includes(m.session_id)) return { state: s }; // a redelivery
  const c = s.current;
  const mine = !!c && (m.request_id === c.requestId || m.request_id === c.stopRequestId || (!!m.session_id && m.session_id === c.sessionId));
  const line = `${s.driverId} ${text}`;
  const ended = isEnd(m) && m.session_id ? [...s.ended, m.session_id].slice(-ENDED_MAX) : s.ended;
  if (!mine || !c) return { state: { ...s, ended }, line };

  const cur: CurrentRequest = { ...c, lastHeardAt: now };
  switch (m.status) {
    case 'ACCEPTED':
    case 'IN_PROGRESS':
      if (cur.phase === 'waiting') { cur.phase = 'charging'; cur.chargingSince = now; }
      cur.sessionId ??= m.session_id;
      return { state: { ...s, current: cur }, line };
    case 'REJECTED':
      // A refused STOP does not end the session; a refused REQUEST ends the request.
      if (c.phase !== 'waiting') return { state: { ...s, current: cur }, line };
      return { state: { ...s, current: undefined, totals: { ...s.totals, rejected: s.totals.rejected + 1 } }, line, finished: 'rejected' };
    case 'COMPLETED':
    case 'INTERRUPTED': {
      const t = s.totals;
      const done = m.status === 'COMPLETED' ? 'completed' : 'interrupted';
      return {
        state: {
          ...s, current: undefined, ended,
          totals: {
            ...t, sessions: t.sessions + 1,
            completed: t.completed + (done === 'completed' ? 1 : 0), interrupted: t.interrupted + (done === 'interrupted' ? 1 : 0),
            kwh: t.kwh + (m.ticket?.kwh ?? m.kwh ?? 0), eur: t.eur + (m.ticket?.eur ?? m.eur ?? 0),
          },
        },
        line, finished: done,
      };
    }
  }
}

/** Time passed: answers that never came, and the charge-time limit. */
export function onTick(s: TrackerState, now: number, lim: Limits): Step {
  if (s.query && now - s.query.sentAt >= lim.requestTimeoutMs) {
    return { state: { ...s, query: undefined }, line: `${s.driverId} last session: no answer to QUERY within ${lim.requestTimeoutMs} ms` };
  }
  const c = s.current;
  if (!c) return { state: s };
  const timedOut = (line: string): Step => ({
    state: { ...s, current: undefined, totals: { ...s.totals, timedOut: s.totals.timedOut + 1 } }, line, finished: 'timeout',
  });
  if (c.phase === 'waiting' && now - c.sentAt >= lim.requestTimeoutMs) {
    return timedOut(`${s.driverId} ${c.cpId} TIMEOUT no answer within ${lim.requestTimeoutMs} ms, moving on`);
  }
  if (c.phase !== 'waiting' && now - c.lastHeardAt >= lim.requestTimeoutMs) {
    return timedOut(`${s.driverId} ${c.cpId} TIMEOUT no update for ${lim.requestTimeoutMs} ms, moving on`);
  }
  if (c.phase === 'charging' && lim.maxChargeMs !== undefined && c.chargingSince !== undefined && now - c.chargingSince >= lim.maxChargeMs) {
    return { state: s, sendStop: true, line: `${s.driverId} ${c.cpId} STOP after ${Math.round(lim.maxChargeMs / 1000)} s of charging` };
  }
  return { state: s };
}

export function summaryLine(s: TrackerState): string {
  const t = s.totals;
  return `${s.driverId} summary: ${t.sessions} session${t.sessions === 1 ? '' : 's'} (${t.completed} completed, ${t.interrupted} interrupted), `
    + `${kwhStr(t.kwh)}, ${eurStr(t.eur)}, ${t.rejected} rejected, ${t.timedOut} timed out, ${t.invalidLines} invalid line${t.invalidLines === 1 ? '' : 's'}`;
}
