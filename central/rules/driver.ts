import type { DriverRequestMsg } from '../../protocol/index.js';
import { decideRequest, decideStop } from '../decisions.js';
import { activeSessionAt, activeSessionOf, latestSessionOf, type SessionRecord } from '../state.js';
import { Acc, monitorOf, reachOf } from './common.js';
import type { Key } from './types.js';

/**
 * What a driver asks (driver.requests, keyed by the driver's id). A driver speaks only for
 * itself: the bus key is its authenticated id (the gateway's ACL lets a driver publish only
 * under its own), so a request naming another driver is refused, and CANCEL withdraws only the
 * sender's own request. Requests are rate-limited per driver; a REQUEST past its `expires_at`
 * (the driver stopped waiting) never starts a supply.
 */

/** Reasons a driver hears beyond decisions.ts REJECT_REASONS. */
export const DRIVER_REJECT_REASONS = ['request expired', 'rate limited', 'gateway unreachable', 'CP unreachable', 'not your request', 'cancelled', 'duplicate request_id'] as const;

export function onDriver(a: Acc, m: DriverRequestMsg, key: Key): void {
  if (key !== undefined && key !== m.driver_id) {
    a.forged('forged_requests', key, 'request naming another driver, refused', { driver_id: m.driver_id, action: m.action, request_id: m.request_id });
    return;
  }
  if (!takeToken(a, m)) return;
  switch (m.action) {
    case 'REQUEST': return onRequest(a, m);
    case 'STOP': return onStop(a, m);
    case 'QUERY': return onQuery(a, m);
    case 'CANCEL': return onCancel(a, m);
  }
}

/** Token bucket per driver: `burst` requests, refilled at `perSecond`. Over it: refused, answered at most once a second. */
function takeToken(a: Acc, m: DriverRequestMsg): boolean {
  const { burst, perSecond } = a.o.driverRate;
  const b = a.st.mem.buckets.get(m.driver_id) ?? { tokens: burst, at: a.now };
  const tokens = Math.min(burst, b.tokens + ((a.now - b.at) / 1000) * perSecond);
  if (tokens >= 1) {
    a.remember({ m: 'bucket', driver_id: m.driver_id, bucket: { tokens: tokens - 1, at: a.now, ...(b.refusedAt !== undefined ? { refusedAt: b.refusedAt } : {}) } });
    return true;
  }
  a.count('rate_limited');
  const answer = b.refusedAt === undefined || a.now - b.refusedAt >= 1000;
  a.remember({ m: 'bucket', driver_id: m.driver_id, bucket: { tokens, at: a.now, refusedAt: answer ? a.now : b.refusedAt! } });
  if (answer) {
    a.log('warn', 'driver over its request rate, refused (answered at most once a second, counted as rate_limited)', { driver_id: m.driver_id, burst, per_second: perSecond });
    reject(a, m, 'rate limited', false);
  }
  return false;
}

function reject(a: Acc, m: DriverRequestMsg, reason: string, record = true): void {
  a.count('rejected');
  a.notes.push({ n: 'reject', reason });
  if (record) a.journal({ t: 'request_done', request: { request_id: m.request_id, driver_id: m.driver_id, action: m.action, cp_id: m.cp_id, outcome: 'REJECTED', reason, at: a.now } });
  a.log('info', 'request rejected', { driver_id: m.driver_id, cp_id: m.cp_id, request_id: m.request_id, action: m.action, reason });
  a.recent('info', `${m.driver_id} ${m.action}${m.cp_id ? ` ${m.cp_id}` : ''} rejected: ${reason}`, { cp_id: m.cp_id, driver_id: m.driver_id });
  a.update(m.driver_id, 'REJECTED', { request_id: m.request_id, ...(m.cp_id ? { cp_id: m.cp_id } : {}), reason });
}

function onRequest(a: Acc, m: DriverRequestMsg): void {
  a.count('requests');
  const cpId = m.cp_id!;
  const previous = a.state.requests.get(m.request_id);
  if (previous && previous.driver_id !== m.driver_id) return reject(a, m, 'duplicate request_id', false);
  // The driver gave up waiting: nothing may start for it now (a repeat still gets its first answer).
  if (!previous && m.expires_at !== undefined && a.now >= m.expires_at) {
    a.count('expired_requests');
    return reject(a, m, 'request expired');
  }
  const d = decideRequest({
    previous, cp: a.state.cps.get(cpId), monitor: monitorOf(a.st, cpId, a.now, a.o),
    activeAtCp: activeSessionAt(a.state, cpId), activeOfDriver: activeSessionOf(a.state, m.driver_id),
  });
  if (d.kind === 'repeat') {
    // At-least-once delivery: the same request gets the same answer, and nothing starts twice.
    a.count('duplicate_requests');
    const p = d.previous;
    const s = p.session_id ? a.state.sessions.get(p.session_id) : undefined;
    if (p.outcome === 'REJECTED') a.update(m.driver_id, 'REJECTED', { request_id: m.request_id, cp_id: p.cp_id, reason: p.reason });
    else if (s) a.sessionUpdate(s, m.request_id);
    return;
  }
  if (d.kind === 'reject') return reject(a, m, d.reason);
  const reach = reachOf(a.st, cpId, a.now, a.o);
  if (!reach.ok) return reject(a, m, reach.reason);
  const cp = a.state.cps.get(cpId)!;
  const session: SessionRecord = {
    session_id: `S-${a.o.newId()}`, cp_id: cpId, driver_id: m.driver_id, request_id: m.request_id,
    status: 'ACTIVE', started_at: a.now, ended_at: null, kw: 0, kwh: 0, eur: 0, price_eur_kwh: cp.profile?.price_eur_kwh ?? 0,
    end_reason: null, interrupted: false, ticket: null, confirmed: false, ticket_sent: false, pending_end: null, telemetry_seq: -1,
  };
  a.journal(
    { t: 'session_started', session },
    { t: 'request_done', request: { request_id: m.request_id, driver_id: m.driver_id, action: 'REQUEST', cp_id: cpId, outcome: 'ACCEPTED', session_id: session.session_id, at: a.now } },
  );
  a.count('accepted');
  a.log('info', 'request accepted, supply started', { session_id: session.session_id, cp_id: cpId, driver_id: m.driver_id, request_id: m.request_id });
  a.recent('info', `${m.driver_id} charging at ${cpId}`, { cp_id: cpId, driver_id: m.driver_id });
  // The START expires when central stops waiting for its confirmation, or earlier when the driver stops
  // waiting: a CP never starts what central or the driver has given up on.
  const startBy = Math.min(a.now + a.o.startConfirmMs, m.expires_at ?? Infinity);
  a.command(cpId, 'START_SUPPLY', { session_id: session.session_id, driver_id: m.driver_id, expires_at: startBy }, `start:${session.session_id}`);
  a.update(m.driver_id, 'ACCEPTED', { request_id: m.request_id, session_id: session.session_id, cp_id: cpId, started_at: session.started_at });
}

function onStop(a: Acc, m: DriverRequestMsg): void {
  a.count('stops');
  if (a.state.requests.has(m.request_id)) { a.count('duplicate_requests'); return; }
  const d = decideStop(activeSessionOf(a.state, m.driver_id));
  if (d.kind === 'reject') return reject(a, m, d.reason);
  stopSession(a, m, d.session);
}

/** Sends STOP_SUPPLY for the driver's own session; an unconfirmed one is closed at once (the CP may never have started it). */
function stopSession(a: Acc, m: DriverRequestMsg, s: SessionRecord): void {
  a.journal({ t: 'request_done', request: { request_id: m.request_id, driver_id: m.driver_id, action: m.action, cp_id: s.cp_id, outcome: 'STOP_SENT', session_id: s.session_id, at: a.now } });
  a.log('info', m.action === 'CANCEL' ? 'driver cancels its request, stopping the session' : 'driver stops the session', { session_id: s.session_id, cp_id: s.cp_id, driver_id: m.driver_id });
  a.command(s.cp_id, 'STOP_SUPPLY', { session_id: s.session_id, driver_id: m.driver_id });
}

function onQuery(a: Acc, m: DriverRequestMsg): void {
  a.count('queries');
  const s = latestSessionOf(a.state, m.driver_id);
  if (!s) return a.update(m.driver_id, 'REJECTED', { request_id: m.request_id, reason: 'no session' });
  a.sessionUpdate(s, m.request_id);
}

/**
 * CANCEL withdraws the driver's request `cancels`: one not seen yet is refused in advance (it
 * may still be on its way), an accepted one whose CP has not confirmed is closed `cancelled`
 * and its START stopped; one the CP already supplies is stopped as a STOP would (billed by the
 * CP's record). The driver always hears where that request stands.
 */
function onCancel(a: Acc, m: DriverRequestMsg): void {
  a.count('cancels');
  if (a.state.requests.has(m.request_id)) { a.count('duplicate_requests'); return; }
  const target = m.cancels!;
  const r = a.state.requests.get(target);
  if (r && r.driver_id !== m.driver_id) {
    a.forged('forged_requests', m.driver_id, 'CANCEL of another driver\'s request, refused', { request_id: target, owner: r.driver_id });
    return reject(a, m, 'not your request', false);
  }
  if (!r) {
    // Not seen yet: when it arrives it is answered as refused (and nothing starts).
    a.journal({ t: 'request_done', request: { request_id: target, driver_id: m.driver_id, action: 'REQUEST', cp_id: m.cp_id, outcome: 'REJECTED', reason: 'cancelled', at: a.now } });
    a.log('info', 'request cancelled before it arrived', { driver_id: m.driver_id, request_id: target });
    a.update(m.driver_id, 'REJECTED', { request_id: target, ...(m.cp_id ? { cp_id: m.cp_id } : {}), reason: 'cancelled' });
    return;
  }
  const s = r.session_id ? a.state.sessions.get(r.session_id) : undefined;
  if (!s || r.outcome === 'REJECTED') return a.update(m.driver_id, 'REJECTED', { request_id: target, ...(r.cp_id ? { cp_id: r.cp_id } : {}), reason: r.reason ?? 'cancelled' });
  if (s.status !== 'ACTIVE') return a.sessionUpdate(s, target);
  if (!s.confirmed) {
    a.journal({ t: 'request_done', request: { request_id: m.request_id, driver_id: m.driver_id, action: 'CANCEL', cp_id: s.cp_id, outcome: 'STOP_SENT', session_id: s.session_id, at: a.now } });
    a.log('info', 'driver cancelled before the CP confirmed, session closed', { session_id: s.session_id, cp_id: s.cp_id, driver_id: m.driver_id });
    a.close(s, 'cancelled');
    // If the START still reaches the CP, this stops it there (the START's own deadline may not have passed).
    a.command(s.cp_id, 'STOP_SUPPLY', { session_id: s.session_id, driver_id: m.driver_id });
    return;
  }
  stopSession(a, m, s);
}
