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
  /** When we stop waiting for the answer (sent with the REQUEST as `expires_at`). */
  expiresAt: number;
  chargingSince?: number;
  lastHeardAt: number;
  stopRequestId?: string;
  stopSentAt?: number;
  stops?: number;
  /** We gave up waiting and sent CANCEL: the request itself is withdrawn. */
  cancelled?: boolean;
  /**
   * An open QUERY asking central where this request or session stands (after a timeout, a
   * silence, a refused STOP, "driver already charging", or a restart): the driver never moves on
   * while a session of its own might still run.
   */
  check?: { queryId: string; sentAt: number; attempts: number };
}

/** A request the tracker wants sent (ids are derived from the current request's, so the core stays pure). */
export interface Outgoing {
  action: 'STOP' | 'CANCEL' | 'QUERY';
  request_id: string;
  cp_id?: string;
  cancels?: string;
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
  /** Sessions whose end we already took (delivery is at-least-once), with the ticket we printed. Bounded. */
  ended: readonly EndedSession[];
  /** Requests we cancelled and moved on from: a late ACCEPTED for one of them is stopped at once. Bounded. */
  abandoned: readonly string[];
  totals: Totals;
}

/** A session's end as we printed it: a later, different ticket from central supersedes it (rebilled from the CP's meter). */
export interface EndedSession { id: string; status: 'COMPLETED' | 'INTERRUPTED'; kwh: number; eur: number; reason?: string; ts: number; /** In this run's totals (a past session's ticket is printed, not counted). */ counted: boolean }

export interface Limits { requestTimeoutMs: number; maxChargeMs?: number }

export interface Step {
  state: TrackerState;
  line?: string;
  finished?: Outcome;
  /** The update answered our QUERY. */
  queryAnswer?: boolean;
  /** Time to send STOP for the current session (the caller picks the id and calls stopSent). */
  sendStop?: boolean;
  /** Requests to send now, in this order. */
  send?: Outgoing[];
  /** The answer to the start-up QUERY is a session still running: it is now the current one (the caller waits for it to finish). */
  adopted?: boolean;
}

const ENDED_MAX = 1000;
const kwStr = (n = 0) => `${n.toFixed(1)} kW`;
const kwhStr = (n = 0) => `${n.toFixed(2)} kWh`;
const eurStr = (n = 0) => `${n.toFixed(2)} €`;

export function initialTracker(driverId: string): TrackerState {
  return {
    driverId, ended: [], abandoned: [],
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
const endOf = (m: DriverUpdateMsg, counted = false): EndedSession => ({
  id: m.session_id ?? '', counted, status: m.status === 'COMPLETED' ? 'COMPLETED' : 'INTERRUPTED',
  kwh: m.ticket?.kwh ?? m.kwh ?? 0, eur: m.ticket?.eur ?? m.eur ?? 0, reason: m.ticket?.reason ?? m.reason, ts: m.ts,
});
const endedAs = (s: TrackerState, sid?: string) => (sid ? s.ended.find((e) => e.id === sid) : undefined);
/**
 * Central closes a session it could not reach on an estimate, then rebills it once from the
 * CP's own record: a newer end with another ticket is the final word. An older or equal one is
 * a redelivery.
 */
const supersedes = (prev: EndedSession, m: DriverUpdateMsg) => {
  const e = endOf(m);
  return e.ts > prev.ts && (e.kwh !== prev.kwh || e.eur !== prev.eur || e.reason !== prev.reason || e.status !== prev.status);
};
const withEnded = (s: TrackerState, m: DriverUpdateMsg, counted = false) =>
  (m.session_id ? [...s.ended.filter((e) => e.id !== m.session_id), endOf(m, counted)].slice(-ENDED_MAX) : s.ended);

/** The printed ticket replaced by a newer one: the line, the totals corrected by the difference. */
function rebilled(s: TrackerState, prev: EndedSession, m: DriverUpdateMsg, text: string): Step {
  const e = endOf(m);
  const t = s.totals;
  const moved = e.status !== prev.status;
  const totals: Totals = !prev.counted ? t : {
    ...t, kwh: t.kwh - prev.kwh + e.kwh, eur: t.eur - prev.eur + e.eur,
    completed: t.completed + (moved ? (e.status === 'COMPLETED' ? 1 : -1) : 0),
    interrupted: t.interrupted + (moved ? (e.status === 'INTERRUPTED' ? 1 : -1) : 0),
  };
  return {
    state: { ...s, ended: withEnded(s, m, prev.counted), totals },
    line: `${s.driverId} ${text} (rebilled from the CP's meter; replaces ${kwhStr(prev.kwh)} ${eurStr(prev.eur)}${prev.reason ? ` reason ${prev.reason}` : ''})`,
  };
}

/** We sent a REQUEST for `cpId`; `expiresAt` is when we stop waiting for its answer. */
export function requested(s: TrackerState, requestId: string, cpId: string, now: number, expiresAt = Number.MAX_SAFE_INTEGER): TrackerState {
  return { ...s, current: { requestId, cpId, phase: 'waiting', sentAt: now, expiresAt, lastHeardAt: now }, totals: { ...s.totals, requested: s.totals.requested + 1 } };
}

/** We sent a QUERY (on start: how did my last session end?). */
export function queried(s: TrackerState, requestId: string, now: number): TrackerState {
  return { ...s, query: { requestId, sentAt: now } };
}

/** We sent STOP for the current session. */
export function stopSent(s: TrackerState, requestId: string, now = 0): TrackerState {
  if (!s.current) return s;
  return { ...s, current: { ...s.current, phase: 'stopping', stopRequestId: requestId, stopSentAt: now, stops: (s.current.stops ?? 0) + 1 } };
}

const ABANDONED_MAX = 100;
const CHECK_ID = /-q\d+$/;
const isRunning = (m: DriverUpdateMsg) => m.status === 'ACCEPTED' || m.status === 'IN_PROGRESS';

/** Opens (or renews) a QUERY about the current request or session. */
function withCheck(c: CurrentRequest, now: number): { cur: CurrentRequest; out: Outgoing } {
  const attempts = (c.check?.attempts ?? 0) + 1;
  const queryId = `${c.requestId}-q${attempts}`;
  return { cur: { ...c, check: { queryId, sentAt: now, attempts } }, out: { action: 'QUERY', request_id: queryId } };
}

/** Takes the running session an answer names as the current one: followed, stopped at the limit, its ticket printed. */
function adopt(c: CurrentRequest, m: DriverUpdateMsg, now: number): CurrentRequest {
  const sameSession = !!c.sessionId && c.sessionId === m.session_id;
  return {
    ...c, cpId: m.cp_id ?? c.cpId, sessionId: m.session_id ?? c.sessionId, cancelled: false, check: undefined, lastHeardAt: now,
    phase: c.phase === 'stopping' && sameSession ? 'stopping' : 'charging',
    chargingSince: sameSession && c.chargingSince !== undefined ? c.chargingSince : Math.min(now, m.started_at ?? now),
  };
}

function endTotals(t: Totals, m: DriverUpdateMsg): { totals: Totals; done: Outcome } {
  const done = m.status === 'COMPLETED' ? 'completed' : 'interrupted';
  return {
    done,
    totals: {
      ...t, sessions: t.sessions + 1,
      completed: t.completed + (done === 'completed' ? 1 : 0), interrupted: t.interrupted + (done === 'interrupted' ? 1 : 0),
      kwh: t.kwh + (m.ticket?.kwh ?? m.kwh ?? 0), eur: t.eur + (m.ticket?.eur ?? m.eur ?? 0),
    },
  };
}

export function invalidLines(s: TrackerState, n: number): TrackerState {
  return { ...s, totals: { ...s.totals, invalidLines: s.totals.invalidLines + n } };
}

/** An update from central arrived. */
export function onUpdate(s: TrackerState, m: DriverUpdateMsg, now: number): Step {
  const text = describeUpdate(m);
  const id = s.driverId;
  // Only the answer carrying the QUERY's request id: updates stored while this driver was away
  // (e.g. a stale IN_PROGRESS backlog) arrive first and are printed as they are.
  if (s.query && m.request_id === s.query.requestId) {
    // Told once: a ticket already printed (a stored update that came first) is not printed again,
    // and one printed here is not printed again when its stored update follows. Either way the
    // line names the session and how it ended.
    const prev = isEnd(m) ? endedAs(s, m.session_id) : undefined;
    const seen = !!prev && !supersedes(prev, m);
    const said = m.status === 'REJECTED' && m.reason === 'no session' ? 'no earlier session'
      : seen ? `${m.session_id} ${m.status} (its ticket is above)` : text;
    const line = `${id} last session: ${said}`;
    if (isRunning(m) && m.session_id && !s.current) {
      // Restarted while a session of ours runs: take it back (follow it, stop it at the limit, print its ticket).
      const cur = adopt({ requestId: s.query.requestId, cpId: m.cp_id ?? '-', phase: 'charging', sentAt: now, expiresAt: now, lastHeardAt: now }, m, now);
      return { state: { ...s, query: undefined, current: cur }, line: `${line}, following it`, queryAnswer: true, adopted: true };
    }
    if (prev && !seen) return { ...rebilled({ ...s, query: undefined }, prev, m, `last session: ${text}`), queryAnswer: true };
    return { state: { ...s, query: undefined, ended: isEnd(m) && !prev ? withEnded(s, m) : s.ended }, line, queryAnswer: true };
  }
  const c = s.current;
  if (c?.check && m.request_id === c.check.queryId) return onCheckAnswer(s, c, m, now, text);
  const prev = isEnd(m) ? endedAs(s, m.session_id) : undefined;
  if (prev) return supersedes(prev, m) ? rebilled(s, prev, m, text) : { state: s }; // a rebill, or a redelivery
  // A late answer to a check that is closed already (the request finished meanwhile): nothing new in it.
  if (!isRunning(m) && m.request_id && CHECK_ID.test(m.request_id) && m.request_id !== c?.check?.queryId) return { state: s };
  const mine = !!c && (m.request_id === c.requestId || m.request_id === c.stopRequestId || (!!m.session_id && m.session_id === c.sessionId));
  const line = `${id} ${text}`;
  const ended = isEnd(m) ? withEnded(s, m) : s.ended;
  if (!mine || !c) {
    // A request we gave up on was accepted after all: nobody would follow that supply, so stop it.
    if (isRunning(m) && m.request_id && s.abandoned.includes(m.request_id)) {
      return { state: { ...s, ended }, line: `${line} (for a cancelled request: STOP)`, send: [{ action: 'STOP', request_id: `${m.request_id}-late-stop`, ...(m.cp_id ? { cp_id: m.cp_id } : {}) }] };
    }
    return { state: { ...s, ended }, line };
  }

  const cur: CurrentRequest = { ...c, lastHeardAt: now };
  switch (m.status) {
    case 'ACCEPTED':
    case 'IN_PROGRESS':
      // Accepted although we had cancelled (central had it before the CANCEL): ours to follow.
      if (cur.phase === 'waiting' || cur.cancelled) return { state: { ...s, current: adopt(cur, m, now) }, line };
      cur.sessionId ??= m.session_id;
      return { state: { ...s, current: cur }, line };
    case 'REJECTED': {
      const stopRefused = c.phase !== 'waiting';
      if (stopRefused || m.reason === 'driver already charging') {
        // A refused STOP (the session may have ended unseen) or "already charging" (a session of ours runs
        // that we do not follow): ask central where things stand, and own what it names.
        const { cur: checked, out } = withCheck({ ...cur, ...(stopRefused ? {} : { cancelled: true }) }, now);
        const totals = stopRefused ? s.totals : { ...s.totals, rejected: s.totals.rejected + 1 };
        return { state: { ...s, current: checked, totals }, line, send: [out] };
      }
      return { state: { ...s, current: undefined, totals: { ...s.totals, rejected: s.totals.rejected + 1 } }, line, finished: 'rejected' };
    }
    case 'COMPLETED':
    case 'INTERRUPTED': {
      const { totals, done } = endTotals(s.totals, m);
      return { state: { ...s, current: undefined, ended: withEnded(s, m, true), totals }, line, finished: done };
    }
  }
}

/** Central answered our QUERY about the current request or session. */
function onCheckAnswer(s: TrackerState, c: CurrentRequest, m: DriverUpdateMsg, now: number, text: string): Step {
  const id = s.driverId;
  if (isRunning(m) && m.session_id) {
    const same = m.session_id === c.sessionId;
    return { state: { ...s, current: adopt(c, m, now) }, line: `${id} ${text}${same ? '' : ` (session ${m.session_id} is ours: following it)`}` };
  }
  if (isEnd(m) && m.session_id && !endedAs(s, m.session_id)) {
    // A session of ours ended while we did not hear: its ticket, once.
    const { totals, done } = endTotals(s.totals, m);
    return { state: { ...s, current: undefined, ended: withEnded(s, m, true), totals }, line: `${id} ${text}`, finished: done };
  }
  // Nothing of ours runs: the request never became a session (or the session is gone). Move on.
  const what = c.sessionId ? `session ${c.sessionId} is not running` : 'no session started';
  return {
    state: { ...s, current: undefined, abandoned: [...s.abandoned, c.requestId].slice(-ABANDONED_MAX) },
    line: `${id} ${c.cpId} ${what}, moving on`, finished: 'timeout',
  };
}

/** Time passed: answers that never came, silences, and the charge-time limit. */
export function onTick(s: TrackerState, now: number, lim: Limits): Step {
  const id = s.driverId;
  const ms = lim.requestTimeoutMs;
  if (s.query && now - s.query.sentAt >= ms) {
    return { state: { ...s, query: undefined }, line: `${id} last session: no answer to QUERY within ${ms} ms` };
  }
  const c = s.current;
  if (!c) return { state: s };
  if (c.check && now - c.check.sentAt >= ms) {
    // Central is away (crashed, the bus is down): keep asking, say so once. We never walk away from a session that may run.
    const { cur, out } = withCheck(c, now);
    return { state: { ...s, current: cur }, send: [out], ...(c.check.attempts === 1 ? { line: `${id} ${c.cpId} no answer from central within ${ms} ms, asking again until it answers` } : {}) };
  }
  if (c.phase === 'waiting' && !c.cancelled && now >= Math.min(c.expiresAt, c.sentAt + ms)) {
    // Give up on the request (central never starts it after expires_at, and CANCEL withdraws it), then ask what became of it.
    const { cur, out } = withCheck({ ...c, cancelled: true }, now);
    return {
      state: { ...s, current: cur, totals: { ...s.totals, timedOut: s.totals.timedOut + 1 } },
      line: `${id} ${c.cpId} TIMEOUT no answer within ${ms} ms, cancelling`,
      send: [{ action: 'CANCEL', request_id: `${c.requestId}-cancel`, cancels: c.requestId, cp_id: c.cpId }, out],
    };
  }
  if (c.phase === 'stopping' && c.stopSentAt !== undefined && now - c.stopSentAt >= ms) {
    // The STOP (or the end it caused) was lost: send it again.
    return { state: s, sendStop: true, ...((c.stops ?? 1) === 1 ? { line: `${id} ${c.cpId} no end within ${ms} ms of STOP, sending STOP again` } : {}) };
  }
  if (c.phase === 'charging' && lim.maxChargeMs !== undefined && c.chargingSince !== undefined && now - c.chargingSince >= lim.maxChargeMs) {
    return { state: s, sendStop: true, line: `${id} ${c.cpId} STOP after ${Math.round(lim.maxChargeMs / 1000)} s of charging` };
  }
  if (c.phase !== 'waiting' && !c.check && now - c.lastHeardAt >= ms) {
    const { cur, out } = withCheck(c, now);
    return { state: { ...s, current: cur }, line: `${id} ${c.cpId} no update for ${ms} ms, asking central`, send: [out] };
  }
  return { state: s };
}

export function summaryLine(s: TrackerState): string {
  const t = s.totals;
  return `${s.driverId} summary: ${t.sessions} session${t.sessions === 1 ? '' : 's'} (${t.completed} completed, ${t.interrupted} interrupted), `
    + `${kwhStr(t.kwh)}, ${eurStr(t.eur)}, ${t.rejected} rejected, ${t.timedOut} timed out, ${t.invalidLines} invalid line${t.invalidLines === 1 ? '' : 's'}`;
}
